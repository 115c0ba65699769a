"""The aiohttp reverse proxy: picks a cassette, replays a recording or forwards, tees and records."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import signal
import sys
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO
from urllib.parse import unquote

from aiohttp import web
from multidict import CIMultiDict

from . import headers as header_rules
from . import sse
from .adapters import Upstream, UpstreamReply, open_upstream
from .compression import ResponseSpool
from .config import ProxyConfig
from .diagnosis import MissReport, explain_miss
from .errors import ListenError, UpstreamError
from .headers import Headers
from .matching import KEY_SCHEME, KeyedRequest, key_request, raw_hash, short_key
from .names import BadCassetteName, validate_cassette_name
from .protocol import error_body
from .record_run import CassetteRun
from .records import Recording
from .store import StoreThread

log = logging.getLogger("claude_vcr.proxy")

CASSETTE_HEADER = "X-VCR-Cassette"
CONTROL_PREFIX = "/__vcr__/"
SEEN_BYTES_PER_CASSETTE = 64 * 1024 * 1024
REPLAY_PIECE = 64 * 1024
"""How much of a large (streamed-from-disk) recording is decompressed and written at a time."""
MAX_REQUEST_BYTES = 64 * 1024 * 1024
"""Twice the API's own 32 MB limit on Messages bodies."""

JSON_MEDIA_TYPE = "application/json"
_CASSETTE_PREFIX = re.compile(r"^/c/([^/]*)(/.*)?$")


def is_local_only(method: str, path: str) -> bool:
    """Telemetry and connection probes: forwarded when online, never stored, answered locally in replay."""
    return path.startswith("/api/event_logging/") or (method == "HEAD" and path == "/api/hello")


def error_response(status: int, error_type: str, message: str) -> web.Response:
    """An Anthropic-shaped error, so SDKs and Claude Code show the message instead of a parse failure."""
    return web.Response(
        status=status,
        body=error_body(error_type, message),
        content_type="application/json",
        headers={"x-should-retry": "false"},
    )


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


class Observer(Protocol):
    """Who hears about every request (the in-process harness): called on the proxy's event loop."""

    def began(self) -> None: ...

    def ended(self) -> None: ...

    def outcome(self, outcome: str, exchange: Exchange | None, method: str, target: str, status: int) -> None: ...


@dataclass
class CassetteState:
    """What one proxy run knows of a cassette: its record-run state, and the requests it has keyed."""

    run: CassetteRun
    seen: dict[tuple[str, str, bytes], tuple[str, bool]] = field(default_factory=dict)
    """(method, target, exact body) -> (key, stream flag) for requests seen in this run: the fast path."""
    seen_bytes: int = 0


@dataclass
class Exchange:
    """One client request, as the proxy sees it after picking the cassette."""

    request: web.BaseRequest
    cassette: str
    method: str
    path: str
    query: str
    body: bytes
    keyed: KeyedRequest | None = None
    ordinal: int = 0
    raw_hash: str | None = None
    note: str | None = None
    """Said in the log under the request's line (why a replay missed)."""

    @property
    def key(self) -> str:
        return self.keyed.key if self.keyed else ""

    @property
    def target(self) -> str:
        """Path and raw query, as forwarded upstream and stored."""
        return f"{self.path}?{self.query}" if self.query else self.path


class Proxy:
    """Request handling for one running proxy; state is the config, the store thread and the session."""

    def __init__(
        self,
        config: ProxyConfig,
        store: StoreThread,
        upstream: Upstream,
        say: Callable[[str], None] | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.say = say or log.info
        """Where the one line per request goes: the log, or a `RequestLog` when serving."""
        self.observer = observer
        """Told of each request's start, end and outcome (the in-process harness counts them per test)."""
        self.config = config
        self.policies: dict[str, ProxyConfig] = {}
        """Settings for one cassette instead of `config` (a test's record mode, rules, pace...)."""
        self.store = store
        self.upstream = upstream
        self.cassettes: dict[str, CassetteState] = {}
        self.replays = ReplayCache()

    def settings(self, cassette: str) -> ProxyConfig:
        """What governs a cassette: its own policy when it has one, else the proxy's config."""
        return self.policies.get(cassette, self.config)

    def restart_cassette(self, cassette: str, settings: ProxyConfig | None = None) -> None:
        """Forget what this run knows of a cassette (repeat order, rules read) and give it its own settings."""
        self.cassettes.pop(cassette, None)
        self.replays.drop_cassette(cassette)
        if settings is None:
            self.policies.pop(cassette, None)
        else:
            self.policies[cassette] = settings

    async def _cassette(self, name: str) -> CassetteState:
        """A cassette's rules: those it was recorded with, else the configured ones."""
        state = self.cassettes.get(name)
        if state is None:
            stored = await self.store.cassette_rules(name)
            rules = self.settings(name).rules
            run = CassetteRun.start(stored, rules)
            if stored is not None and run.rules_stored:
                if run.rules != rules:
                    log.warning("cassette %s keeps the rules it was recorded with: %s", name, stored.rules_json)
            elif stored is not None and stored.key_scheme and stored.key_scheme != KEY_SCHEME:
                log.warning(
                    "cassette %s was recorded with key scheme %s (now %s): run `claude-vcr rekey --cassette %s`",
                    name,
                    stored.key_scheme,
                    KEY_SCHEME,
                    name,
                )
            state = self.cassettes.setdefault(name, CassetteState(run))
        return state

    def _exchange(self, request: web.BaseRequest, body: bytes) -> Exchange:
        raw_path = request.rel_url.raw_path
        cassette = request.headers.get(CASSETTE_HEADER) or self.config.cassette
        prefixed = _CASSETTE_PREFIX.match(raw_path)
        if prefixed:
            cassette = unquote(prefixed.group(1))
            raw_path = prefixed.group(2) or "/"
        validate_cassette_name(cassette)
        return Exchange(
            request=request,
            cassette=cassette,
            method=request.method,
            path=raw_path,
            query=request.rel_url.raw_query_string,
            body=body,
        )

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        if self.observer is None:
            return await self._handle(request)
        self.observer.began()
        try:
            return await self._handle(request)
        finally:
            self.observer.ended()

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            body = await request.read()
            exchange = self._exchange(request, body)
        except BadCassetteName as error:
            response = error_response(400, "invalid_request_error", str(error))
            self._log("rejected", None, request.method, request.path_qs, 400, started)
            return response
        if exchange.path.startswith(CONTROL_PREFIX):
            return self._control(request, exchange)
        response, outcome = await self._dispatch(exchange)
        self._log(outcome, exchange, exchange.method, exchange.target, response.status, started)
        if exchange.note:
            self.say(f"            {exchange.note}")
        return response

    def _control(self, request: web.BaseRequest, exchange: Exchange) -> web.Response:
        """Requests to the proxy itself: `POST /__vcr__/reset` starts the repeat order again."""
        if exchange.path == CONTROL_PREFIX + "reset" and exchange.method == "POST":
            named = request.headers.get(CASSETTE_HEADER) or _CASSETTE_PREFIX.match(request.rel_url.raw_path)
            names = [exchange.cassette] if named else list(self.cassettes)
            for name in names:
                self.cassettes.pop(name, None)
            self.say(f"reset       repeat order of {', '.join(names) or 'no cassette'}")
            return web.json_response({"reset": names})
        return error_response(404, "not_found_error", f"claude-vcr has no control endpoint {exchange.path}")

    async def _dispatch(self, exchange: Exchange) -> tuple[web.StreamResponse, str]:
        settings = self.settings(exchange.cassette)
        mode = settings.mode
        if is_local_only(exchange.method, exchange.path):
            if mode == "replay":
                return self._local_answer(exchange), "local"
            return await self._forward(exchange, record=False, local_on_failure=True)
        state = await self._cassette(exchange.cassette)
        exchange.keyed = await self._key(exchange, state)
        if mode == "passthrough":
            return await self._forward(exchange, record=False)
        exchange.ordinal = state.run.ordinal(exchange.key)
        if mode == "record":
            if state.run.replaces(exchange.key):
                self.replays.drop(exchange.cassette, exchange.key)
                await self.store.forget_key(exchange.cassette, exchange.key)
            return await self._forward(exchange, record=True)
        recordings = await self._recordings(exchange.cassette, exchange.key)
        if exchange.ordinal < len(recordings):
            return await self._replay(exchange, recordings[exchange.ordinal], "hit")
        if recordings:
            exchange.ordinal = max(exchange.ordinal, recordings[-1].ordinal + 1)
        if mode == "auto":
            return await self._forward(exchange, record=True)
        if recordings and settings.exhausted == "repeat":
            return await self._replay(exchange, recordings[-1], "hit-repeat")
        if settings.fallback == "fallback":
            return await self._forward(exchange, record=True)
        miss = await self._strict_miss(exchange, state, exhausted=len(recordings) or None)
        return miss, "miss"

    async def _key(self, exchange: Exchange, state: CassetteState) -> KeyedRequest:
        """The fast path first: exact request bytes seen before (in this run, or stored) give the key
        without parsing JSON; otherwise normalise and hash under the cassette's rules."""
        exact = (exchange.method, exchange.target, exchange.body)
        known = state.seen.get(exact)  # hashing the bytes costs less than sha256, and equality is exact
        if known is None:
            exchange.raw_hash = raw_hash(exchange.method, exchange.target, exchange.body)
            if state.run.rules_stored:
                known = await self.store.key_for_raw(exchange.cassette, exchange.raw_hash)
        if known is not None:
            keyed = KeyedRequest(known[0], exchange.body, state.run.rules, wants_stream=known[1])
        else:
            keyed = key_request(exchange.method, exchange.path, exchange.query, exchange.body, state.run.rules)
        if exact not in state.seen:
            state.seen_bytes += len(exchange.body)
            if state.seen_bytes > SEEN_BYTES_PER_CASSETTE:
                state.seen.clear()
                state.seen_bytes = len(exchange.body)
            state.seen[exact] = (keyed.key, keyed.wants_stream)
        return keyed

    async def _recordings(self, cassette: str, key: str) -> list[Recording]:
        """All recordings of a key, from memory when this run has read them before."""
        cached = self.replays.get(cassette, key)
        if cached is None:
            cached = await self.store.recordings_of(cassette, key)
            self.replays.put(cassette, key, cached)
        return cached

    def _local_answer(self, exchange: Exchange) -> web.Response:
        if exchange.method == "HEAD":
            return web.Response(status=200)
        return web.Response(status=200, body=b"{}", content_type="application/json")

    async def _strict_miss(
        self, exchange: Exchange, state: CassetteState, exhausted: int | None
    ) -> web.Response:
        """A 400 the SDKs do not retry, saying which recordings came closest and where they differ."""
        if exhausted is not None:
            report = MissReport(
                exchange.cassette, exchange.method, exchange.target, exchange.key, exhausted=exhausted
            )
        else:
            assert exchange.keyed is not None
            report = await self.store.run(
                explain_miss, exchange.cassette, exchange.method, exchange.target, exchange.keyed, state.run.rules
            )
        message = (
            report.text() + " Strict replay never calls the upstream: record with --mode record or auto."
        )
        exchange.note = report.text()
        if self.config.save_misses is not None:
            self._save_miss(exchange)
        response = error_response(400, "invalid_request_error", message)
        response.headers["x-vcr-outcome"] = "miss"
        response.headers["x-vcr-key"] = exchange.key
        return response

    def _save_miss(self, exchange: Exchange) -> None:
        """Keep a missed request (secrets dropped) for `claude-vcr explain`."""
        assert self.config.save_misses is not None
        parsed = (
            json.loads(exchange.body) if exchange.keyed and exchange.keyed.normalised is not None else None
        )
        saved = {
            "method": exchange.method,
            "path": exchange.target,
            "cassette": exchange.cassette,
            "headers": dict(header_rules.for_storage(exchange.request.headers.items())),
            "body": parsed if parsed is not None else exchange.body.decode("utf-8", "replace"),
        }
        try:
            self.config.save_misses.mkdir(parents=True, exist_ok=True)
            target = self.config.save_misses / f"{exchange.cassette}-{short_key(exchange.key)}.json"
            target.write_text(json.dumps(saved, indent=1, ensure_ascii=False))
        except OSError as error:
            log.warning("could not save the missed request: %s", error)

    async def _replay(
        self, exchange: Exchange, recording: Recording, outcome: str
    ) -> tuple[web.StreamResponse, str]:
        """The recorded answer: exact bytes, converted between SSE and JSON when the request asks for the
        other form, paced like the original when told to."""
        headers = CIMultiDict(header_rules.for_client(recording.response_headers))
        body = recording.response_body
        timings = recording.timings
        converted = self._convert(exchange, recording)
        if converted is not None:
            body, content_type = converted
            headers["content-type"] = content_type
            timings = []
            outcome += "-converted"
        headers["x-vcr-outcome"] = outcome
        headers["x-vcr-key"] = recording.key
        exchange.ordinal = recording.ordinal
        large = converted is None and recording.response_frame is not None
        if self.config.check and not large:
            await self._check(exchange, recording.status, list(headers.items()), body)
        pace = self.settings(exchange.cassette).pace
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
        while piece := reader.read(REPLAY_PIECE):
            await response.write(piece)
        await response.write_eof()
        return response, outcome

    def _convert(self, exchange: Exchange, recording: Recording) -> tuple[bytes, str] | None:
        """A stream for a non-streaming request (the Message it accumulates to), or the reverse."""
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
                message = sse.accumulate(sse.parse_sse(recording.response_body))
                return json.dumps(message).encode(), "application/json"
            return sse.message_to_sse(json.loads(recording.response_body)), "text/event-stream; charset=utf-8"
        except (ValueError, KeyError, TypeError) as error:
            log.warning("could not convert recording %s: %s", short_key(recording.key), error)
            return None

    async def _forward(
        self, exchange: Exchange, *, record: bool, local_on_failure: bool = False
    ) -> tuple[web.StreamResponse, str]:
        """Send upstream and stream the answer to the client chunk by chunk, keeping the bytes to store."""
        sent_at = time.perf_counter()
        try:
            upstream = await self.upstream.send(
                exchange.method, exchange.target, list(exchange.request.headers.items()), exchange.body
            )
        except UpstreamError as error:
            if local_on_failure:
                return self._local_answer(exchange), "local"
            return error_response(502, "api_error", f"claude-vcr {error}"), "upstream-error"
        outcome = "passthrough"
        try:
            response = web.StreamResponse(
                status=upstream.status,
                reason=upstream.reason,
                headers=CIMultiDict(header_rules.for_client(upstream.headers)),
            )
            storable = 200 <= upstream.status < 300 or self.config.record_errors
            response.headers["x-vcr-outcome"] = "recorded" if record and storable else "passthrough"
            response.headers["x-vcr-key"] = exchange.key
            await response.prepare(exchange.request)
            spool = ResponseSpool()
            timings: list[tuple[int, float]] = []
            try:
                async for chunk in upstream.iter_body():
                    timings.append((len(chunk), (time.perf_counter() - sent_at) * 1000))
                    spool.write(chunk)
                    await response.write(chunk)
            except (ConnectionResetError, asyncio.CancelledError):
                log.warning("client went away during %s %s; nothing stored", exchange.method, exchange.target)
                raise
            except UpstreamError as error:
                log.warning(
                    "upstream broke off %s %s (%r); nothing stored", exchange.method, exchange.target, error
                )
                response.force_close()
                raise
            if storable and not self.config.record_errors and sse.ends_with_error(spool.tail):
                storable = False  # a 200 stream that ended in an `error` event failed midway
                log.warning(
                    "%s %s ended with an error event; nothing stored", exchange.method, exchange.target
                )
            if record and storable:
                recording = self._recording(exchange, upstream, spool, timings, sent_at)
                try:
                    await self._remember_rules(exchange.cassette)
                    await self.store.save(recording)
                    self.replays.drop(exchange.cassette, exchange.key)
                    outcome = "recorded"
                except Exception:
                    log.exception("could not store %s %s", exchange.method, exchange.target)
                    outcome = "store-error"
            await response.write_eof()
        finally:
            await upstream.release()
        if self.config.check:
            if spool.large:
                log.info(
                    "check       %s skipped: a %d-byte body is not held in memory",
                    short_key(exchange.key),
                    spool.size,
                )
            else:
                await self._check(exchange, upstream.status, upstream.headers, spool.body())
        return response, outcome

    async def _check(self, exchange: Exchange, status: int, headers: Headers, body: bytes) -> None:
        """Monitor mode: validate a response against the protocol rules, log each finding with the key."""
        from .protocol import validate_response

        findings = await asyncio.to_thread(
            validate_response, exchange.method, exchange.path, status, headers, body, exchange.body
        )
        for finding in findings:
            if finding.severity != "info":
                log.warning("check       %s %s", short_key(exchange.key) if exchange.keyed else "-", finding)

    async def _remember_rules(self, cassette: str) -> None:
        """The first recording of a cassette stores the rules its keys were made with."""
        state = await self._cassette(cassette)
        stored = state.run.rules_to_store()
        if stored is not None:
            await self.store.set_cassette_rules(cassette, stored)

    def _recording(
        self,
        exchange: Exchange,
        upstream: UpstreamReply,
        spool: ResponseSpool,
        timings: list[tuple[int, float]],
        sent_at: float,
    ) -> Recording:
        keyed = exchange.keyed
        assert keyed is not None, "a recorded request was keyed in _dispatch"
        return Recording(
            cassette=exchange.cassette,
            key=exchange.key,
            key_scheme=KEY_SCHEME,
            method=exchange.method,
            path=exchange.target,
            status=upstream.status,
            request_headers=header_rules.for_storage(exchange.request.headers.items()),
            request_body=exchange.body,
            response_headers=header_rules.for_storage(upstream.headers),
            response_body=spool.body(),
            response_frame=spool.frame(),
            response_length=spool.size,
            timings=timings,
            model=keyed.model,
            stream=keyed.wants_stream,
            ordinal=exchange.ordinal,
            fingerprints=keyed.fingerprints,
            raw_hash=exchange.raw_hash,
            duration_ms=(time.perf_counter() - sent_at) * 1000,
            ttfb_ms=timings[0][1] if timings else None,
        )

    def _log(
        self, outcome: str, exchange: Exchange | None, method: str, target: str, status: int, started: float
    ) -> None:
        key = short_key(exchange.key) if exchange else "-" * 12
        cassette = f" [{exchange.cassette}]" if exchange and exchange.cassette != self.config.cassette else ""
        elapsed = (time.perf_counter() - started) * 1000
        self.say(f"{outcome:<11} {key} {method} {target} {status} {elapsed:.0f}ms{cassette}")
        if self.observer is not None:
            self.observer.outcome(outcome, exchange, method, target, status)


@dataclass
class RunningProxy:
    """A started proxy: where it listens and what it serves."""

    url: str
    config: ProxyConfig
    proxy: Proxy | None = field(default=None, repr=False)
    """The request handler, for in-process callers that set per-cassette policies."""

    def banner(self) -> str:
        mode = self.config.mode + (f" ({self.config.fallback})" if self.config.mode == "replay" else "")
        return (
            f"claude-vcr listening on {self.url} mode={mode} cassette={self.config.cassette} "
            f"db={self.config.db} upstream={self.config.upstream}"
        )


class RequestLog:
    """The per-request lines on a stream, written once per event-loop turn: a logging record per request
    cost 15% of replay time in a profile."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        if not self.lines:
            asyncio.get_running_loop().call_soon(self.flush)
        self.lines.append(line)

    def flush(self) -> None:
        lines, self.lines = self.lines, []
        if lines:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()


@asynccontextmanager
async def running(
    config: ProxyConfig, say: Callable[[str], None] | None = None, observer: Observer | None = None
) -> AsyncIterator[RunningProxy]:
    """Open the store, start listening, and on exit stop cleanly and leave the db as one file."""
    store = await StoreThread.open(config.db)
    upstream = open_upstream(config)
    proxy = Proxy(config, store, upstream, say, observer)
    loop = asyncio.get_running_loop()

    def make_request(*args: Any) -> web.BaseRequest:
        return web.BaseRequest(*args, loop, client_max_size=MAX_REQUEST_BYTES)

    # aiohttp's low-level server: every path goes to one handler, without routing or middlewares
    server = web.Server(proxy.handle, request_factory=make_request, access_log=None)
    runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=5)
    try:
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port)
        try:
            await site.start()
        except OSError as error:
            raise ListenError(
                f"cannot listen on {config.host}:{config.port}: {error.strerror or error}"
            ) from error
        host, port = runner.addresses[0][:2]
        shown_host = f"[{host}]" if ":" in host else host
        yield RunningProxy(url=f"http://{shown_host}:{port}", config=config, proxy=proxy)
    finally:
        await runner.cleanup()
        await upstream.close()
        await store.close()


def serve(config: ProxyConfig, announce=print) -> None:
    """Run until Ctrl-C or SIGTERM, then shut down cleanly."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        request_log = RequestLog(sys.stdout)
        async with running(config, request_log) as proxy:
            announce(proxy.banner())
            await stop.wait()
            announce("claude-vcr: shutting down")

    asyncio.run(main())
