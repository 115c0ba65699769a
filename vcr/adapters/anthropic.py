"""The Anthropic upstream: requests pass through unchanged, answers come back as sent (decoded)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from yarl import URL

from .. import headers as header_rules
from ..errors import UpstreamError
from ..headers import Headers
from .failures import broke_off, reach_failure

_FAILURES = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


class AnthropicReply:
    """An aiohttp response, seen through the `UpstreamReply` protocol."""

    def __init__(self, response: aiohttp.ClientResponse, url: str = "") -> None:
        self._response = response
        self._url = url
        self.status = response.status
        self.reason = response.reason
        self.headers: Headers = list(response.headers.items())

    async def iter_body(self) -> AsyncIterator[bytes]:
        try:
            async for piece in self._response.content.iter_any():
                yield piece
        except _FAILURES as error:
            raise UpstreamError(broke_off(self._url, error)) from error

    async def release(self) -> None:
        self._response.release()


class AnthropicUpstream:
    """Forwards to an Anthropic-compatible base URL, asking for plain (identity) bytes."""

    name = "anthropic"

    def __init__(self, base_url: str, read_timeout: float = 600.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=read_timeout),
            connector=aiohttp.TCPConnector(limit=0),
        )

    async def send(self, method: str, target: str, headers: Headers, body: bytes) -> AnthropicReply:
        return await self._request(method, self.base_url, target, header_rules.for_upstream(headers), body)

    async def _request(
        self, method: str, base: str, target: str, headers: Headers, body: bytes
    ) -> AnthropicReply:
        """Send exactly these headers to `base` + `target` (the target's percent-encoding kept as is)."""
        try:
            response = await self.session.request(
                method,
                URL(base + target, encoded=True),
                headers=headers,
                data=body if body or method not in ("GET", "HEAD") else None,
                allow_redirects=False,
            )
        except _FAILURES as error:
            raise UpstreamError(reach_failure(base, error)) from error
        return AnthropicReply(response, base)

    async def close(self) -> None:
        await self.session.close()
