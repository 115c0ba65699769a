"""`claude-vcr serve` as a user runs it: a real process, its banner and log lines, signals, bad input."""

from __future__ import annotations

import dataclasses
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
from claude_vcr.cli import main
from claude_vcr.config import Flag, ProxyConfig
from claude_vcr.store import Store
from click.testing import CliRunner

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
    Store(tmp_path / "env.db").close()  # strict replay refuses a db that does not exist
    server = serve("--port", "0", "--upstream", unreachable_url(), env=env)
    assert server.mode == "replay" and "cassette=from_env" in server.lines[0]
    assert "cassette 'from_env' has no recordings" in server.readline()  # the start-up warning (stderr)
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
        (["--pace", "fast"], "'fast': use instant, recorded or a speed factor above 0"),
        (["--model-map", "claude-*"], "'claude-*': use GLOB=MODEL"),
        (["--preset", "vim"], "Invalid value for '--preset'"),
        (["--rules", "missing.toml"], "Invalid value for '--rules'"),
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


# --- each option declared once: ProxyConfig's fields are the flags, the help and the README table ----------


def declared() -> list[tuple[str, Flag, object]]:
    """(field name, flag, default) for every ProxyConfig field that `serve` takes."""
    found = []
    for spec in dataclasses.fields(ProxyConfig):
        if "flag" in spec.metadata:
            default = None if spec.default is dataclasses.MISSING else spec.default
            found.append((spec.name, spec.metadata["flag"], default))
    return found


def test_serve_help_lists_each_declared_option_once_with_variable_and_default():
    help_text = CliRunner().invoke(main, ["serve", "--help"], terminal_width=1000).output
    options = [
        " ".join(block.split())  # an option's lines, joined
        for block in re.split(r"\n(?=  -)", help_text.split("Options:\n", 1)[1])
        if block.strip().startswith("-") and not block.strip().startswith("-h, --help")
    ]
    assert len(options) == len(declared())
    for (_, flag, default), line in zip(declared(), options, strict=True):
        assert line.startswith(flag.decl.replace("/", " / ")), line
        if flag.env:
            assert f"env var: {flag.env}" in line and len(re.findall(rf"\b{flag.env}\b", help_text)) == 1
        if flag.shown_default is not None or default not in (None, (), False):
            assert "default: " in line, line


def test_readme_serve_table_matches_the_declarations():
    """The manual's table (docs/settings.md) is the user's view of `serve`: same flags, variables, defaults and choices."""
    readme = (REPO / "docs" / "settings.md").read_text(encoding="utf-8")
    table = readme.split("## Modes and settings", 1)[1].split("\n\n", 2)[2]
    rows: dict[str, list[tuple[str, str, str]]] = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("| `--"):
            break
        cells = [cell.strip() for cell in line.replace("\\|", "\x00").split("|")[1:4]]
        option, variable, default = (cell.strip("`").replace("\x00", "|") for cell in cells)
        flag, _, values = option.partition(" ")
        rows.setdefault(flag, []).append((values, variable, default))
    assert sorted(rows) == sorted(flag.decl.split("/")[0] for _, flag, _ in declared())
    for _, flag, default in declared():
        found = rows[flag.decl.split("/")[0]]
        assert {variable for _, variable, _ in found} == {flag.env or ""}, flag.decl
        if flag.choices:
            assert {v for values, _, _ in found for v in values.split("|")} == set(flag.choices), flag.decl
        shown = {d.removeprefix("./") for _, _, d in found if d}
        if flag.shown_default is not None:
            assert shown == {flag.shown_default}
        elif isinstance(default, bool):
            assert shown == {"on" if default else "off"}, flag.decl
        elif isinstance(default, float):
            assert {float(d) for d in shown} == {default}, flag.decl
        elif default not in (None, ()):
            assert shown == {str(default)}, flag.decl
        else:
            assert shown == set(), flag.decl


@pytest.fixture
def served(monkeypatch) -> list[ProxyConfig]:
    """`serve` run in-process with the proxy replaced: the ProxyConfig it would have started with."""
    configs: list[ProxyConfig] = []
    monkeypatch.setattr("claude_vcr.proxy.serve", lambda config, announce: configs.append(config))
    monkeypatch.setattr("logging.basicConfig", lambda **kwargs: None)
    for _, flag, _ in declared():
        if flag.env:
            monkeypatch.delenv(flag.env, raising=False)
    return configs


def test_serve_without_flags_runs_the_declared_defaults(served):
    assert CliRunner().invoke(main, ["serve"], catch_exceptions=False).exit_code == 0
    assert served == [ProxyConfig()]


def test_serve_parses_values_with_syntax_from_flags_and_variables(served, tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"ignore": ["metadata", "temperature"]}))
    args = [
        "serve",
        "--pace",
        "recorded",
        "--model-map",
        "claude-*=qwen/qwen3-coder",
        "--model-map",
        "*=llama",
    ]
    args += ["--rules", str(rules), "--preset", "claude-code", "--upstream", "http://127.0.0.1:9"]
    assert CliRunner().invoke(main, args, catch_exceptions=False).exit_code == 0
    env = {"VCR_PACE": "2.5", "VCR_MODEL_MAP": "claude-*=a *=b", "VCR_CASSETTE": "from_env", "VCR_PORT": "0"}
    assert CliRunner().invoke(main, ["serve"], env=env, catch_exceptions=False).exit_code == 0
    flagged, from_env = served
    assert flagged.pace == 1.0 and flagged.upstream == "http://127.0.0.1:9"
    assert flagged.model_map == (("claude-*", "qwen/qwen3-coder"), ("*", "llama"))
    assert flagged.rules.ignore == ("metadata", "temperature") and flagged.rules.presets == ("claude-code",)
    assert from_env.pace == 2.5 and from_env.model_map == (("claude-*", "a"), ("*", "b"))
    assert from_env.cassette == "from_env" and from_env.port == 0
    instant = CliRunner().invoke(main, ["serve", "--pace", "instant"], catch_exceptions=False)
    assert instant.exit_code == 0 and served[-1].pace is None


def test_the_adapters_do_not_import_the_proxy():
    """config.py sits below both: an arrow from the adapters back up to the proxy would be a cycle."""
    script = "import sys, claude_vcr.adapters.openai, claude_vcr.adapters.anthropic; print('claude_vcr.proxy' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
