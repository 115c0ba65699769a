"""SigV4 as botocore computes it: the reference our signer is tested against and the scripted Bedrock checks."""

from __future__ import annotations

import re

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

_AUTH = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request, "
    r"SignedHeaders=(?P<signed>[^,]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


def botocore_signature(
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body: bytes,
    credentials: tuple[str, str, str | None],
    region: str,
    service: str,
    stamp: str,
) -> str:
    """The hex signature botocore's SigV4Auth gives `headers` (all of them signed) at time `stamp`."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    request.context["timestamp"] = stamp
    auth = SigV4Auth(BotoCredentials(*credentials), service, region)
    canonical = auth.canonical_request(request)
    return auth.signature(auth.string_to_sign(request, canonical), request)


def verify(
    method: str,
    url: str,
    headers: list[tuple[str, str]],
    body: bytes,
    keys: dict[str, tuple[str, str | None]],
) -> str | None:
    """None when the request carries a valid signature by one of `keys` (access key -> (secret, token)),
    else why not."""
    lowered = {}
    for name, value in headers:
        lowered.setdefault(name.lower(), value)
    match = _AUTH.match(lowered.get("authorization", ""))
    if not match:
        return "missing or malformed Authorization"
    if match["key"] not in keys:
        return f"unknown access key {match['key']!r}"
    secret, token = keys[match["key"]]
    if token is not None and lowered.get("x-amz-security-token") != token:
        return "missing or wrong X-Amz-Security-Token"
    stamp = lowered.get("x-amz-date", "")
    if stamp[:8] != match["date"]:
        return "X-Amz-Date does not match the credential scope"
    signed = match["signed"].split(";")
    if "host" not in signed:
        return "host is not signed"
    chosen = [(name, lowered[name]) for name in signed if name in lowered]
    if len(chosen) != len(signed):
        return "a signed header is missing"
    expected = botocore_signature(
        method, url, chosen, body, (match["key"], secret, token), match["region"], match["service"], stamp
    )
    return None if expected == match["signature"] else "signature does not match"
