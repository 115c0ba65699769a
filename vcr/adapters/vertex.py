"""The Google Vertex AI upstream: Claude's `:rawPredict` / `:streamRawPredict` with a bearer token.

The client's own `Authorization: Bearer` goes on when it sends one; otherwise (Claude Code with
`CLAUDE_CODE_SKIP_VERTEX_AUTH=1`, or an SDK client given no credentials) the proxy adds a token from
`GOOGLE_OAUTH_ACCESS_TOKEN` or the application-default credentials, refreshed before it expires
(vcr.cloud_auth, the one way verify and conformance authenticate too); a fetched token Vertex refuses
with a 401 before its time is fetched again and the request sent once more. Tokens are never stored:
`Authorization` is a credential header (vcr.headers).
"""

from __future__ import annotations

from collections.abc import Mapping

from .. import headers as header_rules
from ..cloud_auth import CloudCredentials, has_bearer, vertex_endpoint, with_bearer
from ..errors import CredentialsError, UpstreamError
from ..headers import Headers
from .anthropic import AnthropicReply, AnthropicUpstream


class VertexUpstream(AnthropicUpstream):
    """Forwards to Vertex AI (or `--upstream`) with a bearer token."""

    name = "vertex"

    def __init__(
        self, override: str | None, read_timeout: float = 600.0, env: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(override or "https://aiplatform.googleapis.com", read_timeout)
        self.override = override
        self.credentials = CloudCredentials(env)

    async def send(self, method: str, target: str, headers: Headers, body: bytes) -> AnthropicReply:
        base = vertex_endpoint(target, self.override)
        forwarded = header_rules.for_upstream(headers)
        if has_bearer(forwarded):
            return await self._request(method, base, target, forwarded, body)
        token = await self._token()
        reply = await self._request(method, base, target, with_bearer(forwarded, token), body)
        if reply.status == 401 and self.credentials.google.forget(token):  # refused before its time: once more
            await reply.release()
            reply = await self._request(method, base, target, with_bearer(forwarded, await self._token()), body)
        return reply

    async def _token(self) -> str:
        try:
            return await self.credentials.google.get(self.session)
        except CredentialsError as error:
            raise UpstreamError(f"cannot authenticate to Vertex AI: {error}") from None
