"""Replay: the recordings read in this run (a byte-budgeted cache) and sending one as the answer."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections import OrderedDict

import zstandard
from aiohttp import web

from .. import conversion, eventstream, sse
from .. import headers as header_rules
from ..conversion import JSON_MEDIA_TYPE
from ..matching import short_key
from ..records import Recording
from .edge import error_response
from .exchange import REPLAY_PIECE, Exchange
from .monitor import check_answer

log = logging.getLogger("claude_vcr.proxy")
"""One logger for the whole proxy package (tests and users filter on `claude_vcr.proxy`)."""

_VCR_HEADERS = frozenset({"x-vcr-outcome", "x-vcr-key"})
"""Set on every replayed answer, replacing any stored ones."""


class ReplayCache:
    """Recordings read in this run, by cassette and key, up to a byte budget (least recently used out)."""

    def __init__(self, budget: int = 256 * 1024 * 1024) -> None:
        self.budget = budget
        self.size = 0
        self._entries: OrderedDict[tuple[str, str], tuple[list[Recording], int]] = OrderedDict()

    def get(self, cassette: str, key: str) -> list[Recording] | None:
        entry = self._entries.get((cassette, key))
        if entry is None:
            return None
        self._entries.move_to_end((cassette, key))
        return entry[0]

    def put(self, cassette: str, key: str, recordings: list[Recording]) -> None:
        self.drop(cassette, key)
        size = sum(len(r.response_frame or r.response_body) + len(r.request_body) for r in recordings)
        if size > self.budget:
            return
        self._entries[(cassette, key)] = (recordings, size)
        self.size += size
        while self.size > self.budget:
            _, (_, dropped) = self._entries.popitem(last=False)
            self.size -= dropped

    def drop(self, cassette: str, key: str) -> None:
        entry = self._entries.pop((cassette, key), None)
        if entry is not None:
            self.size -= entry[1]

    def drop_cassette(self, cassette: str) -> None:
        for name, key in [entry for entry in self._entries if entry[0] == cassette]:
            self.drop(name, key)


CONVERT_LIMIT = 64 * 1024 * 1024
"""The most of a large (frame-kept) recording read into memory to convert it between SSE and JSON."""


class Unconvertible(Exception):
    """A recording in the other form than the request asks for that cannot be converted."""


def _whole_body(recording: Recording) -> bytes:
    """The response bytes of a recording, a large one decompressed up to `CONVERT_LIMIT`."""
    if recording.response_frame is None:
        return recording.response_body
    reader = recording.response_reader()
    try:
        body = reader.read(CONVERT_LIMIT + 1)
    except zstandard.ZstdError as error:
        raise Unconvertible(f"it is damaged ({error})") from None
    if len(body) > CONVERT_LIMIT:
        raise Unconvertible(f"it is over {CONVERT_LIMIT} bytes")
    return body


def _converted(exchange: Exchange, recording: Recording, wants_stream: bool) -> tuple[bytes, str] | None:
    """The recording's body in the form asked for (Messages API, Vertex, Bedrock frames: vcr.conversion)."""
    try:
        return conversion.convert(
            exchange.path,
            wants_stream,
            recording.status,
            recording.response_headers,
            _whole_body(recording),
            exchange.request.headers,
        )
    except (ValueError, KeyError, TypeError) as error:
        raise Unconvertible(str(error)) from None


async def convert(exchange: Exchange, recording: Recording) -> tuple[bytes, str] | None:
    """A stream for a non-streaming request (the Message it accumulates to), or the reverse; None when the
    recording is sent as it is; `Unconvertible` when it cannot be (never raw SSE to a JSON request). A large
    recording is converted off the event loop, and read only when it must be converted."""
    wants_stream = exchange.keyed is not None and exchange.keyed.wants_stream
    if recording.response_frame is None:
        return _converted(exchange, recording, wants_stream)
    if not 200 <= recording.status < 300 or not conversion.converts(exchange.path):
        return None
    headers = recording.response_headers
    kind = sse.media_type(headers)
    is_stream = eventstream.is_framed(headers) or kind == sse.SSE_MEDIA_TYPE
    if wants_stream == is_stream or not (is_stream or kind == JSON_MEDIA_TYPE):
        return None
    return await asyncio.to_thread(_converted, exchange, recording, wants_stream)


def unreplayable(exchange: Exchange, recording: Recording, problem: str) -> web.Response:
    """A 502 naming the recording that is not replayed, and why (never its redirect followed)."""
    text = (
        f"claude-vcr: recording {short_key(recording.key)} in cassette '{exchange.cassette}' is not replayed: "
        f"{problem}. Re-record it, or delete it with `claude-vcr delete`."
    )
    log.warning("%s", text)
    exchange.note = text
    response = error_response(502, "api_error", text)
    response.headers["x-vcr-outcome"] = "unsafe"
    response.headers["x-vcr-key"] = recording.key
    return response


def damaged_frames(recording: Recording) -> str | None:
    """Why a recorded Bedrock event stream cannot be replayed (a bad CRC, a cut-off frame), or None. A large
    body decompressed as it is sent is not checked here (its client sees the CRCs fail)."""
    if recording.response_frame is not None or not eventstream.is_framed(recording.response_headers):
        return None
    return eventstream.decode(recording.response_body).problem


async def send_recording(
    exchange: Exchange, recording: Recording, outcome: str, pace: float | None, check: bool
) -> tuple[web.StreamResponse, str]:
    """The recorded answer: exact bytes, converted between SSE and JSON when the request asks for the other
    form, paced like the original when told to; a large one decompressed as it is sent. A stored answer that
    could redirect, or is not valid HTTP, is replaced by a one-line error naming it."""
    problem = header_rules.replay_problem(recording.status, recording.response_headers)
    if problem is not None:
        return unreplayable(exchange, recording, problem), "unsafe"
    damage = damaged_frames(recording)
    if damage is not None:
        message = f"claude-vcr: recording {short_key(recording.key, recording.ordinal)} is damaged: {damage}"
        log.error("%s", message)
        exchange.note = message
        return error_response(502, "api_error", message), "damaged"  # the recording is bad, not the proxy: never a 500
    body = recording.response_body
    timings = recording.timings
    try:
        converted = await convert(exchange, recording)
    except Unconvertible as error:
        problem = f"it is {'not ' if exchange.keyed and exchange.keyed.wants_stream else ''}a stream and "
        return unreplayable(exchange, recording, problem + f"could not be converted: {error}"), "unsafe"
    replaced = _VCR_HEADERS
    if converted is not None:
        body, content_type = converted
        replaced = _VCR_HEADERS | {"content-type"}
        timings = []
        outcome += "-converted"
    # a list, not a CIMultiDict: aiohttp copies the headers into its own anyway
    headers = header_rules.for_replay(recording.response_headers, replaced)
    if converted is not None:
        headers.append(("content-type", content_type))
    headers += [("x-vcr-outcome", outcome), ("x-vcr-key", recording.key)]
    exchange.ordinal = recording.ordinal
    large = converted is None and recording.response_frame is not None
    if check and not large:
        await check_answer(exchange, recording.status, headers, body)
    paced = pace is not None and bool(timings)
    if not large and not paced:
        return web.Response(status=recording.status, body=body, headers=headers), outcome
    response = web.StreamResponse(status=recording.status, headers=headers)
    await response.prepare(exchange.request)
    reader = recording.response_reader() if large else io.BytesIO(body)
    if paced:
        assert pace is not None
        started = time.perf_counter()
        for size, at_ms in timings:
            delay = at_ms / 1000 / pace - (time.perf_counter() - started)
            if delay > 0:
                await asyncio.sleep(delay)
            await response.write(reader.read(size))
    try:
        while piece := reader.read(REPLAY_PIECE):
            await response.write(piece)
    except zstandard.ZstdError as error:  # a large body is decompressed as it is sent
        log.error("recording %s is damaged (%s); the answer was cut off", short_key(recording.key), error)
        response.force_close()
        return response, "damaged"
    await response.write_eof()
    return response, outcome
