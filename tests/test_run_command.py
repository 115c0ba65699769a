"""`claude-vcr run [serve options] -- CMD`: a proxy for the life of a command, as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import claude_vcr

from tests.support.client import TEST_API_KEY
from tests.support.loopback import unreachable_url

CHILD = """
import json, os, sys, urllib.request

body = json.dumps({"model": "claude-opus-5-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]})
request = urllib.request.Request(
    os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages", data=body.encode(),
    headers={"content-type": "application/json", "x-api-key": os.environ.get("KEY", "none")},
)
try:
    with urllib.request.urlopen(request) as response:
        print("ANSWER", json.loads(response.read())["content"][0]["text"])
except urllib.error.HTTPError as error:
    print("HTTP", error.code)
sys.exit(int(sys.argv[1]))
"""


def claude_vcr_run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VCR_", "ANTHROPIC_"))}
    return subprocess.run(
        [sys.executable, "-m", "claude_vcr", "run", *args],
        capture_output=True, text=True, timeout=120, env={**base, **(env or {})},
    )


def test_run_records_then_replays_offline_and_passes_the_exit_status_through(upstream, tmp_path):
    db = str(tmp_path / "vcr.db")
    recorded = claude_vcr_run(
        "--db", db, "--upstream", upstream.url, "--mode", "record", "--cassette", "ci",
        "--", sys.executable, "-c", CHILD, "3", env={"KEY": TEST_API_KEY},
    )
    assert recorded.returncode == 3, recorded.stderr
    assert recorded.stdout.startswith("ANSWER Scripted reply number 1")
    assert "1 recorded, 0 replayed, 0 missed" in recorded.stderr and "ci" in recorded.stderr
    upstream.stop()
    replayed = claude_vcr_run(
        "--db", db, "--upstream", unreachable_url(), "--mode", "replay", "--cassette", "ci",
        "--", sys.executable, "-c", CHILD, "0",
    )
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == recorded.stdout
    assert "0 recorded, 1 replayed, 0 missed" in replayed.stderr
    assert len(upstream.calls) == 1


def test_a_miss_is_told_on_stderr_with_its_diagnosis(tmp_path):
    claude_vcr.Store(tmp_path / "vcr.db").close()  # strict replay never creates a db
    missed = claude_vcr_run(
        "--db", str(tmp_path / "vcr.db"), "--mode", "replay", "--", sys.executable, "-c", CHILD, "0"
    )
    assert missed.returncode == 0
    assert missed.stdout.strip() == "HTTP 400"
    assert "claude-vcr: miss POST /v1/messages 400: claude-vcr: no recording for POST /v1/messages" in missed.stderr
    assert "0 recorded, 0 replayed, 1 missed" in missed.stderr


def test_the_child_sees_only_the_base_url_added(tmp_path):
    dump = "import json, os; print(json.dumps(dict(os.environ)))"
    done = claude_vcr_run("--db", str(tmp_path / "vcr.db"), "--", sys.executable, "-c", dump, env={"MARK": "1"})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    url = seen.pop("ANTHROPIC_BASE_URL")
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":8000")  # a free port by default
    expected = {k: v for k, v in os.environ.items() if not k.startswith(("VCR_", "ANTHROPIC_"))}
    expected["MARK"] = "1"
    for volatile in ("_", "PWD", "OLDPWD", "SHLVL"):
        seen.pop(volatile, None)
        expected.pop(volatile, None)
    assert seen == expected
    assert done.stderr == ""  # no request, no summary


def test_exit_statuses_signals_and_missing_commands(tmp_path):
    db = ("--db", str(tmp_path / "vcr.db"))
    assert claude_vcr_run(*db, "--", sys.executable, "-c", "raise SystemExit(42)").returncode == 42
    killed = claude_vcr_run(*db, "--", sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)")
    assert killed.returncode == 128 + 15
    missing = claude_vcr_run(*db, "--", "no-such-command-anywhere")
    assert missing.returncode == 127
    assert missing.stderr.strip() == "claude-vcr: no-such-command-anywhere: command not found"
    usage = claude_vcr_run(*db)
    assert usage.returncode == 2 and "Missing argument 'COMMAND...'" in usage.stderr
    bad_flag = claude_vcr_run("--mode", "sometimes", "--", "true")
    assert bad_flag.returncode == 2 and "Traceback" not in bad_flag.stderr
