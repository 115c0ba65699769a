"""The Amazon Bedrock upstream: InvokeModel and its control plane, each request signed afresh with SigV4.

Whatever signature the client sent (or none, with `CLAUDE_CODE_SKIP_BEDROCK_AUTH=1`) is dropped; the
proxy signs with the credentials the standard AWS sources give (vcr.cloud_auth, the one way verify and
conformance sign too), looked up when the first request is forwarded, so strict replay never needs them.
The answer's bytes (JSON, or the binary `application/vnd.amazon.eventstream`) pass through unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .. import headers as header_rules
from ..cloud_auth import bedrock_credentials, bedrock_endpoint, bedrock_region, bedrock_signed
from ..errors import InvalidInput, UpstreamError
from ..headers import Headers
from ..sigv4 import Credentials
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
        self.env = os.environ if env is None else env
        self._credentials: Credentials | None = None

    @property
    def region(self) -> str:
        return bedrock_region(self.env, self.override)

    def credentials(self) -> Credentials:
        """Looked up once, at the first forwarded request; a missing or unreadable source is an UpstreamError."""
        if self._credentials is None:
            try:
                self._credentials = bedrock_credentials(self.env)
            except InvalidInput as error:
                raise UpstreamError(str(error)) from None
        return self._credentials

    async def send(self, method: str, target: str, headers: Headers, body: bytes) -> AnthropicReply:
        region = self.region
        base = bedrock_endpoint(target, region, self.override)
        forwarded = header_rules.for_upstream(headers)
        signed = bedrock_signed(method, base, target, forwarded, body, self.credentials(), region)
        return await self._request(method, base, target, signed, body)
