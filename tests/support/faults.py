"""Fault injection on a real db: `claude-vcr serve` processes killed with SIGKILL, writers racing, files
damaged, shared by tests/test_faults.py (small, bounded runs) and tests/benchmarks/bench_reliability.py
(the same code, more runs).

A request counts as acknowledged when the client read a complete 200 stream from a proxy in record mode:
the proxy ends a stream (the chunked terminator) only after its save returned, so an acknowledged request
must be in the db, whatever happens to the proxy afterwards.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from tests.support import REPO
from tests.support.loopback import LoopThread, free_port, serving, wait_listening
from tests.support.samples import sample

CASSETTE = "faults"
SAVE_FAILED = "store-error: could not store"
"""The line a proxy logs for each save that failed."""
DEADLINE = 60.0
"""Seconds any one wait may take before the harness gives up (a bound, never a timing assertion)."""


CODE: Path | None = None
"""Where the processes import claude_vcr from: this checkout, unless a benchmark compares another copy."""


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(CODE or REPO), "PYTHONUNBUFFERED": "1"}


def one_line_error(done: subprocess.CompletedProcess) -> str:
    """A refused command: exit status 1, one line on stderr, no traceback."""
    assert done.returncode == 1, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def claude_vcr(*args: str | Path, cwd: Path | None = None, timeout: float = DEADLINE) -> subprocess.CompletedProcess:
    """The CLI as a user runs it: a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "claude_vcr", *map(str, args)],
        capture_output=True,
        text=True,
        env=env(),
        cwd=cwd,
        timeout=timeout,
    )


# --- a stand-in upstream whose streams can be held, counting arrivals -----------------------------------


@dataclass
class HoldingUpstream:
    """Answers every /v1/messages with a short SSE stream; a request whose text says HOLD stops after its
    first event until `release()`. `wait_arrived(n)` blocks until n requests have come in."""

    arrived: int = 0
    _held: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_startup.append(self._started)
        app.on_shutdown.append(self._shutdown)
        return app

    async def _started(self, app: web.Application) -> None:
        self._loop = asyncio.get_running_loop()
        self._held = asyncio.Event()

    async def _shutdown(self, app: web.Application) -> None:
        assert self._held is not None
        self._held.set()

    def hold(self) -> None:
        """From now on HOLD requests wait (again) until `release()`."""
        assert self._loop is not None and self._held is not None
        self._loop.call_soon_threadsafe(self._held.clear)

    def release(self) -> None:
        assert self._loop is not None and self._held is not None
        self._loop.call_soon_threadsafe(self._held.set)

    def wait_arrived(self, count: int) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: self.arrived >= count, DEADLINE), "requests did not arrive"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        with self._cond:
            self.arrived += 1
            number = self.arrived
            self._cond.notify_all()
        response = web.StreamResponse(
            headers={"content-type": "text/event-stream; charset=utf-8", "request-id": f"req_fault{number:05d}"}
        )
        try:
            await self._answer(request, response, body, number)
        except ConnectionResetError:
            pass  # the proxy was killed mid-stream: that is the point
        return response

    async def _answer(self, request: web.Request, response: web.StreamResponse, body: bytes, number: int) -> None:
        await response.prepare(request)
        message = {
            "id": f"msg_fault{number:05d}",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": len(body) // 4, "output_tokens": 1},
        }
        await response.write(_event("message_start", {"type": "message_start", "message": message}))
        if b"HOLD" in body:
            assert self._held is not None
            await self._held.wait()
        text = f"Answer number {number}. " * 20
        for event in (
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
             "usage": {"output_tokens": 40}},
            {"type": "message_stop"},
        ):
            await response.write(_event(event["type"], event))
        await response.write_eof()


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


@contextmanager
def holding_upstream() -> Iterator[tuple[HoldingUpstream, str]]:
    with LoopThread("fault-upstream") as loop_thread, serving(loop_thread, HoldingUpstream()) as server:
        yield server.script, server.url


# --- serve processes --------------------------------------------------------------------------------------


def serve_command(db: Path, port: int | None = None) -> list[str]:
    return [sys.executable, "-m", "claude_vcr", "serve", "--db", str(db), "--port", str(port or free_port())]


STARTED: list[Serve] = []
"""Every serve started, so a failed test's processes are killed (`kill_leftovers`)."""


def kill_leftovers() -> None:
    while STARTED:
        STARTED.pop().kill()


class Serve:
    """`claude-vcr serve` in a process of its own; its output goes to a file (never a pipe left unread)."""

    def __init__(
        self, db: Path, upstream: str, *, mode: str = "record", cassette: str = CASSETTE, logs: Path | None = None
    ) -> None:
        self.port = free_port()
        self.log_path = (logs or db.parent) / f"serve-{self.port}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [*serve_command(db, self.port), "--upstream", upstream, "--mode", mode, "--cassette", cassette],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env(),
        )
        self.url = f"http://127.0.0.1:{self.port}"
        STARTED.append(self)
        if not wait_listening(self.port, time.monotonic() + DEADLINE, lambda: self.process.poll() is None):
            self.kill()
            raise AssertionError(f"serve did not start: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as when a CI job is cancelled."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(DEADLINE)
        self._log.close()
        if self in STARTED:
            STARTED.remove(self)

    def stop(self) -> int:
        """SIGTERM: the clean stop; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(DEADLINE)
        self._log.close()
        if self in STARTED:
            STARTED.remove(self)
        return code


# --- clients ------------------------------------------------------------------------------------------------


_BASE: dict[str, Any] | None = None


def request_body(tag: str, *, hold: bool = False) -> bytes:
    """A real Claude Code request (about 52 KB) made unique by `tag`: one new key per tag."""
    global _BASE
    if _BASE is None:
        _BASE = sample("text-turn")
    body = json.loads(json.dumps(_BASE))
    body["stream"] = True
    marker = f"fault request {tag}" + (" HOLD" if hold else "")
    body["messages"] = [*body["messages"], {"role": "assistant", "content": "ok"},
                        {"role": "user", "content": marker}]
    return json.dumps(body).encode()


@dataclass
class Reply:
    status: int = 0
    outcome: str | None = None
    key: str | None = None
    complete: bool = False
    body: bytes = b""

    @property
    def acknowledged(self) -> bool:
        """What a client may take as recorded: a whole 200 stream from a recording proxy."""
        return self.status == 200 and self.complete and self.outcome not in (None, "passthrough")


def post(url: str, body: bytes, timeout: float = DEADLINE) -> Reply:
    parts = urlsplit(url)
    reply = Reply()
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request(
            "POST", "/v1/messages", body, {"content-type": "application/json", "anthropic-version": "2023-06-01"}
        )
        response = connection.getresponse()
        reply.status = response.status
        reply.outcome = response.getheader("x-vcr-outcome")
        reply.key = response.getheader("x-vcr-key")
        reply.body = response.read()
        reply.complete = True
    except (OSError, http.client.HTTPException):
        pass  # the proxy was killed or hung up: not acknowledged
    finally:
        connection.close()
    return reply


def send_many(url: str, tags: list[str], clients: int) -> list[Reply]:
    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(lambda tag: post(url, request_body(tag)), tags))


# --- what is in the db ----------------------------------------------------------------------------------------


def stored_keys(db: Path) -> set[str]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return {row[0] for row in conn.execute("SELECT key FROM recordings")}
    finally:
        conn.close()


def integrity(db: Path) -> str:
    conn = sqlite3.connect(str(db))
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def lost(db: Path, replies: list[Reply]) -> int:
    """Acknowledged requests with no recording in the db."""
    keys = stored_keys(db)
    return sum(1 for reply in replies if reply.acknowledged and reply.key not in keys)


# --- scenarios, each returning figures ------------------------------------------------------------------------


@dataclass
class KillReport:
    runs: int = 0
    integrity_ok: int = 0
    reopened: int = 0
    """Runs after which the next command (`claude-vcr cassettes`) opened the db."""
    acknowledged: int = 0
    lost: int = 0


def kill_serve_runs(folder: Path, runs: int, *, mid_stream: bool, per_run: int = 4) -> KillReport:
    """`runs` times: a recording serve answers `per_run` requests; then, with `mid_stream`, two more are held
    mid-stream, and the serve gets SIGKILL (else it gets it right after the answers complete). After each
    kill the next command must open the db, integrity_check must pass and every acknowledged recording
    must be there."""
    report = KillReport()
    db = folder / "kill.db"
    with holding_upstream() as (upstream, url):
        for run in range(runs):
            serve = Serve(db, url)
            try:
                replies = send_many(serve.url, [f"kill-{mid_stream}-{run}-{i}" for i in range(per_run)], per_run)
                if mid_stream:
                    upstream.hold()
                    before = upstream.arrived
                    pool = ThreadPoolExecutor(2)
                    held = [pool.submit(post, serve.url, request_body(f"held-{run}-{i}", hold=True)) for i in range(2)]
                    upstream.wait_arrived(before + 2)
                serve.kill()
                if mid_stream:
                    upstream.release()
                    replies += [future.result() for future in held]
                    pool.shutdown()
            finally:
                serve.kill()
            report.runs += 1
            report.reopened += claude_vcr("cassettes", "--db", db).returncode == 0
            report.integrity_ok += integrity(db) == "ok"
            report.acknowledged += sum(reply.acknowledged for reply in replies)
            report.lost += lost(db, replies)
    return report


@dataclass
class WritersReport:
    writers: int
    requests: int
    acknowledged: int = 0
    lost: int = 0
    failed_saves: int = 0
    """Saves a proxy reported as failed (store-error lines); each makes its exit status non-zero."""
    exit_codes: list[int] = field(default_factory=list)
    maintenance: list[str] = field(default_factory=list)
    """The maintenance commands run meanwhile, with their exit status."""
    integrity: str = ""


def concurrent_writers(
    folder: Path,
    *,
    writers: int = 2,
    per_writer: int = 100,
    clients: int = 8,
    maintenance: Callable[[Path], list[str]] | None = None,
) -> WritersReport:
    """`writers` recording serves on one db, each sent `per_writer` distinct ~52 KB Claude Code requests by
    `clients` threads, while `maintenance(db)` (if given) runs commands against the same db."""
    db = folder / "writers.db"
    report = WritersReport(writers, writers * per_writer)
    with holding_upstream() as (_, url):
        serves = [Serve(db, url) for _ in range(writers)]
        try:
            with ThreadPoolExecutor(writers + 1) as pool:
                futures = [
                    pool.submit(send_many, serve.url, [f"w{n}-{i}" for i in range(per_writer)], clients)
                    for n, serve in enumerate(serves)
                ]
                if maintenance is not None:
                    report.maintenance = maintenance(db)
                replies = [reply for future in futures for reply in future.result()]
        finally:
            report.exit_codes = [serve.stop() for serve in serves]
        logs = "".join(serve.log() for serve in serves)
    return tally(report, db, replies, logs)


def tally(report: WritersReport, db: Path, replies: list[Reply], logs: str) -> WritersReport:
    """The report's counts once the serves have stopped: acknowledged, lost, failed saves, integrity."""
    report.acknowledged = sum(reply.acknowledged for reply in replies)
    report.lost = lost(db, replies)
    report.failed_saves = logs.count(SAVE_FAILED)
    report.integrity = integrity(db)
    return report


def busy_maintenance(db: Path, rounds: int = 3) -> list[str]:
    """What people run while tests record: import, rekey, delete and clear of another cassette, compact."""
    results = []
    seed = exported_seed(db.with_name("seed"))
    for _ in range(rounds):
        for args in (
            ("import", seed, "--db", db),
            ("rekey", "--cassette", CASSETTE, "--db", db),
            ("clear", "imported", "--yes", "--db", db),
            ("compact", "--db", db),
        ):
            done = claude_vcr(*args)
            results.append(f"{args[0]}:{done.returncode}")
            if args[0] == "compact":
                assert done.returncode == 1 and "stop it" in done.stderr, done.stderr
            elif done.returncode != 0:
                raise AssertionError(f"{args[0]} failed during recording: {done.stderr}")
    return results


def exported_seed(seed: Path, secret: str = "") -> Path:
    """A seed-layout directory of 20 recordings in cassette `imported` (made once) for `import` to bring in;
    `secret` in every request, for `redact` to replace."""
    if not seed.exists():
        made = seed.with_name(seed.name + "-source.db")
        _fill(made, "imported", 20, secret=secret)
        assert claude_vcr("export", seed, "--db", made).returncode == 0
    return seed


def _fill(db: Path, cassette: str, count: int, response_bytes: int = 0, secret: str = "") -> None:
    """A db with `count` recordings in `cassette`, written as the proxy writes them; `response_bytes` of
    incompressible text make an import of them outgrow SQLite's page cache (so it writes mid-transaction);
    `secret` is put in every request (for `redact` to replace)."""
    import base64
    import random

    noise = random.Random(count)
    from claude_vcr.records import Recording
    from claude_vcr.store import Store

    with Store(db) as store:
        for i in range(count):
            store.save(
                Recording(
                    cassette=cassette,
                    key=f"{i:064x}",
                    key_scheme="v1",
                    method="POST",
                    path="/v1/messages",
                    status=200,
                    request_headers=[("content-type", "application/json")],
                    request_body=request_body(f"fill-{i} {secret}".rstrip()),
                    response_headers=[("content-type", "application/json")],
                    response_body=json.dumps(
                        {"type": "message", "n": i, "text": base64.b64encode(noise.randbytes(response_bytes)).decode()}
                    ).encode(),
                )
            )


JOURNAL_MAGIC = bytes.fromhex("d9d505f920a163d7")
"""A rollback journal starts with this once it is synced, just before the db file itself is written: from
then on a kill leaves a hot journal, which the next opener must roll back."""


def _starts_with(path: Path, prefix: bytes) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(len(prefix)) == prefix
    except OSError:
        return False


def wait_for_file(path: Path, process: subprocess.Popen, prefix: bytes = b"") -> bool:
    """Block until `path` exists and starts with `prefix` (True) or the process has ended (False)."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if path.exists() and _starts_with(path, prefix):
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.001)
    return False


@dataclass
class KilledCommand:
    """A maintenance command killed mid-way: what the next command found."""

    caught_midway: bool
    """The kill landed while the command's file (journal, staging copy) existed."""
    reopened: bool
    integrity: str
    recordings_before: int
    recordings_after: int
    leftovers: list[str]


def count(db: Path) -> int:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM recordings").fetchone()[0]
    finally:
        conn.close()


def kill_command(folder: Path, command: str, recordings: int = 40, imported: int = 150) -> KilledCommand:
    """SIGKILL `import`, `redact` or `rekey` while its transaction is open (a hot journal is left), or
    `compact` while it writes its new copy; then the next command must open the db, as it was before the
    killed one or as it left it (never between)."""
    db = folder / f"killed-{command}.db"
    if command in ("redact", "rekey"):  # every recording rewritten in one transaction
        secret = "sk-" + "ant-api03-" + "Q" * 90 + "AA" if command == "redact" else ""
        _fill(db, "kept", imported, response_bytes=120_000, secret=secret)
    else:
        _fill(db, "kept", recordings)
    if command == "redact":
        args: tuple[str | Path, ...] = ("redact", "--yes", "--db", db)
        marker = db.with_name(db.name + "-journal")
    elif command == "rekey":
        rules = folder / "rules.json"
        rules.write_text(json.dumps({"ignore": ["metadata", "max_tokens"]}))
        args = ("rekey", "--rules", rules, "--cassette", "kept", "--db", db)
        marker = db.with_name(db.name + "-journal")
    elif command == "import":
        seed = folder / "big-seed"
        if not seed.exists():
            made = folder / "big-seed.db"
            _fill(made, "imported", imported, response_bytes=120_000)
            assert claude_vcr("export", seed, "--db", made).returncode == 0
        args = ("import", seed, "--db", db)
        marker = db.with_name(db.name + "-journal")
    else:
        args = ("compact", "--db", db)
        marker = db.with_name(db.name + ".compacting.staging")
    before = count(db)
    process = subprocess.Popen(
        [sys.executable, "-m", "claude_vcr", *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env(),
    )
    caught = wait_for_file(marker, process, JOURNAL_MAGIC if command != "compact" else b"")
    process.kill()
    process.wait(DEADLINE)
    reopened = claude_vcr("cassettes", "--db", db).returncode == 0
    if command == "compact":  # the next compact clears what the killed one left
        reopened = reopened and claude_vcr("compact", "--db", db).returncode == 0
    leftovers = sorted(p.name for p in folder.iterdir() if p.name.startswith(db.name) and p != db)
    return KilledCommand(caught, reopened, integrity(db), before, count(db), leftovers)
