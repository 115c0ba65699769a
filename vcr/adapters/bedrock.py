"""The Amazon Bedrock upstream: InvokeModel and its control plane, each request signed afresh with SigV4.

Whatever signature the client sent (or none, with `CLAUDE_CODE_SKIP_BEDROCK_AUTH=1`) is dropped; the
proxy signs with the credentials the standard AWS sources give (vcr.aws_credentials), looked up when the
first request is forwarded, so strict replay never needs them. The answer's bytes (JSON, or the binary
`application/vnd.amazon.eventstream`) pass through unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from .. import headers as header_rules
from ..aws_credentials import find_region, require_credentials
from ..errors import InvalidInput, UpstreamError
from ..headers import Headers
from ..sigv4 import SIGNATURE_HEADERS, Credentials, sign
from .anthropic import AnthropicReply, AnthropicUpstream

SERVICE = "bedrock"
"""The signing name of both bedrock-runtime (InvokeModel) and bedrock (ListInferenceProfiles...)."""

DEFAULT_REGION = "us-east-1"


def is_runtime_path(path: str) -> bool:
    """InvokeModel and friends (`/model/{id}/...`) go to bedrock-runtime; the rest to the control plane."""
    return path.startswith("/model/")


def endpoint(path: str, region: str, override: str | None) -> str:
    """The base URL a request goes to: `--upstream` when given, else the region's runtime or control host."""
    if override:
        return override.rstrip("/")
    host = "bedrock-runtime" if is_runtime_path(path) else "bedrock"
    return f"https://{host}.{region}.amazonaws.com"


def without_client_auth(headers: Headers) -> Headers:
    """The client's headers as forwarded, minus its own signature (ours replaces it)."""
    return [
        (name, value)
        for name, value in header_rules.for_upstream(headers)
        if name.lower() not in SIGNATURE_HEADERS
    ]


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
        return find_region(self.env) or DEFAULT_REGION

    def credentials(self) -> Credentials:
        """Looked up once, at the first forwarded request; a missing or unreadable source is an UpstreamError."""
        if self._credentials is None:
            try:
                self._credentials = require_credentials(self.env)
            except InvalidInput as error:
                raise UpstreamError(f"cannot sign for Bedrock: {error}") from None
        return self._credentials

    async def send(self, method: str, target: str, headers: Headers, body: bytes) -> AnthropicReply:
        region = self.region
        base = endpoint(target, region, self.override)
        split = urlsplit(base)
        signed = sign(
            method,
            split.netloc,
            split.path.rstrip("/") + target,
            without_client_auth(headers),
            body,
            self.credentials(),
            region,
            SERVICE,
        )
        return await self._request(method, base, target, signed, body)
