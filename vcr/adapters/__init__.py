"""Upstream dialects: how the proxy reaches the model API behind it.

The proxy always speaks the Anthropic Messages API to its clients. An `Upstream` takes a client request
(method, path and query, headers, body) and returns the answer as Anthropic-protocol bytes, as they
arrive: `anthropic` passes requests through unchanged; `openai` translates to Chat Completions and back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import fields
from typing import Protocol

from ..config import UPSTREAM_FORMATS, ProxyConfig
from ..errors import InvalidInput
from ..headers import Headers


class UpstreamReply(Protocol):
    """An answer on its way: status and headers first, then the body as it arrives (`iter_body`)."""

    status: int
    reason: str | None
    headers: Headers

    def iter_body(self) -> AsyncIterator[bytes]: ...

    async def release(self) -> None: ...


class Upstream(Protocol):
    """Where forwarded requests go."""

    name: str

    async def send(self, method: str, target: str, headers: Headers, body: bytes) -> UpstreamReply: ...

    async def close(self) -> None: ...


def explicit_upstream(config: ProxyConfig) -> str | None:
    """`--upstream` when the person gave one; None when it is the first-party default (a cloud provider then
    picks its own endpoint from the region)."""
    default = next(f.default for f in fields(ProxyConfig) if f.name == "upstream")
    return None if config.upstream == default else config.upstream


def open_upstream(config: ProxyConfig) -> Upstream:
    """The upstream a proxy config asks for (`upstream_format`, one of config.UPSTREAM_FORMATS)."""
    if config.upstream_format in ("anthropic", "foundry"):
        from ..adapters.anthropic import AnthropicUpstream

        return AnthropicUpstream(config.upstream, config.upstream_read_timeout)
    if config.upstream_format == "openai":
        import os

        from ..adapters.openai import OpenAIUpstream

        return OpenAIUpstream(
            config.upstream,
            api_key=os.environ.get(config.upstream_key_env),
            model_map=config.model_map,
            ping_interval=config.ping_interval,
            read_timeout=config.upstream_read_timeout,
        )
    if config.upstream_format == "bedrock":
        from ..adapters.bedrock import BedrockUpstream

        return BedrockUpstream(explicit_upstream(config), config.upstream_read_timeout)
    if config.upstream_format == "vertex":
        from ..adapters.vertex import VertexUpstream

        return VertexUpstream(explicit_upstream(config), config.upstream_read_timeout)
    raise InvalidInput(
        f"unknown upstream format {config.upstream_format!r}; known: {', '.join(UPSTREAM_FORMATS)}"
    )
