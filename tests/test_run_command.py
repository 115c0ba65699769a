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
    (banner,) = done.stderr.splitlines()  # no request, no summary: only the banner
    assert banner.startswith(f"claude-vcr listening on {url} mode=auto cassette=default db=")


def test_exit_statuses_signals_and_missing_commands(tmp_path):
    db = ("--db", str(tmp_path / "vcr.db"))
    assert claude_vcr_run(*db, "--", sys.executable, "-c", "raise SystemExit(42)").returncode == 42
    killed = claude_vcr_run(*db, "--", sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGTERM)")
    assert killed.returncode == 128 + 15
    missing = claude_vcr_run(*db, "--", "no-such-command-anywhere")
    assert missing.returncode == 127
    assert missing.stderr.strip().splitlines()[-1] == "claude-vcr: no-such-command-anywhere: command not found"
    usage = claude_vcr_run(*db)
    assert usage.returncode == 2 and "Missing argument 'COMMAND...'" in usage.stderr
    bad_flag = claude_vcr_run("--mode", "sometimes", "--", "true")
    assert bad_flag.returncode == 2 and "Traceback" not in bad_flag.stderr


SDK_CHILD = """
import anthropic, os
client = anthropic.Anthropic(max_retries=0)  # refuses to start without a key
reply = client.messages.create(model="claude-opus-5-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
print("ANSWER", reply.content[0].text, os.environ["ANTHROPIC_API_KEY"])
"""


def test_replay_gives_an_sdk_client_a_placeholder_key_and_the_banner_names_the_port(upstream, tmp_path):
    db = str(tmp_path / "vcr.db")
    recorded = claude_vcr_run(
        "--db", db, "--upstream", upstream.url, "--mode", "record", "--", sys.executable, "-c", SDK_CHILD,
        env={"ANTHROPIC_API_KEY": TEST_API_KEY},
    )
    assert recorded.returncode == 0, recorded.stderr
    assert "placeholder" not in recorded.stderr  # a key was set: nothing added
    upstream.stop()
    replayed = claude_vcr_run(
        "--db", db, "--upstream", unreachable_url(), "--mode", "replay", "--", sys.executable, "-c", SDK_CHILD
    )
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.strip() == recorded.stdout.strip().replace(TEST_API_KEY, "claude-vcr-replay")
    banner, placeholder = replayed.stderr.splitlines()[:2]
    assert banner.startswith("claude-vcr listening on http://127.0.0.1:") and "mode=replay (strict)" in banner
    assert not banner.split()[3].endswith(":8000")
    assert placeholder == (
        "claude-vcr: no ANTHROPIC_API_KEY set: the command gets the placeholder 'claude-vcr-replay' (replay)"
    )


def test_run_help_says_free_port_banner_and_placeholder_key():
    helped = claude_vcr_run("--help")
    assert helped.returncode == 0
    text = " ".join(helped.stdout.split())
    assert "default: 8000" not in text and "a free one; the banner line on stderr says which" in text
    assert "placeholder key claude-vcr-replay" in text


def test_identical_misses_are_one_line_with_a_count(tmp_path):
    claude_vcr.Store(tmp_path / "vcr.db").close()
    retry = (
        "import json, os, urllib.request, urllib.error\n"
        "body = json.dumps({'model': 'm', 'max_tokens': 1, 'messages': []}).encode()\n"
        "for _ in range(6):\n"
        "    request = urllib.request.Request(os.environ['ANTHROPIC_BASE_URL'] + '/v1/messages', data=body,\n"
        "                                     headers={'content-type': 'application/json'})\n"
        "    try:\n"
        "        urllib.request.urlopen(request)\n"
        "    except urllib.error.HTTPError as error:\n"
        "        print('HTTP', error.code)\n"
    )
    missed = claude_vcr_run("--db", str(tmp_path / "vcr.db"), "--mode", "replay", "--", sys.executable, "-c", retry)
    assert missed.stdout.split() == ["HTTP", "400"] * 6
    lines = [line for line in missed.stderr.splitlines() if "miss" in line]
    assert len([line for line in lines if line.startswith("claude-vcr: miss POST /v1/messages 400")]) == 1
    assert "claude-vcr: the same miss (POST /v1/messages in cassette 'default') came 5 more time(s)" in missed.stderr
    assert "0 recorded, 0 replayed, 6 missed" in missed.stderr


def test_run_counts_the_answers_it_did_not_store(upstream, tmp_path):
    asks = (
        "import json, os, urllib.request, urllib.error\n"
        "for text in ('STATUS:429 busy', 'STATUS:404 gone', 'fine'):\n"
        "    body = json.dumps({'model': 'm', 'max_tokens': 1, 'messages': [{'role': 'user', 'content': text}]})\n"
        "    request = urllib.request.Request(os.environ['ANTHROPIC_BASE_URL'] + '/v1/messages',\n"
        "        data=body.encode(), headers={'content-type': 'application/json', 'x-api-key': 'k'})\n"
        "    try:\n"
        "        urllib.request.urlopen(request).read()\n"
        "    except urllib.error.HTTPError as error:\n"
        "        print('HTTP', error.code)\n"
    )
    done = claude_vcr_run(
        "--db", str(tmp_path / "vcr.db"), "--upstream", upstream.url, "--mode", "record", "--",
        sys.executable, "-c", asks,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["HTTP", "429", "HTTP", "404"]
    assert "2 recorded, 0 replayed, 0 missed" in done.stderr  # the 404 is an answer: recorded
    assert done.stderr.splitlines()[-1] == (
        "claude-vcr: 1 answer(s) not stored: 1 transient error 429 (--record-errors stores it)"
    )
