"""The HTTP edge: aiohttp's server with a header timeout, refusals and Anthropic-shaped errors; the only
module that touches aiohttp's private internals (`_messages`, `_waiter`, `_kwargs`, `_loop`)."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from ..protocol import error_body

log = logging.getLogger("claude_vcr.proxy")
"""One logger for the whole proxy package (tests and users filter on `claude_vcr.proxy`)."""

MAX_REQUEST_BYTES = 64 * 1024 * 1024
"""Twice the API's own 32 MB limit on Messages bodies."""


class BodyRefused(Exception):
    """A request body not read to its end (stalled or too large): answered with `response`, then closed."""

    def __init__(self, reason: str, response: web.Response) -> None:
        super().__init__(reason)
        self.response = response


def refusal(request: web.BaseRequest) -> web.Response | None:
    """A 400 for what an HTTP proxy gets but a base URL never does: CONNECT, and targets that are not a path
    (`GET http://host/ HTTP/1.1`, `OPTIONS *`); never forwarded, never stored, in every mode."""
    if request.method == "CONNECT":
        reason = "CONNECT"
    elif not request.raw_path.startswith("/"):
        reason = f"the request target {request.raw_path[:200]!r}"
    else:
        return None
    response = error_response(
        400,
        "invalid_request_error",
        f"claude-vcr is not an HTTP proxy and refuses {reason}: set the client's base URL to it "
        "(ANTHROPIC_BASE_URL=http://127.0.0.1:8000) and send paths such as /v1/messages",
    )
    response.force_close()  # a CONNECT's tunnel, or whatever follows, is never read
    return response


def error_response(status: int, error_type: str, message: str) -> web.Response:
    """An Anthropic-shaped error, so SDKs and Claude Code show the message instead of a parse failure."""
    return web.Response(
        status=status,
        body=error_body(error_type, message),
        content_type="application/json",
        headers={"x-should-retry": "false"},
    )


class _Connection(RequestHandler):
    """aiohttp's connection handler with a header timeout: a request line and headers not complete within
    `header_timeout` seconds of their first byte (or of the connection opening) get a 408 and a close."""

    header_timeout = 20.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._messages:  # a request's head is complete
            self._disarm()
        elif self._head_timer is None and self._waiter is not None and not self._waiter.done():
            self._arm()  # the first bytes of the next request on a kept-alive connection

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._head_timer = asyncio.get_running_loop().call_later(self.header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        transport = self.transport
        if self._messages or transport is None or transport.is_closing():
            return
        if self._waiter is None or self._waiter.done():
            return  # a request is being handled: the body timeout and the handler take it from here
        body = error_body(
            "timeout_error", f"claude-vcr: no complete request headers in {self.header_timeout:g}s"
        )
        transport.write(
            b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        self.force_close()


class _Server(web.Server):
    """aiohttp's low-level server, making `_Connection`s."""

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout

    def __call__(self) -> RequestHandler:
        connection = _Connection(self, loop=self._loop, **self._kwargs)
        connection.header_timeout = self._header_timeout
        return connection


async def read_body(request: web.BaseRequest, body_timeout: float) -> bytes:
    """The request body, read with an idle timeout and a size limit (at once when it is all here)."""
    content = request.content
    if content.is_eof():
        body = await content.read()
    else:
        try:
            body = await _read_arriving(content, body_timeout)
        except asyncio.TimeoutError:
            response = error_response(
                408,
                "timeout_error",
                f"claude-vcr: the request body stalled for {body_timeout:g}s",
            )
            response.force_close()
            raise BodyRefused("the client stopped sending the body", response) from None
    if len(body) > MAX_REQUEST_BYTES:
        response = error_response(
            413, "request_too_large", f"claude-vcr takes request bodies up to {MAX_REQUEST_BYTES} bytes"
        )
        response.force_close()
        raise BodyRefused(f"a body over {MAX_REQUEST_BYTES} bytes", response)
    return body


async def _read_arriving(content: Any, seconds: float) -> bytes:
    """Read until the end or past the size limit; TimeoutError after `body_timeout` seconds without data.
    One rescheduled timeout per body (3.11+): a `wait_for` per chunk cost replay throughput."""
    pieces = bytearray()
    if sys.version_info < (3, 11):
        while len(pieces) <= MAX_REQUEST_BYTES and (
            chunk := await asyncio.wait_for(content.readany(), seconds)
        ):
            pieces += chunk
        return bytes(pieces)
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(seconds) as window:
        while len(pieces) <= MAX_REQUEST_BYTES and (chunk := await content.readany()):
            pieces += chunk
            window.reschedule(loop.time() + seconds)
    return bytes(pieces)


def local_answer(method: str) -> web.Response:
    """The answer to a probe or telemetry call that is not forwarded: 200, and `{}` when a body is read."""
    if method == "HEAD":
        return web.Response(status=200)
    return web.Response(status=200, body=b"{}", content_type="application/json")
