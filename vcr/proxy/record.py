"""Record: send a request upstream, relay the answer to the client as it arrives (or hold a small JSON answer
until it is saved), then save it; three steps, one concern each."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web
from multidict import CIMultiDict

from .. import eventstream, sse
from .. import headers as header_rules
from ..adapters import Upstream, UpstreamReply
from ..compression import ResponseSpool
from ..config import ProxyConfig
from ..errors import UpstreamError
from ..matching import KEY_SCHEME, KeyedRequest, short_key
from ..record_run import CassetteRun
from ..records import Recording, StoredRules, UnstoredAnswer
from ..redact import screen
from ..request_scan import RequestScan
from ..response_scan import ResponseScan
from ..storable import NOT_STORED, RECORD_ERRORS, Verdict, by_status, error_type, verdict
from ..store import RulesChanged, StoreThread
from .decide import Forward
from .edge import error_response, local_answer
from .exchange import HELD_BYTES, Exchange
from .monitor import check_answer
from .offload import Offload

log = logging.getLogger("claude_vcr.proxy")

FINAL_EVENT = b"\nevent: message_stop"
"""Where a Messages stream's end begins (a newline first: JSON text never holds a raw one)."""


@dataclass
class Relayed:
    """What came back from upstream while it was relayed: the bytes (spooled), their arrival times, and the
    answer still held back when it is to be sent once saved."""

    response: web.StreamResponse
    spool: ResponseSpool = field(default_factory=ResponseSpool)
    timings: list[tuple[int, float]] = field(default_factory=list)
    held: list[bytes] | None = None
    end: bytearray | None = None
    """The end of a recorded answer, sent only once its save commits (a clean end only of what was stored):
    a stream's from the chunk bringing its final event on, another answer's last chunk."""
    _tail: bytes = b""

    def pass_on(self, chunk: bytes, streamed: bool) -> bytes:
        """What of a recorded answer's chunk goes to the client now; the rest is kept in `end`."""
        if not streamed:
            before, self.end = self.end, bytearray(chunk)
            return bytes(before or b"")
        if self.end is not None:
            self.end += chunk
            return b""
        window = self._tail + chunk
        if FINAL_EVENT in window:
            self.end = bytearray(chunk)
            return b""
        self._tail = window[-len(FINAL_EVENT) :]
        return chunk


def rekeyed(recording: Recording, keyed: KeyedRequest, stored: StoredRules) -> None:
    """Give a recording the key its request has under a cassette's new rules, after that key's recordings
    (it is a new take, never replacing what the rekey moved there)."""
    recording.key, recording.fingerprints, recording.key_scheme = (
        keyed.key,
        keyed.fingerprints,
        stored.key_scheme or KEY_SCHEME,
    )
    recording.ordinal = (
        1 << 30
    )  # past any ordinal; `keep_since` never moves it, the replay order keeps it last


class Recorder:
    """Forwarding and recording for one running proxy."""

    def __init__(self, config: ProxyConfig, upstream: Upstream, store: StoreThread, offload: Offload) -> None:
        self.config = config
        self.upstream = upstream
        self.store = store
        self.offload = offload
        """Reads a large request body (excerpt, secrets) in a child process before it is saved."""
        self.not_stored: Counter[str] = Counter()
        """Answers a record run passed through without storing them, by why (the summary counts them)."""

    def _not_stored(self, exchange: Exchange, status: int, decided: Verdict) -> None:
        """Count an answer a record run did not store, and say why on the request's line."""
        reason = decided.reason or f"status {status}"
        self.not_stored[reason] += 1
        exchange.note = NOT_STORED + reason.replace(RECORD_ERRORS, self.config.record_errors_option)

    async def _note(self, exchange: Exchange, status: int, tail: bytes) -> None:
        """Keep a note of the answer not stored (key, status, error type, when), so a strict miss of the key
        in a later run says why it has no recording; a note that cannot be written is only a warning."""
        note = UnstoredAnswer.now(exchange.cassette, exchange.key, status, error_type(tail[-8192:]))
        try:
            await self.store.note_unstored(note)
        except Exception as error:
            log.warning("could not note the unstored answer of %s: %s", short_key(exchange.key), error)

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
        first = by_status(upstream.status, record_errors=self.config.record_errors)
        record = how.record and first.store
        try:
            relayed = await self._relay(exchange, upstream, record, sent_at)
            if isinstance(relayed, web.Response):
                return relayed, "upstream-error"
            if record and relayed.spool.dropped:  # an endless or huge answer: relayed whole, not stored
                log.warning(
                    "not stored: %s %s answered over %d bytes (the most a recording keeps)",
                    exchange.method,
                    exchange.stored_target,
                    relayed.spool.limit,
                )
                exchange.note = f"not stored: the answer was over {relayed.spool.limit} bytes"
                await self._finish(exchange, relayed, "too-large")
                return relayed.response, "too-large"
            decided = first
            if record:
                tail = relayed.spool.tail
                decided = verdict(
                    upstream.status,
                    tail,
                    streamed_error=sse.ends_with_error(tail)
                    or (eventstream.is_framed(upstream.headers) and eventstream.ends_with_exception(tail)),
                    record_errors=self.config.record_errors,
                )
                record = decided.store
            unstored = how.record and not record
            if unstored:
                self._not_stored(exchange, upstream.status, decided)
            transport = exchange.request.transport
            if relayed.end is not None and (transport is None or transport.is_closing()):
                raise ConnectionResetError("the client hung up before the end")  # as a write would have said
            outcome = await self._save(exchange, upstream, relayed, sent_at, run) if record else "passthrough"
            await self._finish(exchange, relayed, outcome)
            if unstored:  # after the answer has gone: the client never waits on the note
                await self._note(exchange, upstream.status, relayed.spool.tail)
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
        streamed = sse.media_type(upstream.headers) in (sse.SSE_MEDIA_TYPE, eventstream.CONTENT_TYPE)
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
                    now = relayed.pass_on(chunk, streamed) if record else chunk
                    if now:
                        await response.write(now)
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
        scanned = await self.offload.scan(recording.request_body)
        sent = recording.request_body
        response = await self.offload.scan_response(recording, self.config.redact)
        await asyncio.to_thread(self._screen, recording, scanned, response)  # regexes: off the loop
        # the excerpt and chunks made from the body as sent, unless `--redact` changed it (then made on save)
        unchanged = scanned if scanned is not None and recording.request_body is sent else None
        excerpt = unchanged.excerpt if unchanged is not None else None
        chunks = unchanged.chunks if unchanged is not None else None
        try:
            stored_rules = run.rules_to_store() if run is not None else None
            if stored_rules is not None:
                await self.store.set_cassette_rules(exchange.cassette, stored_rules)
            if run is None:
                await self.store.save(recording, excerpt=excerpt, chunks=chunks)
                return "recorded"
            try:
                await self.store.save(
                    recording, keep_since=run.started, rules_json=run.rules_json, excerpt=excerpt, chunks=chunks
                )
            except RulesChanged as changed:  # a `rekey` ran meanwhile: saved under the new rules' key
                keyed = await self.offload.key(
                    exchange.method, exchange.path, exchange.query, exchange.body, changed.stored.rules()
                )
                rekeyed(recording, keyed, changed.stored)
                exchange.rules_changed = True
                exchange.note = f"the cassette's rules changed while recording: stored under key {short_key(recording.key)}"
                await self.store.save(
                    recording, rules_json=changed.stored.rules_json, append=True, excerpt=excerpt, chunks=chunks
                )
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
            if outcome == "store-error":
                # the client must not see a clean end of what was not stored: cut before the last chunk
                exchange.note = "the recording could not be stored: the stream was cut before its end"
                response.force_close()
                if exchange.request.transport is not None:
                    exchange.request.transport.close()
                return
            if relayed.end:
                await response.write(bytes(relayed.end))
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

    def _screen(
        self, recording: Recording, scanned: RequestScan | None, response: ResponseScan | None
    ) -> None:
        """Credential-shaped strings in the bodies: one warning naming the recording (never the secret),
        and with `--redact` the bodies stored with placeholders instead (the key is the same either way)."""
        screened = screen(recording, redact=self.config.redact, request=scanned, response=response)
        if screened:
            log.warning("%s", screened.warning(recording))
