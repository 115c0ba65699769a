"""The proxy on a thread of its own, for code that is not async: the pytest plugin, `claude-vcr run` and
`use_cassette` share it.

One proxy serves a whole run: each use of a cassette (a test, a `with` block) gets the base URL
`http://127.0.0.1:PORT/c/<cassette>`, so selecting a cassette never restarts anything. A use's record mode
(pytest-recording's words) becomes the proxy's mode for that cassette, plus an operation on the cassette
first: `rewrite` drops it, `once` records only a cassette that has nothing. The `Ledger` counts what every
request did, per cassette, and finds the recordings a run never used.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import dataclasses
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import providers
from .config import MATCHES, ProxyConfig, from_environment, parse_pace
from .errors import InvalidInput, NotFound
from .matching import Rules, load_rules
from .names import validate_cassette_name
from .record_modes import RECORD_MODES
from .storable import NOT_STORED

if TYPE_CHECKING:
    from .proxy import Exchange

API_KEY = "ANTHROPIC_API_KEY"
REPLAY_KEY = "claude-vcr-replay"
"""Put in ANTHROPIC_API_KEY for a replaying use when no key is set, so SDK clients can be built in CI."""
REPLAYED = ("hit", "hit-repeat", "hit-converted", "hit-repeat-converted")
SETTLE_SECONDS = 10.0


@dataclass(frozen=True)
class Outcome:
    """What the proxy did with one request."""

    cassette: str
    outcome: str
    """`hit`, `recorded`, `miss`... as in the proxy's log."""
    method: str
    target: str
    status: int
    key: str
    ordinal: int
    note: str | None = None
    """For a miss: the diagnosis (closest recordings and where they differ)."""

    @property
    def replayed(self) -> bool:
        return self.outcome in REPLAYED

    def line(self) -> str:
        shown = f"{self.outcome} {self.method} {self.target} {self.status}"
        return f"{shown}: {self.note}" if self.note else shown


@dataclass
class CassetteUse:
    """One use of a cassette (a test, a `with` block): where clients go, and what their requests did."""

    cassette: str
    base_url: str
    db: Path
    record_mode: str
    mode: str
    """The proxy mode the record mode came to for this use: record, replay (strict) or auto."""
    heard: list[Outcome] = field(default_factory=list, repr=False)
    """Outcomes as the proxy tells them; `outcomes` waits for requests still being handled first."""
    settle: Callable[[], None] = field(default=lambda: None, repr=False)

    @property
    def outcomes(self) -> list[Outcome]:
        """What this use's requests did, in order: a client may have its answer before the proxy is done."""
        self.settle()
        return list(self.heard)

    @property
    def recorded(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.outcome == "recorded"]

    @property
    def replayed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.replayed]

    @property
    def missed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.outcome == "miss"]

    @property
    def unstored(self) -> list[Outcome]:
        """Requests answered from the upstream whose recording could not be saved (the proxy logged why)."""
        return [o for o in self.outcomes if o.outcome in ("store-error", "too-large")]

    def miss_report(self) -> str:
        """Why this use's requests missed, one paragraph each; empty when none did."""
        missed = self.missed
        lines = [f"{len(missed)} request(s) had no recording in cassette {self.cassette!r} ({self.db}):"]
        repeats: dict[str, int] = {}
        for miss in missed:  # a client retrying the same request is one line, with how many times
            repeats[miss.line()] = repeats.get(miss.line(), 0) + 1
        lines += [f"- {line}" + (f" ({count} times: the client retried)" if count > 1 else "")
                  for line, count in repeats.items()]
        lines.append(
            f"record mode {self.record_mode!r} never contacts the upstream for a missing recording; record with "
            "--claude-vcr-record-mode=once (a new cassette), new_episodes (add what is missing) or rewrite."
        )
        return "\n".join(lines) if missed else ""


DRIFT = "harness drift "
"""How the proxy's note on a replay starts the drift line (`handler._replay`)."""


@dataclass
class Tally:
    """One cassette over a run: counts, and the recordings that answered or were made."""

    recorded: int = 0
    replayed: int = 0
    missed: int = 0
    other: int = 0
    used: set[tuple[str, int]] = field(default_factory=set)
    not_stored: dict[str, int] = field(default_factory=dict)
    """Answers passed through while recording without being stored, by why (transient errors...)."""
    drift: str | None = None
    """The first Claude Code harness drift a replay reported (`claude-code 2.1.328 -> 2.1.337: ...`)."""

    def add(self, outcome: Outcome) -> None:
        if self.drift is None and outcome.note and DRIFT in outcome.note:
            self.drift = outcome.note.split(DRIFT, 1)[1]
        if outcome.outcome == "recorded":
            self.recorded += 1
        elif outcome.replayed:
            self.replayed += 1
        elif outcome.outcome == "miss":
            self.missed += 1
        else:
            self.other += 1
            if outcome.note and outcome.note.startswith(NOT_STORED):
                reason = outcome.note[len(NOT_STORED) :]
                self.not_stored[reason] = self.not_stored.get(reason, 0) + 1
            return
        self.used.add((outcome.key, outcome.ordinal))


@dataclass
class Ledger:
    """Every cassette a run touched; mergeable, so pytest-xdist's workers add up to one summary."""

    cassettes: dict[str, Tally] = field(default_factory=dict)

    def add(self, outcome: Outcome) -> None:
        if outcome.outcome not in ("local", "rejected"):
            self.cassettes.setdefault(outcome.cassette, Tally()).add(outcome)

    def to_data(self) -> dict[str, Any]:
        """Plain lists and numbers (what pytest-xdist can send from a worker)."""
        return {
            name: [t.recorded, t.replayed, t.missed, t.other, sorted([k, o] for k, o in t.used), t.not_stored, t.drift]
            for name, t in self.cassettes.items()
        }

    def merge(self, data: Mapping[str, Any]) -> None:
        for name, (recorded, replayed, missed, other, used, not_stored, *drift) in data.items():
            tally = self.cassettes.setdefault(name, Tally())
            tally.drift = tally.drift or (drift[0] if drift else None)
            tally.recorded += recorded
            tally.replayed += replayed
            tally.missed += missed
            tally.other += other
            tally.used.update((key, ordinal) for key, ordinal in used)
            for reason, count in not_stored.items():
                tally.not_stored[reason] = tally.not_stored.get(reason, 0) + count

    def not_stored(self) -> dict[str, int]:
        """Answers not stored over the whole run, by why."""
        total: dict[str, int] = {}
        for tally in self.cassettes.values():
            for reason, count in tally.not_stored.items():
                total[reason] = total.get(reason, 0) + count
        return total

    def orphans(self, db: Path) -> dict[str, list[tuple[str, int]]]:
        """Recordings in the touched cassettes that no request of this run used: (key, ordinal) each."""
        from .catalog import Catalog

        found: dict[str, list[tuple[str, int]]] = {}
        if not self.cassettes or not Path(db).exists():
            return found
        with Catalog.open(db) as catalog:
            for name, tally in sorted(self.cassettes.items()):
                try:
                    rows = catalog.recordings(name)
                except NotFound:
                    continue
                unused = [(r.key, r.ordinal) for r in rows if (r.key, r.ordinal) not in tally.used]
                if unused:
                    found[name] = unused
        return found


def test_config(environ: Mapping[str, str], **given: Any) -> ProxyConfig:
    """The proxy settings of a test run: the `VCR_*` variables under `given`, a free port, and a repeated
    request past its recordings missing (as vcrpy plays each recorded response once) unless VCR_EXHAUSTED
    says otherwise."""
    if "exhausted" not in given and "VCR_EXHAUSTED" not in environ:
        given["exhausted"] = "miss"
    return from_environment(environ, **{"port": 0, **given})


def proxy_mode(record_mode: str, has_recordings: bool) -> str:
    """pytest-recording's record mode as the proxy's mode for one use of a cassette (after `rewrite` has
    dropped it): none -> strict replay, once -> record an empty cassette else strict replay,
    new_episodes and rewrite -> auto, all -> record."""
    if record_mode not in RECORD_MODES:
        raise InvalidInput(f"record mode {record_mode!r}: use one of {', '.join(RECORD_MODES)}")
    if record_mode == "once":
        return "replay" if has_recordings else "record"
    return {"none": "replay", "new_episodes": "auto", "rewrite": "auto", "all": "record"}[record_mode]


def cassette_settings(
    base: ProxyConfig,
    *,
    preset: str | tuple[str, ...] | list[str] | None = None,
    rules: str | os.PathLike | Rules | Mapping[str, Any] | None = None,
    match: str | None = None,
    pace: str | float | None = None,
    exhausted: str | None = None,
) -> ProxyConfig:
    """The settings one use of a cassette asks for (a marker's or `use_cassette`'s keywords) over `base`:
    `rules` is a rules file, a `Rules`, or the same rules inline (`{"ignore": [...], "replace": [...]}`),
    `preset` a built-in rules name, `match` serve's `--match` (`exact` or `conversation`)."""
    changes: dict[str, Any] = {}
    if isinstance(rules, Mapping):
        changes["rules"] = Rules.from_dict(dict(rules))
    elif rules is not None:
        changes["rules"] = rules if isinstance(rules, Rules) else load_rules(rules)
    if match is not None:
        if match not in MATCHES:
            raise InvalidInput(f"match={match!r}: use one of {', '.join(MATCHES)}")
        changes["match"] = match
    if preset is not None:
        names = (preset,) if isinstance(preset, str) else tuple(preset)
        changes["presets"] = tuple(dict.fromkeys(base.presets + names))
        if "rules" not in changes:
            changes["rules"] = base.rules
    if pace is not None:
        try:
            changes["pace"] = parse_pace(pace) if isinstance(pace, str) else float(pace)
        except InvalidInput as error:
            raise InvalidInput(f"pace={error}") from None
    if exhausted is not None:
        if exhausted not in ("repeat", "miss"):
            raise InvalidInput(f"exhausted={exhausted!r}: use repeat or miss")
        changes["exhausted"] = exhausted
    return dataclasses.replace(base, **changes) if changes else base


class ProxyThread:
    """A proxy running on its own event loop thread until `stop()`; clients in any thread use its URL.

    It is the proxy's observer: it counts requests in flight (so a test's end can wait for its last one to
    be accounted for) and hands each outcome to the uses of that cassette and to the run's `Ledger`."""

    def __init__(self, config: ProxyConfig, on_outcome: Callable[[Outcome], None] | None = None) -> None:
        self.config = config
        self.on_outcome = on_outcome
        self.ledger = Ledger()
        self.url = ""
        self._running: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._active: dict[str, list[CassetteUse]] = {}
        self._in_flight = 0
        self._idle = threading.Condition()
        self._rewritten: set[str] = set()

    # --- life -------------------------------------------------------------------------------------------

    def start(self) -> ProxyThread:
        """Listen (a free port unless the config names one); raises what the proxy could not do."""
        ready: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(ready),), daemon=True)
        self._thread.name = "claude-vcr-proxy"
        self._thread.start()
        self._running = ready.result()
        self.url = self._running.url
        return self

    async def _serve(self, ready: concurrent.futures.Future[Any]) -> None:
        from .proxy import running

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with running(self.config, say=_quiet, observer=self) as proxy:
                ready.set_result(proxy)
                await self._stop.wait()
        except BaseException as error:
            if ready.done():
                raise
            ready.set_exception(error)

    def stop(self) -> None:
        """Stop listening and close the db (left as one file); safe to call twice."""
        if self._thread is None or self._loop is None or self._stop is None:
            return
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(60)
        self._thread = None

    def banner(self) -> str:
        """The proxy's one line: where it listens, its mode, cassette and db."""
        return self._running.banner()

    def __enter__(self) -> ProxyThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: Any) -> Any:
        assert self._loop is not None, "start the proxy first"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(60)

    # --- cassettes ------------------------------------------------------------------------------------

    def use(self, cassette: str, record_mode: str = "none", settings: ProxyConfig | None = None) -> CassetteUse:
        """Begin a use of a cassette: apply its record mode and settings; its requests are counted until
        `release`."""
        validate_cassette_name(cassette)
        if record_mode not in RECORD_MODES:
            raise InvalidInput(f"record mode {record_mode!r}: use one of {', '.join(RECORD_MODES)}")
        mode = self._call(self._prepare(cassette, record_mode, settings or self.config))
        use = CassetteUse(
            cassette, f"{self.url}/c/{cassette}", Path(self.config.db), record_mode, mode, settle=self.settle
        )
        self._active.setdefault(cassette, []).append(use)
        return use

    async def _prepare(self, cassette: str, record_mode: str, settings: ProxyConfig) -> str:
        proxy = self._running.proxy
        if record_mode == "rewrite" and cassette not in self._rewritten:
            self._rewritten.add(cassette)  # once per run: tests sharing a cassette keep each other's takes
            try:
                await proxy.clear_cassette(cassette)
            except NotFound:
                pass
        has_recordings = record_mode == "once" and await proxy.count(cassette) > 0
        mode = proxy_mode(record_mode, has_recordings)
        proxy.restart_cassette(cassette, dataclasses.replace(settings, mode=mode, fallback="strict"))
        return mode

    def settle(self, timeout: float = SETTLE_SECONDS) -> None:
        """Wait until no request is being handled, so every outcome so far has been counted."""
        with self._idle:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def release(self, use: CassetteUse) -> None:
        self.settle()
        uses = self._active.get(use.cassette, [])
        if use in uses:
            uses.remove(use)

    # --- the proxy's observer (called on its loop) -------------------------------------------------------

    def began(self) -> None:
        with self._idle:
            self._in_flight += 1

    def ended(self) -> None:
        with self._idle:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.notify_all()

    def outcome(self, outcome: str, exchange: Exchange | None, method: str, target: str, status: int) -> None:
        if exchange is None:
            return
        seen = Outcome(
            exchange.cassette, outcome, method, target, status, exchange.key, exchange.ordinal, exchange.note
        )
        self.ledger.add(seen)
        for use in self._active.get(exchange.cassette, ()):
            use.heard.append(seen)
        if self.on_outcome is not None:
            self.on_outcome(seen)


def _quiet(line: str) -> None:
    """The per-request lines: the outcomes carry the same facts."""


@contextmanager
def pointing_at(base_url: str, replaying: bool, upstream_format: str = "anthropic") -> Iterator[None]:
    """ANTHROPIC_BASE_URL (or, for `--upstream-format bedrock|vertex|foundry`, that provider's variables:
    vcr.providers.client_env) set to `base_url` for the block (subprocesses inherit them), then restored; a
    replaying use with no key set also gets a placeholder ANTHROPIC_API_KEY, so SDK clients can be built."""
    variables = providers.client_env(providers.of_upstream_format(upstream_format), base_url)
    saved = {name: os.environ.get(name) for name in (*variables, API_KEY)}
    os.environ.update(variables)
    if replaying and not os.environ.get(API_KEY) and not os.environ.get("ANTHROPIC_AUTH_TOKEN"):
        os.environ[API_KEY] = REPLAY_KEY
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# --- use_cassette: the same for unittest and scripts --------------------------------------------------------

_shared: dict[tuple[str, str], ProxyThread] = {}
_shared_lock = threading.Lock()


def _stop_shared() -> None:
    for thread in _shared.values():
        thread.stop()
    _shared.clear()


def _at_exit(stop: Callable[[], None]) -> None:
    """Run `stop` when the interpreter exits, before thread pools refuse new work: `atexit` runs after
    `concurrent.futures` has shut its executors down, so the store could not be closed (a traceback, and the
    db left in WAL mode); threading's own exit hooks run first, newest first."""
    import concurrent.futures.thread  # noqa: F401 - registers its exit hook first, so ours runs before it

    register = getattr(threading, "_register_atexit", None)
    try:
        (register or atexit.register)(stop)
    except RuntimeError:  # already shutting down
        atexit.register(stop)


def shared_proxy(config: ProxyConfig) -> ProxyThread:
    """One proxy per (db, upstream) for this process, started on first use and stopped at exit."""
    ident = (str(Path(config.db).resolve()), config.upstream)
    with _shared_lock:
        thread = _shared.get(ident)
        if thread is None:
            if not _shared:
                _at_exit(_stop_shared)
            thread = _shared[ident] = ProxyThread(dataclasses.replace(config, port=0)).start()
        return thread


class use_cassette:  # noqa: N801 - a function-like context manager, as vcrpy's
    """`with claude_vcr.use_cassette("name") as cassette:` (or `async with`): ANTHROPIC_BASE_URL points at a
    proxy with that cassette for the block. `mode` is a record mode (pytest-recording's words, default
    `none`); `db` and `upstream` default to VCR_DB and VCR_UPSTREAM, then `vcr.db` and the real API;
    `preset`, `rules`, `match`, `pace` and `exhausted` as the pytest marker takes them."""

    def __init__(
        self,
        name: str,
        mode: str = "none",
        *,
        db: str | os.PathLike | None = None,
        upstream: str | None = None,
        **settings: Any,
    ) -> None:
        given: dict[str, Any] = {}
        if db is not None:
            given["db"] = Path(db)
        if upstream is not None:
            given["upstream"] = upstream
        self.name = validate_cassette_name(name)
        self.mode = mode
        self.config = test_config(os.environ, **given)
        self.settings = cassette_settings(self.config, **settings)
        self._use: CassetteUse | None = None
        self._env: Any = None
        self._proxy: ProxyThread | None = None

    def __enter__(self) -> CassetteUse:
        self._proxy = shared_proxy(self.config)
        use = self._use = self._proxy.use(self.name, self.mode, self.settings)
        self._env = pointing_at(use.base_url, replaying=use.mode == "replay", upstream_format=self.config.upstream_format)
        self._env.__enter__()
        return use

    def __exit__(self, *exc: object) -> None:
        assert self._proxy is not None and self._use is not None
        self._env.__exit__(*exc)
        self._proxy.release(self._use)

    async def __aenter__(self) -> CassetteUse:
        return await asyncio.to_thread(self.__enter__)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.__exit__, *exc)


# --- claude-vcr run -- CMD -----------------------------------------------------------------------------------


@dataclass
class RunResult:
    """What `claude-vcr run` reports: the command's exit status and the run's ledger."""

    status: int
    ledger: Ledger
    orphans: dict[str, list[tuple[str, int]]] | None
    not_stored: dict[str, int] = field(default_factory=dict)
    """Answers passed through without being stored, by why (transient errors...)."""

    def counts(self) -> dict[str, tuple[int, int, int]]:
        return {name: (t.recorded, t.replayed, t.missed) for name, t in self.ledger.cassettes.items()}


class MissTeller:
    """Each distinct miss told once as it happens; identical ones (a client retrying) are counted and told
    as one line at the end, so six retries are not six diagnoses."""

    def __init__(self, tell: Callable[[str], None]) -> None:
        self.tell = tell
        self.repeats: dict[tuple[str, str, str, str], int] = {}

    def __call__(self, outcome: Outcome) -> None:
        if outcome.outcome != "miss":
            return
        same = (outcome.cassette, outcome.method, outcome.target, outcome.key)
        if same in self.repeats:
            self.repeats[same] += 1
            return
        self.repeats[same] = 0
        self.tell(f"claude-vcr: {outcome.line()}")

    def finish(self) -> None:
        for (cassette, method, target, _), more in self.repeats.items():
            if more:
                self.tell(
                    f"claude-vcr: the same miss ({method} {target} in cassette {cassette!r}) came {more} more "
                    f"time(s) (the client retried)"
                )


def run_command(config: ProxyConfig, argv: list[str], tell: Callable[[str], None]) -> RunResult:
    """Run `argv` with ANTHROPIC_BASE_URL set to a proxy that lives as long as it; a banner line says where
    it listens; each distinct miss is told as it happens. In replay, a command with no API key gets the
    placeholder one (SDK clients refuse to start without). Recordings never used are looked for only when the
    command succeeded (a failed run may simply have stopped early)."""
    import signal
    import subprocess

    misses = MissTeller(tell)

    def told(outcome: Outcome) -> None:
        misses(outcome)
        if outcome.outcome != "miss" and outcome.note and DRIFT in outcome.note:  # the proxy notes only the first
            tell(f"claude-vcr: {outcome.note}")

    with ProxyThread(config, on_outcome=told) as proxy:
        env = {**os.environ, **providers.client_env(providers.of_upstream_format(config.upstream_format), proxy.url)}
        tell(proxy.banner())
        if config.mode == "replay" and not env.get(API_KEY) and not env.get("ANTHROPIC_AUTH_TOKEN"):
            env[API_KEY] = REPLAY_KEY
            tell(f"claude-vcr: no ANTHROPIC_API_KEY set: the command gets the placeholder {REPLAY_KEY!r} (replay)")
        child = subprocess.Popen(argv, env=env)
        try:
            while True:
                try:
                    returncode = child.wait()
                    break
                except KeyboardInterrupt:  # the child got the same Ctrl-C; wait for it to finish
                    continue
        finally:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
                child.wait()
        proxy.settle()
    misses.finish()
    status = 128 - returncode if returncode < 0 else returncode
    orphans = proxy.ledger.orphans(Path(config.db)) if status == 0 else None
    return RunResult(status, proxy.ledger, orphans, proxy.ledger.not_stored())
