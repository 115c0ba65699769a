"""The aiohttp reverse proxy: picks a cassette, replays a recording or forwards, tees and records."""

from __future__ import annotations

import asyncio
import errno
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

import zstandard
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from multidict import CIMultiDict

from . import headers as header_rules
from . import sse
from .adapters import Upstream, UpstreamReply, open_upstream
from .compression import LARGE_BODY, ResponseSpool
from .config import ProxyConfig
from .conversation import ConversationMatch, match_conversation
from .diagnosis import MissReport, explain_miss
from .errors import BadRequestBody, ListenError, NotFound, UpstreamError
from .headers import Headers
from .matching import KEY_SCHEME, KeyedRequest, key_request, raw_hash, short_key
from .names import BadCassetteName, validate_cassette_name
from .protocol import error_body
from .record_run import CassetteRun
from .records import Recording
from .redact import screen
from .secrets import redact as redact_text
from .secrets import redact_target
from .store import DamagedRecording, Store, StoreThread

log = logging.getLogger("claude_vcr.proxy")

CASSETTE_HEADER = "X-VCR-Cassette"
CONTROL_PREFIX = "/__vcr__/"
SEEN_BYTES_PER_CASSETTE = 64 * 1024 * 1024
REPLAY_PIECE = 64 * 1024
"""How much of a large (streamed-from-disk) recording is decompressed and written at a time."""
MAX_REQUEST_BYTES = 64 * 1024 * 1024
"""Twice the API's own 32 MB limit on Messages bodies."""

JSON_MEDIA_TYPE = "application/json"
LINGER_SECONDS = 1.0
"""After a body refused unread (408, 413), how long the rest is read and dropped before closing (aiohttp: 10 s)."""
HELD_BYTES = LARGE_BODY
"""A recorded answer that is not a stream is sent once saved, so `x-vcr-outcome` is the result; past this
size it is streamed on (`recording`) instead of held in memory."""
_CASSETTE_PREFIX = re.compile(r"^/c/([^/]*)(/.*)?$")


_STRICT_NOTE = " Strict replay never calls the upstream: record with --mode record or auto."


def doubled_v1(path: str) -> str | None:
    """A client whose base URL ends in /v1 asks for /v1/v1/messages: say so, rather than miss or 404."""
    if not path.startswith("/v1/v1/"):
        return None
    return (
        f"claude-vcr: the path {path} has /v1 twice: the client's base URL ends in an extra /v1. "
        "Use the proxy's address without it, e.g. ANTHROPIC_BASE_URL=http://127.0.0.1:8000 "
        "(the SDKs and Claude Code add /v1 themselves)."
    )


def unknown_cassette(store: Store, name: str) -> str | None:
    """`no cassette named 'x'; cassettes: a, b` (the management commands' words) when the db lacks it."""
    from .catalog import Catalog

    try:
        Catalog(store.conn).cassette_info(name)
    except NotFound as error:
        return str(error)
    return None


def cassette_counts(store: Store) -> dict[str, int]:
    """Recordings per cassette, for the start-up check."""
    from .catalog import Catalog

    return {row.name: row.recordings for row in Catalog(store.conn).cassettes()}


def startup_warnings(config: ProxyConfig, counts: dict[str, int]) -> list[str]:
    """What a person should know before the first request: a default cassette with nothing to replay."""
    if config.mode not in ("replay", "auto") or counts.get(config.cassette):
        return []
    others = [f"{name} ({count})" for name, count in sorted(counts.items()) if count]
    if config.mode == "auto":
        then = f"requests that name no cassette are forwarded to {config.upstream} and recorded"
    else:
        then = "requests that name no cassette will miss"
    there = f"cassettes in {config.db}: {', '.join(others)}" if others else f"{config.db} has no recordings"
    return [
        f"claude-vcr: warning: cassette {config.cassette!r} has no recordings, so {then}; {there}. "
        "Pick one with --cassette NAME, or per request with the base URL http://HOST:PORT/c/NAME."
    ]


def creates_db(config: ProxyConfig) -> bool:
    """Strict replay only reads: a db that does not exist is a wrong --db, never a new empty file."""
    return not (config.mode == "replay" and config.fallback == "strict")


def listen_error(config: ProxyConfig, error: OSError) -> ListenError:
    """Cannot listen: in use (suggest --port 0), or not ours to bind."""
    text = f"cannot listen on {config.host}:{config.port}: {error.strerror or error}"
    if error.errno == errno.EADDRINUSE:
        text += (
            " (another claude-vcr serve, or another program, is using it: stop it, or pass --port 0 "
            "for a free port)"
        )
    return ListenError(text)


def is_local_only(method: str, path: str) -> bool:
    """Telemetry and connection probes (`HEAD` on any path: Claude Code probes `/api/hello` and `/`): forwarded
    when online, never stored, answered locally in replay."""
    return method == "HEAD" or path.startswith("/api/event_logging/")


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
    conversations: dict[int, str | None] = field(default_factory=dict)
    """Recording id -> its conversation digest, for `--match conversation`."""


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
        """Path and raw query, as forwarded upstream."""
        return f"{self.path}?{self.query}" if self.query else self.path

    @property
    def stored_target(self) -> str:
        """The target as stored and logged: credentials in the query replaced (`secrets.redact_target`)."""
        return redact_target(self.target)


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
        refused = refusal(request)
        if refused is not None:
            self._log("rejected", None, request.method, request.raw_path, refused.status, started)
            return refused
        try:
            body = await self._read_body(request)
            exchange = self._exchange(request, body)
        except BadCassetteName as error:
            response = error_response(400, "invalid_request_error", str(error))
            self._log("rejected", None, request.method, redact_target(request.path_qs), 400, started)
            return response
        except BodyRefused as error:
            self._log("rejected", None, request.method, request.path_qs, error.response.status, started)
            self.say(f"            {error}")
            return error.response
        if exchange.path.startswith(CONTROL_PREFIX):
            return self._control(request, exchange)
        try:
            response, outcome = await self._dispatch(exchange)
        except BadRequestBody as error:
            response, outcome = error_response(400, "invalid_request_error", f"claude-vcr: {error}"), "rejected"
        except ConnectionResetError:
            # the client hung up: one line here, no traceback from aiohttp (the answer was not stored)
            self._log("client-gone", exchange, exchange.method, exchange.stored_target, 499, started)
            return web.Response(status=499)
        except UpstreamError:
            # the upstream broke off mid-stream (its warning is logged): the client sees a cut, not a clean end
            if request.transport is not None:
                request.transport.close()
            self._log("upstream-error", exchange, exchange.method, exchange.stored_target, 502, started)
            return web.Response(status=502)
        self._log(outcome, exchange, exchange.method, exchange.stored_target, response.status, started)
        if exchange.note:
            self.say(f"            {exchange.note}")
        return response

    async def _read_body(self, request: web.BaseRequest) -> bytes:
        """The request body, read with an idle timeout and a size limit (at once when it is all here)."""
        content = request.content
        if content.is_eof():
            body = await content.read()
        else:
            try:
                body = await self._read_arriving(content)
            except asyncio.TimeoutError:
                response = error_response(
                    408, "timeout_error", f"claude-vcr: the request body stalled for {self.config.body_timeout:g}s"
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

    async def _read_arriving(self, content: Any) -> bytes:
        """Read until the end or past the size limit; TimeoutError after `body_timeout` seconds without data.
        One rescheduled timeout per body (3.11+): a `wait_for` per chunk cost replay throughput."""
        seconds = self.config.body_timeout
        pieces = bytearray()
        if sys.version_info < (3, 11):
            while len(pieces) <= MAX_REQUEST_BYTES and (chunk := await asyncio.wait_for(content.readany(), seconds)):
                pieces += chunk
            return bytes(pieces)
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(seconds) as window:
            while len(pieces) <= MAX_REQUEST_BYTES and (chunk := await content.readany()):
                pieces += chunk
                window.reschedule(loop.time() + seconds)
        return bytes(pieces)

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
        doubled = doubled_v1(exchange.path)
        if doubled is not None:
            exchange.note = doubled
            return error_response(404, "not_found_error", doubled), "rejected"
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
        try:
            recordings = await self._recordings(exchange.cassette, exchange.key)
        except DamagedRecording as error:
            log.error("%s", error)
            return error_response(500, "api_error", str(error)), "damaged"
        if exchange.ordinal < len(recordings):
            return await self._replay(exchange, recordings[exchange.ordinal], "hit")
        if not recordings and settings.match == "conversation":
            found = await self.store.read(
                match_conversation,
                exchange.cassette,
                exchange.method,
                exchange.stored_target,
                exchange.keyed,
                state.run.rules,
                state.conversations,
            )
            replayed = await self._replay_conversation(exchange, state, found) if found else None
            if replayed is not None:
                return replayed
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

    async def _replay_conversation(
        self, exchange: Exchange, state: CassetteState, found: ConversationMatch
    ) -> tuple[web.StreamResponse, str] | None:
        """A recording of the same conversation stands in for the missed key, in its own order of repeats
        (past the last one as `--exhausted` says); None when there is none to give."""
        recordings = await self._recordings(exchange.cassette, found.key)
        ordinal = state.run.ordinal(found.key)
        if not recordings or (ordinal >= len(recordings) and self.settings(exchange.cassette).exhausted == "miss"):
            return None
        log.warning(found.warning(exchange.key))
        return await self._replay(exchange, recordings[min(ordinal, len(recordings) - 1)], "hit-conversation")

    async def _key(self, exchange: Exchange, state: CassetteState) -> KeyedRequest:
        """The fast path first: exact request bytes seen before (in this run, or stored) give the key
        without parsing JSON; otherwise normalise and hash under the cassette's rules."""
        exact = (exchange.method, exchange.target, exchange.body)
        known = state.seen.get(exact)  # hashing the bytes costs less than sha256, and equality is exact
        if known is None:
            exchange.raw_hash = raw_hash(exchange.method, exchange.stored_target, exchange.body)
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
        unknown = None if exhausted is not None else await self.store.run(unknown_cassette, exchange.cassette)
        if unknown is not None:
            text = (
                f"claude-vcr: no recording for {exchange.method} {exchange.stored_target} in cassette "
                f"'{exchange.cassette}' (key {short_key(exchange.key)}): {unknown} (in {self.config.db})."
            )
        elif exhausted is not None:
            text = MissReport(
                exchange.cassette, exchange.method, exchange.stored_target, exchange.key, exhausted=exhausted
            ).text()
        else:
            assert exchange.keyed is not None
            report = await self.store.read(
                explain_miss,
                exchange.cassette,
                exchange.method,
                exchange.stored_target,
                exchange.keyed,
                state.run.rules,
            )
            text = report.text()
        message = text + _STRICT_NOTE
        exchange.note = text
        if self.config.save_misses is not None:
            self._save_miss(exchange)
        response = error_response(400, "invalid_request_error", message)
        response.headers["x-vcr-outcome"] = "miss"
        response.headers["x-vcr-key"] = exchange.key
        return response

    def _save_miss(self, exchange: Exchange) -> None:
        """Keep a missed request for `claude-vcr explain`: credential headers dropped, secrets in the body and
        query as placeholders (it keys the same)."""
        assert self.config.save_misses is not None
        parsed = (
            json.loads(exchange.body) if exchange.keyed and exchange.keyed.normalised is not None else None
        )
        saved = {
            "method": exchange.method,
            "path": exchange.stored_target,
            "cassette": exchange.cassette,
            "headers": dict(header_rules.for_storage(exchange.request.headers.items())),
            "body": parsed if parsed is not None else exchange.body.decode("utf-8", "replace"),
        }
        saved["body"] = json.loads(redact_text(json.dumps(saved["body"], ensure_ascii=False))[0])
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
        try:
            while piece := reader.read(REPLAY_PIECE):
                await response.write(piece)
        except zstandard.ZstdError as error:  # a large body is decompressed as it is sent
            log.error("recording %s is damaged (%s); the answer was cut off", short_key(recording.key), error)
            response.force_close()
            return response, "damaged"
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
                message = sse.accumulate(sse.parse_sse(recording.response_body), exchange.request.headers)
                return json.dumps(message).encode(), "application/json"
            return sse.message_to_sse(json.loads(recording.response_body)), "text/event-stream; charset=utf-8"
        except (ValueError, KeyError, TypeError) as error:
            log.warning("could not convert recording %s: %s", short_key(recording.key), error)
            return None

    async def _forward(
        self, exchange: Exchange, *, record: bool, local_on_failure: bool = False
    ) -> tuple[web.StreamResponse, str]:
        """Send upstream and stream the answer to the client chunk by chunk, keeping the bytes to store; a
        non-streamed answer being recorded is held until saved, so its `x-vcr-outcome` is the result."""
        sent_at = time.perf_counter()
        try:
            upstream = await self.upstream.send(
                exchange.method, exchange.target, list(exchange.request.headers.items()), exchange.body
            )
        except UpstreamError as error:
            if local_on_failure:
                return self._local_answer(exchange), "local"
            exchange.note = str(error)
            return error_response(502, "api_error", f"claude-vcr {error}"), "upstream-error"
        outcome = "passthrough"
        try:
            response = web.StreamResponse(
                status=upstream.status,
                reason=upstream.reason,
                headers=CIMultiDict(header_rules.for_client(upstream.headers)),
            )
            storable = 200 <= upstream.status < 300 or self.config.record_errors
            streamed = sse.media_type(upstream.headers) == sse.SSE_MEDIA_TYPE
            # the header says what is known when it leaves: a stream's before its end, a held answer's once saved
            response.headers["x-vcr-outcome"] = "recording" if record and storable else "passthrough"
            response.headers["x-vcr-key"] = exchange.key
            held: list[bytes] | None = [] if record and storable and not streamed else None
            if held is None:
                await response.prepare(exchange.request)
            spool = ResponseSpool()
            timings: list[tuple[int, float]] = []
            try:
                async for chunk in upstream.iter_body():
                    timings.append((len(chunk), (time.perf_counter() - sent_at) * 1000))
                    spool.write(chunk)
                    if held is None:
                        await response.write(chunk)
                        continue
                    held.append(chunk)
                    if spool.size > HELD_BYTES:  # too large to hold: streamed on, as `recording`
                        await response.prepare(exchange.request)
                        for piece in held:
                            await response.write(piece)
                        held = None
            except (ConnectionResetError, asyncio.CancelledError):
                raise  # the client went away: nothing stored, said in `handle`'s one line
            except UpstreamError as error:
                log.warning(
                    "upstream broke off %s %s (%r); nothing stored", exchange.method, exchange.stored_target, error
                )
                if held is not None:
                    return error_response(502, "api_error", f"claude-vcr: the upstream broke off: {error}"), (
                        "upstream-error"
                    )
                response.force_close()
                raise
            if storable and not self.config.record_errors and sse.ends_with_error(spool.tail):
                storable = False  # a 200 stream that ended in an `error` event failed midway
                log.warning(
                    "%s %s ended with an error event; nothing stored", exchange.method, exchange.stored_target
                )
            if record and storable:
                recording = self._recording(exchange, upstream, spool, timings, sent_at)
                await asyncio.to_thread(self._screen, recording)  # regexes over large bodies: off the loop
                try:
                    await self._remember_rules(exchange.cassette)
                    await self.store.save(recording)
                    self.replays.drop(exchange.cassette, exchange.key)
                    outcome = "recorded"
                except Exception as error:
                    log.error("store-error: could not store %s %s: %s", exchange.method, exchange.stored_target, error)
                    outcome = "store-error"
            if held is not None:
                response.headers["x-vcr-outcome"] = outcome
                response.content_length = spool.size
                try:
                    await response.prepare(exchange.request)
                    await response.write(b"".join(held))
                    await response.write_eof()
                except ConnectionResetError:
                    exchange.note = "the client hung up before its answer was sent (the answer is stored)"
                    return response, outcome
            else:
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
            validate_response, exchange.path, status, headers, body, exchange.body
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
        recording = Recording(
            cassette=exchange.cassette,
            key=exchange.key,
            key_scheme=KEY_SCHEME,
            method=exchange.method,
            path=exchange.stored_target,
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
        return recording

    def _screen(self, recording: Recording) -> None:
        """Credential-shaped strings in the bodies: one warning naming the recording (never the secret),
        and with `--redact` the bodies stored with placeholders instead (the key is the same either way)."""
        screened = screen(recording, redact=self.config.redact)
        if screened:
            log.warning("%s", screened.warning(recording))

    def _log(
        self, outcome: str, exchange: Exchange | None, method: str, target: str, status: int, started: float
    ) -> None:
        key = short_key(exchange.key) if exchange and exchange.key else "-" * 12
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
    warnings: list[str] = field(default_factory=list)
    """Said once at start (see `startup_warnings`)."""
    store: StoreThread | None = None
    """Its counts of saves (`saved`, `failed`) are the summary `serve` prints when it stops."""
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
        body = error_body("timeout_error", f"claude-vcr: no complete request headers in {self.header_timeout:g}s")
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


@asynccontextmanager
async def running(
    config: ProxyConfig, say: Callable[[str], None] | None = None, observer: Observer | None = None
) -> AsyncIterator[RunningProxy]:
    """Open the store, start listening, and on exit stop cleanly and leave the db as one file."""
    store = await StoreThread.open(config.db, create=creates_db(config))
    upstream = open_upstream(config)
    proxy = Proxy(config, store, upstream, say, observer)
    loop = asyncio.get_running_loop()

    def make_request(*args: Any) -> web.BaseRequest:
        return web.BaseRequest(*args, loop, client_max_size=MAX_REQUEST_BYTES)

    # aiohttp's low-level server: every path goes to one handler, without routing or middlewares
    server = _Server(
        proxy.handle,
        request_factory=make_request,
        access_log=None,
        header_timeout=config.header_timeout,
        lingering_time=LINGER_SECONDS,
    )
    runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=5)
    try:
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port)
        try:
            await site.start()
        except OSError as error:
            raise listen_error(config, error) from error
        host, port = runner.addresses[0][:2]
        shown_host = f"[{host}]" if ":" in host else host
        warnings = startup_warnings(config, await store.run(cassette_counts))
        yield RunningProxy(
            url=f"http://{shown_host}:{port}", config=config, warnings=warnings, store=store, proxy=proxy
        )
    finally:
        await runner.cleanup()
        await upstream.close()
        await store.close()


def serve(config: ProxyConfig, announce=print) -> int:
    """Run until Ctrl-C or SIGTERM, then shut down cleanly; returns how many recordings could not be
    stored (each was logged as `store-error` when it happened)."""
    failed = 0

    async def main() -> None:
        nonlocal failed
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        request_log = RequestLog(sys.stdout)
        async with running(config, request_log) as proxy:
            announce(proxy.banner())
            for warning in proxy.warnings:
                print(warning, file=sys.stderr, flush=True)
            await stop.wait()
            announce("claude-vcr: shutting down")
        assert proxy.store is not None
        failed = proxy.store.failed
        if proxy.store.saved or failed:
            announce(
                f"claude-vcr: {proxy.store.saved} recording(s) stored, {failed} could not be stored"
                + (" (see the store-error lines above)" if failed else "")
            )

    asyncio.run(main())
    return failed
