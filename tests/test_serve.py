"""`claude-vcr serve` as a user runs it: a real process, its banner and log lines, signals, bad input."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.loopback import free_port, unreachable_url

BANNER = re.compile(r"claude-vcr listening on (http://127\.0\.0\.1:\d+) mode=(\S+)")


class ServeProcess:
    """`python -m claude_vcr serve ...` in a subprocess, with its output read line by line."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "claude_vcr", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
            cwd=cwd,
        )
        self.lines: list[str] = []
        first = self.readline()
        match = BANNER.search(first)
        if not match:
            self.process.kill()
            raise AssertionError(f"no banner, got: {first!r} {self.process.stdout.read()!r}")
        self.url, self.mode = match.group(1), match.group(2)

    def readline(self) -> str:
        line = self.process.stdout.readline()
        self.lines.append(line)
        return line

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        rest, _ = self.process.communicate(timeout=15)
        self.lines.extend(rest.splitlines(keepends=True))
        return self.process.returncode


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    started: list[ServeProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> ServeProcess:
        process = ServeProcess(list(args), env=env, cwd=tmp_path)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.process.poll() is None:
            process.process.kill()
            process.process.wait()


def send(url: str, text: str = "Hello") -> bytes:
    payload = {"model": "claude-opus-5-5", "max_tokens": 32, "messages": [{"role": "user", "content": text}]}
    request = urllib.request.Request(
        url + "/v1/messages",
        data=json.dumps(payload).encode(),
        headers={"content-type": "application/json", "x-api-key": "sk-ant-api03-EXAMPLE"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()
    except urllib.error.HTTPError as error:
        return error.read()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_records_logs_and_shuts_down_clean(serve, upstream, tmp_path, signum):
    db = tmp_path / "vcr.db"
    server = serve("--port", "0", "--upstream", upstream.url, "--mode", "record")
    assert "cassette=default" in server.lines[0] and f"db={Path('vcr.db')}" in server.lines[0]
    send(server.url)
    log_line = server.readline()
    assert re.match(r"recorded\s+[0-9a-f]{12} POST /v1/messages 200 \d+ms", log_line), log_line
    assert (tmp_path / "vcr.db-wal").exists()  # WAL while serving
    assert server.stop(signum) == 0
    assert db.exists()
    assert not (tmp_path / "vcr.db-wal").exists() and not (tmp_path / "vcr.db-shm").exists()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert conn.execute("SELECT count(*) FROM recordings").fetchone()[0] == 1
    conn.close()


def test_env_variables_configure_and_flags_win(serve, upstream, tmp_path):
    env = {"VCR_MODE": "replay", "VCR_CASSETTE": "from_env", "VCR_DB": str(tmp_path / "env.db")}
    server = serve("--port", "0", "--upstream", unreachable_url(), env=env)
    assert server.mode == "replay" and "cassette=from_env" in server.lines[0]
    miss = json.loads(send(server.url))
    assert "'from_env'" in miss["error"]["message"]
    assert re.match(r"miss\s+[0-9a-f]{12} POST /v1/messages 400", server.readline())
    server.stop()
    flagged = serve("--port", "0", "--mode", "auto", "--upstream", upstream.url, env=env)
    assert flagged.mode == "auto"
    flagged.stop()
    assert (tmp_path / "env.db").exists()


def test_port_from_env(serve, upstream):
    port = free_port()
    server = serve("--upstream", upstream.url, env={"VCR_PORT": str(port)})
    assert server.url == f"http://127.0.0.1:{port}"
    server.stop()


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "claude_vcr", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=30,
    )


@pytest.mark.parametrize(
    "content",
    [b"this is not a database at all", b"SQLite format 3\x00" + b"\xff" * 4000],
    ids=["text", "damaged-header"],
)
def test_corrupt_db_is_refused_and_left_untouched(tmp_path, content):
    db = tmp_path / "vcr.db"
    db.write_bytes(content)
    result = run_cli("serve", "--port", "0", "--db", str(db), cwd=tmp_path)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "vcr.db" in result.stderr and (
        "not a SQLite database" in result.stderr or "damaged" in result.stderr
    )
    assert db.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vcr.db"]


def test_db_from_a_newer_version_is_refused(tmp_path):
    db = tmp_path / "vcr.db"
    from claude_vcr.store import Store

    Store(db).close()
    conn = sqlite3.connect(db)
    conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('claude-vcr', 'm999_future', 'x')"
    )
    conn.commit()
    conn.close()
    before = db.read_bytes()
    result = run_cli("serve", "--port", "0", "--db", str(db), cwd=tmp_path)
    assert result.returncode != 0 and "newer claude-vcr" in result.stderr and "m999_future" in result.stderr
    assert db.read_bytes() == before


def test_foreign_sqlite_db_is_refused(tmp_path):
    db = tmp_path / "other.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    result = run_cli("serve", "--port", "0", "--db", str(db), cwd=tmp_path)
    assert result.returncode != 0 and "another program" in result.stderr
    assert db.read_bytes() == before


@pytest.mark.parametrize(
    "args, message",
    [
        (["--mode", "replya"], "Invalid value for '--mode'"),
        (["--fallback", "maybe"], "Invalid value for '--fallback'"),
        (["--port", "99999"], "Invalid value for '--port'"),
        (["--cassette", "../up"], "invalid cassette name"),
        (["--upstream", "ftp://example"], "not an http:// or https:// URL"),
        (["--frobnicate"], "No such option"),
    ],
)
def test_bad_flags_get_clear_errors(tmp_path, args, message):
    result = run_cli("serve", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "vcr.db").exists()


def test_port_in_use_is_a_clear_error(serve, upstream, tmp_path):
    server = serve("--port", "0", "--upstream", upstream.url)
    port = server.url.rsplit(":", 1)[1]
    result = run_cli("serve", "--port", port, "--db", str(tmp_path / "second.db"), cwd=tmp_path)
    assert result.returncode == 1 and "cannot listen on 127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr
    server.stop()


def test_python_dash_m_and_console_script_agree(tmp_path):
    result = run_cli("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("claude-vcr, version ")
    help_text = run_cli("serve", "--help", cwd=tmp_path).stdout
    for variable in ("VCR_MODE", "VCR_REPLAY_FALLBACK", "VCR_CASSETTE", "VCR_DB", "VCR_UPSTREAM", "VCR_PORT"):
        assert variable in help_text
