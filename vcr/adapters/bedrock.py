"""The Amazon Bedrock upstream: InvokeModel and its control plane, each request signed afresh with SigV4.

Whatever signature the client sent (or none, with `CLAUDE_CODE_SKIP_BEDROCK_AUTH=1`) is dropped; the
proxy signs with the credentials the standard AWS sources give (vcr.cloud_auth, the one way verify and
conformance sign too), looked up when the first request is forwarded, so strict replay never needs them.
The answer's bytes (JSON, or the binary `application/vnd.amazon.eventstream`) pass through unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping

from .. import headers as header_rules
from ..cloud_auth import CloudCredentials, endpoint
from ..errors import CredentialsError, UpstreamError
from ..headers import Headers
from .anthropic import AnthropicReply, AnthropicUpstream


class BedrockUpstream(AnthropicUpstream):
    """Forwards to Bedrock (or `--upstream`), signing each request with SigV4."""

    name = "bedrock"

    def __init__(
        self,
        override: str | None,
        read_timeout: float = 600.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(override or "https://bedrock-runtime.invalid", read_timeout)
        self.override = override
        self.credentials = CloudCredentials(env)

    async def send(self, method: str, target: str, headers: Headers, body: bytes) -> AnthropicReply:
        base = endpoint(self.name, target, self.override, self.credentials.env) or self.base_url
        try:
            signed = await self.credentials.authenticate(
                self.session, self.name, method, base, target, header_rules.for_upstream(headers), body
            )
        except CredentialsError as error:
            raise UpstreamError(str(error)) from None
        return await self._request(method, base, target, signed, body)
