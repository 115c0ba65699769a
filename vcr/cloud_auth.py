"""Where a request to Claude on a cloud goes and how it is authenticated, once for every sender: the proxy's
Bedrock and Vertex upstreams when recording, and `verify` and `conformance` when they check a cloud target.

Bedrock: each request signed afresh with SigV4 (vcr.sigv4) from the standard AWS sources
(vcr.aws_credentials), whatever signature the client sent dropped. Vertex: the client's own bearer token when
it sent one, else one from vcr.google_credentials. Nothing here is stored or printed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from .aws_credentials import find_region, require_credentials
from .errors import CredentialsError, InvalidInput
from .google_credentials import GoogleToken
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


# --- both, for a sender ------------------------------------------------------------------------------------


def endpoint(provider: str, path: str, target: str | None, env: Mapping[str, str]) -> str | None:
    """The base URL a request for `path` goes to: `target` when given, else its cloud's endpoint (None for
    the first-party API, which has no endpoint of its own here)."""
    if provider == "bedrock":
        return bedrock_endpoint(path, bedrock_region(env, target), target)
    if provider == "vertex":
        return vertex_endpoint(path, target)
    return target.rstrip("/") if target else None


class CloudCredentials:
    """The credentials a sender adds for each cloud: a SigV4 signature for Bedrock (keys looked up once, at
    the first request), a Google bearer token for Vertex (refreshed before it expires). Errors are
    CredentialsError, one line, never carrying a secret."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = os.environ if env is None else env
        self.google = GoogleToken(self.env)
        self._aws: Credentials | None = None

    def aws(self) -> Credentials:
        if self._aws is None:
            self._aws = bedrock_credentials(self.env)
        return self._aws

    async def authenticate(
        self, session: Any, provider: str, method: str, base: str, target: str, headers: Headers, body: bytes
    ) -> Headers:
        """The headers to send `target` to `base` with: Bedrock's signed for the region `base` names (or
        the AWS sources'), Vertex's with a bearer token (in place of any they had), any other's as given."""
        if provider == "bedrock":
            region = bedrock_region(self.env, base)
            return bedrock_signed(method, base, target, headers, body, self.aws(), region)
        if provider == "vertex":
            return with_bearer(headers, await self.google.get(session))
        return headers
