"""AWS Signature Version 4 for the requests the proxy forwards to Bedrock: pure functions, stdlib only.

Our own ~100 lines instead of botocore (whose data files alone are many times the pyz's 12 MB budget);
tests/test_sigv4.py checks every signature here against botocore's own signer.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote, unquote

from .headers import Headers

ALGORITHM = "AWS4-HMAC-SHA256"

SIGNATURE_HEADERS = frozenset({"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"})
"""What a client's own signature consists of: dropped before the proxy signs again."""

UNSIGNED_HEADERS = frozenset({"user-agent", "expect", "x-amzn-trace-id"})
"""Headers botocore leaves out of a signature (proxies may rewrite them)."""


@dataclass(frozen=True)
class Credentials:
    """An AWS access key pair and, for temporary credentials, its session token."""

    access_key: str
    secret_key: str
    token: str | None = None

    def __repr__(self) -> str:
        return f"Credentials(access_key={self.access_key[:4]}..., secret_key=***, token={'***' if self.token else None})"


def amz_date(now: datetime | None = None) -> str:
    """`20261207T211500Z`: the signing time as SigV4 writes it."""
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def canonical_path(path: str) -> str:
    """The path with dot segments removed, each byte percent-encoded once more (SigV4 for all but S3)."""
    segments: list[str] = []
    for segment in path.split("/")[1:]:
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in (".", ""):
            segments.append(segment)
    normalized = "/" + "/".join(segments)
    if path.endswith("/") and normalized != "/":
        normalized += "/"
    return quote(normalized, safe="/~")


def canonical_query(query: str) -> str:
    """Pairs decoded, re-encoded with SigV4's unreserved set and sorted by key then value."""
    if not query:
        return ""
    pairs = []
    for pair in query.split("&"):
        key, _, value = pair.partition("=")
        pairs.append((quote(unquote(key), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{key}={value}" for key, value in sorted(pairs))


def canonical_headers(headers: Headers) -> tuple[str, str]:
    """(canonical header block, signed header names) over the headers given, names lowercased."""
    merged: dict[str, list[str]] = {}
    for name, value in headers:
        merged.setdefault(name.lower(), []).append(" ".join(value.split()))
    names = sorted(merged)
    block = "".join(f"{name}:{','.join(merged[name])}\n" for name in names)
    return block, ";".join(names)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """The day's key for one region and service, derived from the secret."""
    key = _hmac(("AWS4" + secret_key).encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def sign(
    method: str,
    host: str,
    target: str,
    headers: Headers,
    body: bytes,
    credentials: Credentials,
    region: str,
    service: str,
    now: datetime | None = None,
) -> Headers:
    """The request's headers with any earlier signature replaced by a fresh one for `credentials`.

    `target` is the path and query as sent on the wire (percent-encoded); `host` is the Host header
    the upstream will see. The headers returned include Host, X-Amz-Date and, for temporary
    credentials, X-Amz-Security-Token.
    """
    stamp = amz_date(now)
    kept = [(n, v) for n, v in headers if n.lower() not in SIGNATURE_HEADERS and n.lower() != "host"]
    kept = [("Host", host), *kept, ("X-Amz-Date", stamp)]
    if credentials.token:
        kept.append(("X-Amz-Security-Token", credentials.token))
    signed = [(n, v) for n, v in kept if n.lower() not in UNSIGNED_HEADERS]
    block, signed_names = canonical_headers(signed)
    path, _, query = target.partition("?")
    request = "\n".join(
        [
            method.upper(),
            canonical_path(path or "/"),
            canonical_query(query),
            block,
            signed_names,
            hashlib.sha256(body).hexdigest(),
        ]
    )
    scope = f"{stamp[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, stamp, scope, hashlib.sha256(request.encode()).hexdigest()])
    signature = hmac.new(
        signing_key(credentials.secret_key, stamp[:8], region, service), to_sign.encode(), hashlib.sha256
    ).hexdigest()
    authorization = (
        f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed_names}, Signature={signature}"
    )
    return [*kept, ("Authorization", authorization)]
