"""The pytest plugin (registered by installing claude-vcr): the `claude_vcr` marker and fixture.

While a marked or fixture-using test runs, ANTHROPIC_BASE_URL points at a proxy started once per pytest
process, with a cassette of the test's own (or the marker's); the SDK's default clients and subprocesses
inherit it. Record modes and options follow pytest-recording. Tests that use neither the marker nor the
fixture pay nothing: this module imports only pytest and the stdlib, and the proxy starts on first use.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .names import test_cassette_name
from .record_modes import RECORD_MODES

MARKER = "claude_vcr"
MARKER_KEYWORDS = ("cassette", "record_mode", "preset", "rules", "match", "pace", "exhausted")
SERVE_MODE_AS_RECORD_MODE = {"replay": "none", "auto": "new_episodes", "record": "all"}

_USE = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("claude-vcr", "claude-vcr: record and replay the Anthropic API")
    group.addoption(
        "--claude-vcr-record-mode",
        choices=RECORD_MODES,
        default=None,
        help="none (default: replay only, a missing recording fails the test), once (record a cassette that "
        "has nothing yet), new_episodes (replay what exists, record the rest), all (record everything again), "
        "rewrite (drop the cassette, then record). Also VCR_RECORD_MODE, or VCR_MODE's replay/auto/record.",
    )
    group.addoption(
        "--claude-vcr-db",
        default=None,
        metavar="PATH",
        help="The cassette database (default: VCR_DB, else vcr.db in the rootdir).",
    )
    group.addoption(
        "--claude-vcr-upstream",
        default=None,
        metavar="URL",
        help="Where recordings are made (default: VCR_UPSTREAM, else https://api.anthropic.com).",
    )
    group.addoption(
        "--claude-vcr-record-errors",
        action="store_true",
        default=False,
        help="Also store transient API errors (429, 5xx, 529, overloaded streams) when recording; deterministic "
        "ones (400, 401, 403, 404, 413, 422) are stored anyway. Also VCR_RECORD_ERRORS=1.",
    )
    parser.addini("claude_vcr_record_errors", "claude-vcr: also store transient API errors (true/false)", type="bool")
    parser.addini("claude_vcr_record_mode", "claude-vcr record mode (see --claude-vcr-record-mode)")
    parser.addini("claude_vcr_db", "claude-vcr database, relative to the rootdir (see --claude-vcr-db)")
    parser.addini("claude_vcr_upstream", "claude-vcr upstream URL (see --claude-vcr-upstream)")


def _setting(config: pytest.Config, name: str, variables: tuple[str, ...]) -> tuple[str | None, str]:
    """A setting's value and where it came from: the command line, a variable, then the ini file."""
    given = config.getoption(f"--claude-vcr-{name.replace('_', '-')}")
    if given:
        return given, "cli"
    for variable in variables:
        if os.environ.get(variable):
            return os.environ[variable], variable
    from_ini = config.getini(f"claude_vcr_{name}")
    return (from_ini or None), "ini"


def record_mode_of(config: pytest.Config) -> str:
    mode, source = _setting(config, "record_mode", ("VCR_RECORD_MODE",))
    if source == "ini" and mode is None and os.environ.get("VCR_MODE"):
        mode, source = SERVE_MODE_AS_RECORD_MODE.get(os.environ["VCR_MODE"]), "VCR_MODE"
        if mode is None:
            raise pytest.UsageError(f"VCR_MODE={os.environ['VCR_MODE']}: the plugin takes replay, auto or record")
    mode = mode or "none"
    if mode not in RECORD_MODES:
        raise pytest.UsageError(f"claude-vcr record mode {mode!r} (from {source}): use {', '.join(RECORD_MODES)}")
    return mode


class Run:
    """The plugin's state in one pytest process: the settings, the proxy once started, the run's ledger."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self._record_mode: str | None = None
        db, source = _setting(config, "db", ("VCR_DB",))
        if db is None:
            self.db = config.rootpath / "vcr.db"
        elif source == "ini":
            self.db = config.rootpath / db
        else:
            self.db = Path(db).absolute()
        self.upstream, _ = _setting(config, "upstream", ("VCR_UPSTREAM",))
        self.proxy: Any = None
        self._starting: Any = None
        """A background start begun once collection found a test that needs the proxy."""
        self.ledger: Any = None
        self.worker_ledgers: list[Any] = []

    @property
    def record_mode(self) -> str:
        """Read on first use, so a suite that never uses the plugin never trips over a VCR_MODE meant for
        `serve`."""
        if self._record_mode is None:
            self._record_mode = record_mode_of(self.config)
        return self._record_mode

    def start_soon(self) -> None:
        """Import aiohttp and open the db on a thread while the first tests run (they cost most of the
        start-up); `start()` waits for it and raises what it raised."""
        if self.proxy is None and self._starting is None:
            import concurrent.futures
            import threading

            starting = self._starting = concurrent.futures.Future()

            def begin() -> None:
                try:
                    starting.set_result(self._new())
                except BaseException as error:  # told to the first test that needs the proxy
                    starting.set_exception(error)

            threading.Thread(target=begin, name="claude-vcr-start", daemon=True).start()

    def _new(self) -> Any:
        from .harness import ProxyThread, test_config

        given: dict[str, Any] = {"db": self.db, **PLUGIN_WORDS}
        if self.config.getoption("--claude-vcr-record-errors") or self.config.getini("claude_vcr_record_errors"):
            given["record_errors"] = True
        if self.upstream:
            given["upstream"] = self.upstream
        if self.record_mode == "none" and not self.db.exists():
            given["mode"] = "replay"  # strict replay opens no missing db: a run that cannot record makes no file
        return ProxyThread(test_config(os.environ, **given)).start()

    def start(self) -> Any:
        """The proxy, started on the first test that needs it (or begun earlier by `start_soon`)."""
        if self.proxy is None:
            starting, self._starting = self._starting, None
            self.proxy = starting.result() if starting is not None else self._new()
        return self.proxy

    def stop(self) -> None:
        if self._starting is not None:
            try:
                self.start()
            except Exception:
                self._starting = None
        if self.proxy is not None:
            self.proxy.stop()
            self.ledger = self.proxy.ledger
            self.proxy = None


_RUN = pytest.StashKey[Run]()

PLUGIN_WORDS = {
    "how_to_record": "record with --claude-vcr-record-mode=once (a new cassette) or new_episodes (add what is "
    "missing)",
    "record_errors_option": "--claude-vcr-record-errors",
}
"""What the proxy's messages tell a pytest user to do, in the plugin's options rather than `serve`'s."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(cassette=None, *, record_mode=None, preset=None, rules=None, match=None, pace=None, "
        "exhausted=None): point ANTHROPIC_BASE_URL at claude-vcr with this test's cassette.",
    )
    config.stash[_RUN] = Run(config)


def default_cassette_name(nodeid: str) -> str:
    """`tests/test_api.py::TestX::test_y[a-b]` -> `tests.test_api.TestX.test_y-a-b` (`names.test_cassette_name`,
    which `import` of pytest-recording cassettes uses too)."""
    return test_cassette_name(nodeid)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Begin starting the proxy as soon as it is known that a test will need it."""
    if session.config.option.collectonly:
        return
    if any(item.get_closest_marker(MARKER) or MARKER in getattr(item, "fixturenames", ()) for item in session.items):
        session.config.stash[_RUN].start_soon()


@pytest.fixture
def claude_vcr_config() -> dict[str, Any]:
    """Defaults for the marker's keywords in a scope (override it in a conftest.py), as pytest-recording's
    `vcr_config`; the marker's own keywords win."""
    return {}


def _marker_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The config fixture's settings, then each `claude_vcr` marker's from the farthest to the closest."""
    settings = dict(request.getfixturevalue("claude_vcr_config"))
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        if len(marker.args) > 1:
            raise pytest.UsageError(f"@pytest.mark.{MARKER} takes at most one positional argument, the cassette")
        if marker.args:
            settings["cassette"] = marker.args[0]
        settings.update(marker.kwargs)
    unknown = set(settings) - set(MARKER_KEYWORDS)
    if unknown:
        raise pytest.UsageError(
            f"@pytest.mark.{MARKER}: unknown keyword(s) {', '.join(sorted(unknown))}; "
            f"use {', '.join(MARKER_KEYWORDS)}"
        )
    rules = settings.get("rules")
    if isinstance(rules, (str, os.PathLike)) and not Path(rules).is_absolute():
        settings["rules"] = Path(request.node.path).parent / rules
    return settings


@pytest.fixture
def claude_vcr(request: pytest.FixtureRequest) -> Iterator[Any]:
    """This test's cassette: `base_url`, `cassette`, `db`, `record_mode`, `mode` and the `outcomes` of its
    requests (`recorded`, `replayed`, `missed`); ANTHROPIC_BASE_URL points at it while the test runs."""
    from .errors import ClaudeVCRError, NoDatabase
    from .harness import cassette_settings, pointing_at

    run = request.config.stash[_RUN]
    problem = None
    try:
        settings = _marker_settings(request)
        cassette = settings.pop("cassette", None) or default_cassette_name(request.node.nodeid)
        record_mode = settings.pop("record_mode", None) or run.record_mode
        proxy = run.start()
        use = proxy.use(cassette, record_mode, cassette_settings(proxy.config, **settings))
    except NoDatabase:
        problem = (
            f"claude-vcr: no database at {run.db}: record mode 'none' replays only and creates no file; "
            f"{PLUGIN_WORDS['how_to_record']}"
        )
    except (ClaudeVCRError, pytest.UsageError) as error:
        problem = f"claude-vcr: {error}"
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    request.node.stash[_USE] = use
    try:
        with pointing_at(use.base_url, replaying=use.mode == "replay", upstream_format=proxy.config.upstream_format):
            yield use
    finally:
        proxy.release(use)


@pytest.fixture(autouse=True)
def _claude_vcr_marker(request: pytest.FixtureRequest) -> None:
    """A marked test gets the `claude_vcr` fixture without asking for it."""
    if request.node.get_closest_marker(MARKER) is not None:
        request.getfixturevalue("claude_vcr")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A request with no recording fails the test even when the code under test swallowed the error (a
    subprocess that only printed it, say); so does a recording the db would not take."""
    result = yield
    use = item.stash.get(_USE, None)
    if use is not None:
        run = item.config.stash[_RUN]
        if run.proxy is not None:
            run.proxy.settle()
        if use.missed:
            pytest.fail(use.miss_report(), pytrace=False)
        if use.unstored:  # nothing is lost silently: the answer was used, its recording was not kept
            lines = "\n".join(f"- {o.line()}" for o in use.unstored)
            pytest.fail(f"claude-vcr could not store {len(use.unstored)} recording(s) in {use.db}:\n{lines}", pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """The miss diagnosis in the failure output of a test that failed on its own (the SDK raised)."""
    report = yield
    use = item.stash.get(_USE, None)
    if call.when == "call" and use is not None and use.missed and report.failed:
        if use.miss_report() not in str(report.longrepr):
            report.sections.append(("claude-vcr", use.miss_report()))
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    run = session.config.stash[_RUN]
    run.stop()
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None and run.ledger is not None:
        workeroutput["claude_vcr"] = run.ledger.to_data()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist: a worker's ledger joins the controller's summary."""
    data = getattr(node, "workeroutput", {}).get("claude_vcr")
    if data:
        node.config.stash[_RUN].worker_ledgers.append(data)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    run = config.stash[_RUN]
    if run.ledger is None and not run.worker_ledgers:
        return
    from .harness import Ledger
    from .render import run_summary

    ledger = Ledger()
    if run.ledger is not None:
        ledger.merge(run.ledger.to_data())
    for data in run.worker_ledgers:
        ledger.merge(data)
    if not ledger.cassettes:
        return
    stats = terminalreporter.stats
    whole = not any(stats.get(k) for k in ("failed", "error", "deselected")) and not any(
        "::" in arg for arg in config.args
    )
    orphans = ledger.orphans(run.db) if whole else None
    counts = {name: (t.recorded, t.replayed, t.missed) for name, t in ledger.cassettes.items()}
    terminalreporter.section("claude-vcr")
    drift = {name: t.drift for name, t in ledger.cassettes.items() if t.drift}
    terminalreporter.write(run_summary(counts, orphans, str(_shown(run.db, config)), drift))
    not_stored = ledger.not_stored()
    if not_stored:
        from .storable import not_stored_line

        terminalreporter.write(not_stored_line(not_stored) + "\n")


def _shown(db: Path, config: pytest.Config) -> Path:
    """The db as the person would type it: relative to where pytest was started, when it is below it."""
    try:
        return db.relative_to(config.invocation_params.dir)
    except ValueError:
        return db
