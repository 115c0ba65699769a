"""Where a request to Claude on a cloud goes and how it is authenticated, once for every sender: the proxy's
Bedrock and Vertex upstreams when recording, and `verify` and `conformance` when they check a cloud target.

Bedrock: each request signed afresh with SigV4 (vcr.sigv4) from the standard AWS sources
(vcr.aws_credentials), whatever signature the client sent dropped. Vertex: the client's own bearer token when
it sent one, else one from vcr.google_credentials. Nothing here is stored or printed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from .aws_credentials import find_region, require_credentials
from .errors import CredentialsError, InvalidInput
from .headers import Headers
from .sigv4 import SIGNATURE_HEADERS, Credentials, sign

BEDROCK_SERVICE = "bedrock"
"""The signing name of both bedrock-runtime (InvokeModel) and bedrock (ListInferenceProfiles...)."""
DEFAULT_REGION = "us-east-1"
_AWS_HOST = re.compile(r"^bedrock(?:-runtime)?(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?(?::\d+)?$")
_VERTEX_LOCATION = re.compile(r"^/v1(?:beta1)?/projects/[^/]+/locations/([^/]+)/")


# --- Bedrock -----------------------------------------------------------------------------------------------


def is_bedrock_runtime_path(path: str) -> bool:
    """InvokeModel and friends (`/model/{id}/...`) go to bedrock-runtime; the rest to the control plane."""
    return path.startswith("/model/")


def bedrock_endpoint(path: str, region: str, override: str | None) -> str:
    """The base URL a request goes to: the override when given, else the region's runtime or control host."""
    if override:
        return override.rstrip("/")
    host = "bedrock-runtime" if is_bedrock_runtime_path(path) else "bedrock"
    return f"https://{host}.{region}.amazonaws.com"


def bedrock_region(env: Mapping[str, str], endpoint: str | None = None) -> str:
    """The region to sign for: the one an AWS endpoint's host names, else the AWS sources', else us-east-1."""
    if endpoint:
        found = _AWS_HOST.match(urlsplit(endpoint).netloc.lower())
        if found:
            return found.group(1)
    return find_region(env) or DEFAULT_REGION


def bedrock_credentials(env: Mapping[str, str]) -> Credentials:
    """The AWS credentials to sign with, or a one-line CredentialsError saying where they were looked for."""
    try:
        return require_credentials(env)
    except InvalidInput as error:
        raise CredentialsError(f"cannot sign for Bedrock: {error}") from None


def bedrock_signed(
    method: str,
    base: str,
    target: str,
    headers: Headers,
    body: bytes,
    credentials: Credentials,
    region: str,
) -> Headers:
    """The headers to send `target` (path and query as on the wire) to `base` with: the given ones minus any
    signature they carried, plus Host, X-Amz-Date, the session token and a fresh SigV4 Authorization."""
    split = urlsplit(base)
    unsigned = [(name, value) for name, value in headers if name.lower() not in SIGNATURE_HEADERS]
    return sign(
        method,
        split.netloc,
        split.path.rstrip("/") + target,
        unsigned,
        body,
        credentials,
        region,
        BEDROCK_SERVICE,
    )


# --- Vertex ------------------------------------------------------------------------------------------------


def vertex_endpoint(target: str, override: str | None) -> str:
    """The override when given, else the regional host the path's location names (`global`: the global one)."""
    if override:
        return override.rstrip("/")
    found = _VERTEX_LOCATION.match(target)
    region = found.group(1) if found else "global"
    return (
        "https://aiplatform.googleapis.com"
        if region == "global"
        else f"https://{region}-aiplatform.googleapis.com"
    )


def has_bearer(headers: Headers) -> bool:
    """Whether the client sent its own (non-empty) Authorization."""
    return any(name.lower() == "authorization" and value.strip() for name, value in headers)


def with_bearer(headers: Headers, token: str) -> Headers:
    """The headers with `Authorization: Bearer <token>` in place of any the client sent."""
    return [*((n, v) for n, v in headers if n.lower() != "authorization"), ("Authorization", f"Bearer {token}")]
