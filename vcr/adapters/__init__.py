"""Upstream dialects: how the proxy reaches the model API behind it.

The proxy always speaks the Anthropic Messages API to its clients. An `Upstream` takes a client request
(method, path and query, headers, body) and returns the answer as Anthropic-protocol bytes, arriving chunk
by chunk: `anthropic` passes requests through unchanged; `openai` translates to Chat Completions and back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

Headers = list[tuple[str, str]]


class UpstreamError(Exception):
    """The upstream could not be reached, or broke off mid-answer."""


class UpstreamReply(Protocol):
    """An answer on its way: status and headers first, then the body in chunks."""

    status: int
    reason: str | None
    headers: Headers

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def release(self) -> None: ...


class Upstream(Protocol):
    """Where forwarded requests go."""

    name: str

    async def send(self, method: str, target: str, headers: Headers, body: bytes) -> UpstreamReply: ...

    async def close(self) -> None: ...
