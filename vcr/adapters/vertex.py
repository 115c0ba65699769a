"""The Google Vertex AI upstream: Claude's `:rawPredict` / `:streamRawPredict` with a bearer token.

The client's own `Authorization: Bearer` goes on when it sends one; otherwise (Claude Code with
`CLAUDE_CODE_SKIP_VERTEX_AUTH=1`, or an SDK client given no credentials) the proxy adds the token in
`GOOGLE_OAUTH_ACCESS_TOKEN` (e.g. `$(gcloud auth print-access-token)`), read per request. Tokens are never
stored: `Authorization` is a credential header (vcr.headers).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from .. import headers as header_rules
from ..errors import UpstreamError
from ..headers import Headers
from .anthropic import AnthropicReply, AnthropicUpstream

TOKEN_ENV = "GOOGLE_OAUTH_ACCESS_TOKEN"
_LOCATION = re.compile(r"^/v1(?:beta1)?/projects/[^/]+/locations/([^/]+)/")


def endpoint(target: str, override: str | None) -> str:
    """`--upstream` when given, else the regional host the path's location names (`global`: the global one)."""
    if override:
        return override.rstrip("/")
    found = _LOCATION.match(target)
    region = found.group(1) if found else "global"
    return (
        "https://aiplatform.googleapis.com"
        if region == "global"
        else f"https://{region}-aiplatform.googleapis.com"
    )


def with_token(headers: Headers, env: Mapping[str, str]) -> Headers:
    """The forwarded headers, with the client's bearer token or else the environment's."""
    forwarded = header_rules.for_upstream(headers)
    if any(name.lower() == "authorization" and value.strip() for name, value in forwarded):
        return forwarded
    token = env.get(TOKEN_ENV, "").strip()
    if not token:
        raise UpstreamError(
            f"cannot authenticate to Vertex AI: the client sent no bearer token and {TOKEN_ENV} is not set "
            "(export it from `gcloud auth print-access-token`)"
        )
    return [*forwarded, ("Authorization", f"Bearer {token}")]


class VertexUpstream(AnthropicUpstream):
    """Forwards to Vertex AI (or `--upstream`) with a bearer token."""

    name = "vertex"

    def __init__(
        self, override: str | None, read_timeout: float = 600.0, env: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(override or "https://aiplatform.googleapis.com", read_timeout)
        self.override = override
        self.env = os.environ if env is None else env

    async def send(self, method: str, target: str, headers: Headers, body: bytes) -> AnthropicReply:
        return await self._request(
            method, endpoint(target, self.override), target, with_token(headers, self.env), body
        )
