"""Replay: the recordings read in this run (a byte-budgeted cache) and sending one as the answer."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections import OrderedDict

import zstandard
from aiohttp import web
from multidict import CIMultiDict

from .. import headers as header_rules
from .. import sse
from ..matching import short_key
from ..records import Recording
from .exchange import JSON_MEDIA_TYPE, REPLAY_PIECE, Exchange
from .monitor import check_answer

log = logging.getLogger("claude_vcr.proxy")
"""One logger for the whole proxy package (tests and users filter on `claude_vcr.proxy`)."""


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


def convert(exchange: Exchange, recording: Recording) -> tuple[bytes, str] | None:
    """A stream for a non-streaming request (the Message it accumulates to), or the reverse; None when the
    recording is sent as it is."""
    if not 200 <= recording.status < 300 or not exchange.path.endswith("/messages"):
        return None
    wants_stream = exchange.keyed is not None and exchange.keyed.wants_stream
    is_stream = sse.is_stream(recording.response_headers, recording.response_body)
    if wants_stream == is_stream or not (
        is_stream or sse.media_type(recording.response_headers) == JSON_MEDIA_TYPE
    ):
        return None
    try:
        if is_stream:
            message = sse.accumulate(sse.parse_sse(recording.response_body), exchange.request.headers)
            return json.dumps(message).encode(), "application/json"
        return sse.message_to_sse(json.loads(recording.response_body)), "text/event-stream; charset=utf-8"
    except (ValueError, KeyError, TypeError) as error:
        log.warning("could not convert recording %s: %s", short_key(recording.key), error)
        return None


async def send_recording(
    exchange: Exchange, recording: Recording, outcome: str, pace: float | None, check: bool
) -> tuple[web.StreamResponse, str]:
    """The recorded answer: exact bytes, converted between SSE and JSON when the request asks for the other
    form, paced like the original when told to; a large one decompressed as it is sent."""
    headers = CIMultiDict(header_rules.for_client(recording.response_headers))
    body = recording.response_body
    timings = recording.timings
    converted = convert(exchange, recording)
    if converted is not None:
        body, content_type = converted
        headers["content-type"] = content_type
        timings = []
        outcome += "-converted"
    headers["x-vcr-outcome"] = outcome
    headers["x-vcr-key"] = recording.key
    exchange.ordinal = recording.ordinal
    large = converted is None and recording.response_frame is not None
    if check and not large:
        await check_answer(exchange, recording.status, list(headers.items()), body)
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
