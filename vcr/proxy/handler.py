"""Request handling: the mode policy, replay, recording and misses for one running proxy."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from urllib.parse import unquote

from aiohttp import web

from .. import headers as header_rules
from ..adapters import Upstream
from ..catalog import Catalog
from ..claude_code import BILLING, drift_line
from ..config import ProxyConfig
from ..conversation import ConversationMatch
from ..diagnosis import MissReport
from ..errors import BadRequestBody, NotFound, RulesError, UpstreamError
from ..matching import KEY_SCHEME, KeyedRequest, raw_hash, short_key
from ..names import BadCassetteName, validate_cassette_name
from ..record_run import CassetteRun
from ..records import Recording, utc_now
from ..secrets import redact as redact_text
from ..secrets import redact_target
from ..storable import unstored_hint
from ..store import DamagedRecording, Store, StoreThread
from ..untrusted import StoredValueError
from .decide import Forward, Local, MatchConversation, Miss, Read, Reject, Replay, decide, route
from .edge import BodyRefused, error_response, local_answer, read_body, refusal
from .exchange import (
    _CASSETTE_PREFIX,
    CASSETTE_HEADER,
    CONTROL_PREFIX,
    SEEN_BYTES_PER_CASSETTE,
    SEEN_STRIDE,
    CassetteState,
    Exchange,
    Observer,
)
from .offload import Offload
from .record import Recorder
from .replay import ReplayCache, send_recording
from .stored_rules import StoredRequests

log = logging.getLogger("claude_vcr.proxy")
"""One logger for the whole proxy package (tests and users filter on `claude_vcr.proxy`)."""


def unknown_cassette(catalog: Catalog, name: str) -> str | None:
    """`no cassette named 'x'; cassettes: a, b` (the management commands' words) when the db lacks it."""
    try:
        catalog.cassette_info(name)
    except NotFound as error:
        return str(error)
    return None


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
        self.offload = Offload()
        """Reads large bodies in a child process (closed by `running` with the server)."""
        self.recorder = Recorder(config, upstream, store, self.offload)
        self.stored = StoredRequests(store, self.offload)
        """Applies cassettes' rules to their stored requests (miss diagnosis, conversation match)."""
        self.started: dict[str, str] = {}
        """When each cassette's record run began (a test's restart begins a new one), else `began`."""
        self.began = utc_now()

    def settings(self, cassette: str) -> ProxyConfig:
        """What governs a cassette: its own policy when it has one, else the proxy's config."""
        return self.policies.get(cassette, self.config)

    def restart_cassette(self, cassette: str, settings: ProxyConfig | None = None) -> None:
        """Forget what this run knows of a cassette (repeat order, rules read) and give it its own settings."""
        self.cassettes.pop(cassette, None)
        self.replays.drop_cassette(cassette)
        self.started[cassette] = utc_now()
        if settings is None:
            self.policies.pop(cassette, None)
        else:
            self.policies[cassette] = settings

    async def clear_cassette(self, name: str) -> int:
        """Delete a cassette's recordings and forget what this run knew of it (a test's `rewrite` record mode)."""
        removed = await self.store.run(Store.clear_cassette, name)
        self.cassettes.pop(name, None)
        self.replays.drop_cassette(name)
        return removed

    async def count(self, cassette: str) -> int:
        """How many recordings a cassette holds (a test's `once` record mode asks before choosing)."""
        return await self.store.run(Store.count, cassette)

    async def _cassette(self, name: str) -> CassetteState:
        """A cassette's rules: those it was recorded with, else the configured ones."""
        state = self.cassettes.get(name)
        if state is None:
            stored = await self.store.cassette_rules(name)
            rules = self.settings(name).rules
            run = CassetteRun.start(stored, rules, self.started.get(name, self.began))
            if stored is not None and run.rules_stored:
                if run.rules != rules:
                    log.warning(
                        "cassette %s keeps the rules it was recorded with: %s", name, stored.rules_json
                    )
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
        refused = refusal(request, self.config.host, self.config.allow_host)
        if refused is not None:
            target = redact_target(request.raw_path[:200])
            self._log("rejected", None, request.method, target, refused.status, started)
            return refused
        try:
            body = await read_body(request, self.config.body_timeout)
            exchange = self._exchange(request, body)
        except BadCassetteName as error:
            response = error_response(400, "invalid_request_error", str(error))
            self._log("rejected", None, request.method, redact_target(request.path_qs), 400, started)
            return response
        except ConnectionResetError:  # the client hung up while sending its body: one line, no traceback
            self._log("client-gone", None, request.method, redact_target(request.path_qs), 499, started)
            return web.Response(status=499)
        except BodyRefused as error:
            self._log(
                "rejected",
                None,
                request.method,
                redact_target(request.path_qs),
                error.response.status,
                started,
            )
            self.say(f"            {error}")
            return error.response
        if exchange.path.startswith(CONTROL_PREFIX):
            return self._control(request, exchange)
        try:
            response, outcome = await self._dispatch(exchange)
        except BadRequestBody as error:
            response, outcome = (
                error_response(400, "invalid_request_error", f"claude-vcr: {error}"),
                "rejected",
            )
        except RulesError as error:  # a cassette's stored rules that are refused (see matching.nested_repeat)
            text = f"claude-vcr: cassette '{exchange.cassette}' has stored rules that cannot be used: {error}"
            log.error("%s", text)
            response, outcome = error_response(502, "api_error", text), "bad-rules"
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
        """Carry out the decisions of `decide.py` for one request: route, key, read, replay or forward."""
        settings = self.settings(exchange.cassette)
        routed = route(settings, exchange.method, exchange.path)
        if isinstance(routed, Reject):
            exchange.note = routed.reason
            return error_response(404, "not_found_error", routed.reason), "rejected"
        if isinstance(routed, Local):
            return local_answer(exchange.method), "local"
        if isinstance(routed, Forward):
            return await self.recorder.forward(exchange, routed, None)
        state = await self._cassette(exchange.cassette)
        exchange.keyed = await self._key(exchange, state)
        if settings.mode != "passthrough":
            exchange.ordinal = state.run.ordinal(exchange.key)
        decision = decide(settings, exchange.ordinal, replaces=state.run.replaces(exchange.key))
        recordings: list[Recording] = []
        if isinstance(decision, Read):
            try:
                recordings = await self._recordings(exchange.cassette, exchange.key)
            except DamagedRecording as error:
                log.error("%s", error)
                if isinstance(error.__cause__, StoredValueError):  # valid bytes, values claude-vcr never writes
                    response = error_response(502, "api_error", f"{error} (claude-vcr never replays it)")
                    response.headers.update({"x-vcr-outcome": "unsafe", "x-vcr-key": exchange.key})
                    return response, "unsafe"
                return error_response(502, "api_error", str(error)), "damaged"
            decision = decide(settings, exchange.ordinal, len(recordings))
        if isinstance(decision, MatchConversation):
            found = await self._match_conversation(exchange, state)
            replayed = await self._replay_conversation(exchange, state, found) if found else None
            if replayed is not None:
                return replayed
            decision = decide(settings, exchange.ordinal, len(recordings), conversation_tried=True)
        if isinstance(decision, Replay):
            return await self._replay(exchange, recordings[decision.index], decision.outcome)
        if recordings:  # past the last recording: a new one takes the next ordinal
            exchange.ordinal = max(exchange.ordinal, recordings[-1].ordinal + 1)
        if isinstance(decision, Forward):
            return await self._forward(exchange, decision, state)
        assert isinstance(decision, Miss)
        return await self._strict_miss(exchange, state, exhausted=decision.exhausted), "miss"

    async def _forward(
        self, exchange: Exchange, how: Forward, state: CassetteState
    ) -> tuple[web.StreamResponse, str]:
        """Record (or pass on) through the recorder; a saved answer replaces what the cache held of its key."""
        if how.replace:
            self.replays.drop(exchange.cassette, exchange.key)
            await self.store.forget_key(exchange.cassette, exchange.key, state.run.started)
        response, outcome = await self.recorder.forward(exchange, how, state.run if how.record else None)
        if outcome == "recorded":
            self.replays.drop(exchange.cassette, exchange.key)
        if exchange.rules_changed:  # a `rekey` ran: the next request reads the cassette's new rules
            self.cassettes.pop(exchange.cassette, None)
            self.replays.drop_cassette(exchange.cassette)
        return response, outcome

    async def _replay(
        self, exchange: Exchange, recording: Recording, outcome: str
    ) -> tuple[web.StreamResponse, str]:
        """Send a recording, paced and checked as the cassette's settings say."""
        settings = self.settings(exchange.cassette)
        state = self.cassettes.get(exchange.cassette)
        place = (recording.key, recording.ordinal)
        if (
            state is not None
            and not state.drift_said
            and place not in state.drift_checked
            and BILLING.encode() in exchange.body
        ):
            state.drift_checked.add(place)
            full = await self.store.read(
                Catalog.recording, exchange.cassette, recording.key, recording.ordinal
            )
            line = (
                None
                if full is None
                else drift_line(
                    full.request_headers, full.request_body, exchange.request.headers, exchange.body
                )
            )
            if line is not None:
                state.drift_said = True
                exchange.note = f"cassette {exchange.cassette}: harness drift {line}"
                log.warning(exchange.note)
        return await send_recording(exchange, recording, outcome, settings.pace, self.config.check)

    async def _match_conversation(self, exchange: Exchange, state: CassetteState) -> ConversationMatch | None:
        """The recording of the same conversation, if any; none when the cassette's rules stall on its recordings."""
        if state.rules_stalled is not None:
            return None
        assert exchange.keyed is not None
        try:
            return await self.stored.match_conversation(
                exchange.cassette,
                exchange.method,
                exchange.stored_target,
                exchange.keyed,
                state.run.rules,
                state.conversations,
            )
        except RulesError as error:
            state.rules_stalled = str(error)
            log.warning("claude-vcr: cassette '%s': no conversation match: %s", exchange.cassette, error)
            return None

    async def _replay_conversation(
        self, exchange: Exchange, state: CassetteState, found: ConversationMatch
    ) -> tuple[web.StreamResponse, str] | None:
        """A recording of the same conversation stands in for the missed key, in its own order of repeats
        (past the last one as `--exhausted` says); None when there is none to give."""
        recordings = await self._recordings(exchange.cassette, found.key)
        ordinal = state.run.ordinal(found.key)
        if not recordings or (
            ordinal >= len(recordings) and self.settings(exchange.cassette).exhausted == "miss"
        ):
            return None
        log.warning(found.warning(exchange.key))
        return await self._replay(exchange, recordings[min(ordinal, len(recordings) - 1)], "hit-conversation")

    async def _key(self, exchange: Exchange, state: CassetteState) -> KeyedRequest:
        """The fast path first: exact request bytes seen before (in this run, or stored) give the key
        without parsing JSON; otherwise normalise and hash under the cassette's rules."""
        body = exchange.body
        probe = (exchange.method, exchange.target, len(body), body[::SEEN_STRIDE])
        # hashing a sample, then comparing the bytes, costs less than hashing all of them
        entry = state.seen.get(probe)
        known = entry[1:] if entry is not None and entry[0] == body else None
        seen = known is not None
        if known is None:
            exchange.raw_hash = raw_hash(exchange.method, exchange.stored_target, body)
            if state.run.rules_stored:
                known = await self.store.key_for_raw(exchange.cassette, exchange.raw_hash)
        if known is not None:
            keyed = KeyedRequest(known[0], body, state.run.rules, wants_stream=known[1])
        else:
            keyed = await self.offload.key(
                exchange.method, exchange.path, exchange.query, body, state.run.rules
            )
        if not seen:
            state.seen_bytes += len(body)
            if state.seen_bytes > SEEN_BYTES_PER_CASSETTE:
                state.seen.clear()
                state.seen_bytes = len(body)
            state.seen[probe] = (body, keyed.key, keyed.wants_stream)
        return keyed

    async def _recordings(self, cassette: str, key: str) -> list[Recording]:
        """All recordings of a key, from memory when this run has read them before."""
        cached = self.replays.get(cassette, key)
        if cached is None:
            cached = await self.store.recordings_of(cassette, key)
            self.replays.put(cassette, key, cached)
        return cached

    async def _explain_miss(self, exchange: Exchange, state: CassetteState) -> str:
        """The miss line: which recordings came closest and where they differ, unless the cassette's rules
        stall on its stored requests (then it says so instead, and this run stops applying them there)."""
        assert exchange.keyed is not None
        if state.rules_stalled is None:
            try:
                report = await self.stored.explain_miss(
                    exchange.cassette,
                    exchange.method,
                    exchange.stored_target,
                    exchange.keyed,
                    state.run.rules,
                )
                return report.text()
            except RulesError as error:
                state.rules_stalled = str(error)
        return (
            f"claude-vcr: no recording for {exchange.method} {exchange.stored_target} in cassette "
            f"'{exchange.cassette}' (key {short_key(exchange.key)}); its closest recordings are not named: the "
            f"cassette's stored rules took too long on them ({state.rules_stalled})."
        )

    async def _strict_miss(
        self, exchange: Exchange, state: CassetteState, exhausted: int | None
    ) -> web.Response:
        """A 400 the SDKs do not retry, saying which recordings came closest and where they differ."""
        unknown = (
            None if exhausted is not None else await self.store.read(unknown_cassette, exchange.cassette)
        )
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
            text = await self._explain_miss(exchange, state)
        unstored = await self.store.read(Catalog.unstored_answer, exchange.cassette, exchange.key)
        if unstored is not None:
            text += " " + unstored_hint(unstored, self.config.record_errors_option)
        message = f"{text} Strict replay never calls the upstream: {self.settings(exchange.cassette).how_to_record}."
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

    def _log(
        self, outcome: str, exchange: Exchange | None, method: str, target: str, status: int, started: float
    ) -> None:
        key = short_key(exchange.key) if exchange and exchange.key else "-" * 12
        cassette = f" [{exchange.cassette}]" if exchange and exchange.cassette != self.config.cassette else ""
        elapsed = (time.perf_counter() - started) * 1000
        self.say(f"{outcome:<11} {key} {method} {target} {status} {elapsed:.0f}ms{cassette}")
        if self.observer is not None:
            self.observer.outcome(outcome, exchange, method, target, status)
