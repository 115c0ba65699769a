"""Record: send a request upstream, relay the answer to the client as it arrives (or hold a small JSON answer
until it is saved), then save it; three steps, one concern each."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from aiohttp import web
from multidict import CIMultiDict

from .. import headers as header_rules
from .. import sse
from ..adapters import Upstream, UpstreamReply
from ..compression import ResponseSpool
from ..config import ProxyConfig
from ..errors import UpstreamError
from ..matching import KEY_SCHEME, short_key
from ..record_run import CassetteRun
from ..records import Recording
from ..redact import screen
from ..store import StoreThread
from .decide import Forward, stores_answer
from .edge import error_response, local_answer
from .exchange import HELD_BYTES, Exchange
from .monitor import check_answer

log = logging.getLogger("claude_vcr.proxy")


@dataclass
class Relayed:
    """What came back from upstream while it was relayed: the bytes (spooled), their arrival times, and the
    answer still held back when it is to be sent once saved."""

    response: web.StreamResponse
    spool: ResponseSpool = field(default_factory=ResponseSpool)
    timings: list[tuple[int, float]] = field(default_factory=list)
    held: list[bytes] | None = None


class Recorder:
    """Forwarding and recording for one running proxy."""

    def __init__(self, config: ProxyConfig, upstream: Upstream, store: StoreThread) -> None:
        self.config = config
        self.upstream = upstream
        self.store = store

    async def forward(
        self, exchange: Exchange, how: Forward, run: CassetteRun | None
    ) -> tuple[web.StreamResponse, str]:
        """Send, relay, and (when `how.record`) save; the outcome is `recorded`, `store-error` or
        `passthrough`. `run` gives the rules a cassette's first recording stores."""
        sent_at = time.perf_counter()
        try:
            upstream = await self.upstream.send(
                exchange.method, exchange.target, list(exchange.request.headers.items()), exchange.body
            )
        except UpstreamError as error:
            if how.local_on_failure:
                return local_answer(exchange.method), "local"
            exchange.note = str(error)
            return error_response(502, "api_error", f"claude-vcr {error}"), "upstream-error"
        record = how.record and stores_answer(upstream.status, self.config.record_errors)
        try:
            relayed = await self._relay(exchange, upstream, record, sent_at)
            if isinstance(relayed, web.Response):
                return relayed, "upstream-error"
            if record and not self.config.record_errors and sse.ends_with_error(relayed.spool.tail):
                record = False  # a 200 stream that ended in an `error` event failed midway
                log.warning(
                    "%s %s ended with an error event; nothing stored", exchange.method, exchange.stored_target
                )
            outcome = await self._save(exchange, upstream, relayed, sent_at, run) if record else "passthrough"
            await self._finish(exchange, relayed, outcome)
        finally:
            await upstream.release()
        if self.config.check:
            if relayed.spool.large:
                log.info(
                    "check       %s skipped: a %d-byte body is not held in memory",
                    short_key(exchange.key),
                    relayed.spool.size,
                )
            else:
                await check_answer(exchange, upstream.status, upstream.headers, relayed.spool.body())
        return relayed.response, outcome

    async def _relay(
        self, exchange: Exchange, upstream: UpstreamReply, record: bool, sent_at: float
    ) -> Relayed | web.Response:
        """Write the answer to the client chunk by chunk as it arrives, keeping the bytes; a JSON answer being
        recorded is held (until saved) unless it outgrows `HELD_BYTES`. A 502 when the upstream broke off
        before anything was sent; raises UpstreamError when it broke off mid-stream."""
        response = web.StreamResponse(
            status=upstream.status,
            reason=upstream.reason,
            headers=CIMultiDict(header_rules.for_client(upstream.headers)),
        )
        streamed = sse.media_type(upstream.headers) == sse.SSE_MEDIA_TYPE
        # the header says what is known when it leaves: a stream's before its end, a held answer's once saved
        response.headers["x-vcr-outcome"] = "recording" if record else "passthrough"
        response.headers["x-vcr-key"] = exchange.key
        relayed = Relayed(response, held=[] if record and not streamed else None)
        if relayed.held is None:
            await response.prepare(exchange.request)
        try:
            async for chunk in upstream.iter_body():
                relayed.timings.append((len(chunk), (time.perf_counter() - sent_at) * 1000))
                relayed.spool.write(chunk)
                if relayed.held is None:
                    await response.write(chunk)
                    continue
                relayed.held.append(chunk)
                if relayed.spool.size > HELD_BYTES:  # too large to hold: streamed on, as `recording`
                    await response.prepare(exchange.request)
                    for piece in relayed.held:
                        await response.write(piece)
                    relayed.held = None
        except (ConnectionResetError, asyncio.CancelledError):
            raise  # the client went away: nothing stored, said in the handler's one line
        except UpstreamError as error:
            log.warning(
                "upstream broke off %s %s (%r); nothing stored",
                exchange.method,
                exchange.stored_target,
                error,
            )
            if relayed.held is not None:
                return error_response(502, "api_error", f"claude-vcr: the upstream broke off: {error}")
            response.force_close()
            raise
        return relayed

    async def _save(
        self,
        exchange: Exchange,
        upstream: UpstreamReply,
        relayed: Relayed,
        sent_at: float,
        run: CassetteRun | None,
    ) -> str:
        """Screen for secrets (off the loop), store the cassette's rules with its first recording, save."""
        recording = self._recording(exchange, upstream, relayed, sent_at)
        await asyncio.to_thread(self._screen, recording)  # regexes over large bodies: off the loop
        try:
            stored_rules = run.rules_to_store() if run is not None else None
            if stored_rules is not None:
                await self.store.set_cassette_rules(exchange.cassette, stored_rules)
            await self.store.save(recording)
            return "recorded"
        except Exception as error:
            log.error(
                "store-error: could not store %s %s: %s", exchange.method, exchange.stored_target, error
            )
            return "store-error"

    async def _finish(self, exchange: Exchange, relayed: Relayed, outcome: str) -> None:
        """End the answer: a held one is sent now, saying whether it was stored."""
        response = relayed.response
        if relayed.held is None:
            await response.write_eof()
            return
        response.headers["x-vcr-outcome"] = outcome
        response.content_length = relayed.spool.size
        try:
            await response.prepare(exchange.request)
            await response.write(b"".join(relayed.held))
            await response.write_eof()
        except ConnectionResetError:
            exchange.note = "the client hung up before its answer was sent (the answer is stored)"

    def _recording(
        self, exchange: Exchange, upstream: UpstreamReply, relayed: Relayed, sent_at: float
    ) -> Recording:
        keyed = exchange.keyed
        assert keyed is not None, "a recorded request was keyed by the handler"
        timings = relayed.timings
        return Recording(
            cassette=exchange.cassette,
            key=exchange.key,
            key_scheme=KEY_SCHEME,
            method=exchange.method,
            path=exchange.stored_target,
            status=upstream.status,
            request_headers=header_rules.for_storage(exchange.request.headers.items()),
            request_body=exchange.body,
            response_headers=header_rules.for_storage(upstream.headers),
            response_body=relayed.spool.body(),
            response_frame=relayed.spool.frame(),
            response_length=relayed.spool.size,
            timings=timings,
            model=keyed.model,
            stream=keyed.wants_stream,
            ordinal=exchange.ordinal,
            fingerprints=keyed.fingerprints,
            raw_hash=exchange.raw_hash,
            duration_ms=(time.perf_counter() - sent_at) * 1000,
            ttfb_ms=timings[0][1] if timings else None,
        )

    def _screen(self, recording: Recording) -> None:
        """Credential-shaped strings in the bodies: one warning naming the recording (never the secret),
        and with `--redact` the bodies stored with placeholders instead (the key is the same either way)."""
        screened = screen(recording, redact=self.config.redact)
        if screened:
            log.warning("%s", screened.warning(recording))
