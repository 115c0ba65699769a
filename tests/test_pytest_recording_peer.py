"""The record modes against pytest-recording itself, and the two plugins in one environment.

A fresh venv (offline, from .cache/wheels) holds pytest, vcrpy, pytest-recording and this checkout's wheel;
pytest-recording is never installed in the suite's own venv (its plugin imports `vcr`, our source folder's
name). One inner suite has the same test twice: under `@pytest.mark.vcr` it calls a loopback upstream
directly, under `@pytest.mark.claude_vcr` through ANTHROPIC_BASE_URL. Each mode is run as three phases (record
`a`; ask `a` and `b` in the mode; replay `a` and `b` with `none`) and both plugins must behave alike: which
tests pass, how many calls reach the upstream, which phase's answers they see.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.loopback import free_port
from tests.support.venvs import Venv, build_wheel

CONFTEST = '''
import json, os, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class Upstream(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        with open(os.environ["CALLS_FILE"], "a") as calls:
            calls.write(self.headers["x-who"] + "\\n")
        body = json.dumps({"phase": os.environ["PHASE"]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session", autouse=True)
def upstream():
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["UPSTREAM_PORT"])), Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield
    server.shutdown()
    server.server_close()
'''

SUITE = '''
import json, os, urllib.request

import pytest


def ask(base, who):
    answers = []
    for text in os.environ["ASKS"].split(","):
        request = urllib.request.Request(
            f"{base}/v1/messages?ask={text}", data=json.dumps({"ask": text}).encode(), method="POST",
            headers={"content-type": "application/json", "x-who": who, "x-api-key": "test-key"},
        )
        with urllib.request.urlopen(request) as response:
            answers.append(text + "=" + json.loads(response.read())["phase"])
    print(f"ANSWERS {who} {' '.join(answers)}")


@pytest.mark.vcr
def test_vcrpy():
    ask(f"http://127.0.0.1:{os.environ['UPSTREAM_PORT']}", "vcrpy")


@pytest.mark.claude_vcr
def test_claude_vcr():
    ask(os.environ["ANTHROPIC_BASE_URL"], "claude_vcr")
'''

WHO = ("vcrpy", "claude_vcr")


@pytest.fixture(scope="module")
def both(tmp_path_factory) -> Venv:
    """pytest, vcrpy, pytest-recording and claude-vcr in one fresh venv."""
    wheel = build_wheel(tmp_path_factory.mktemp("wheel"))
    env = Venv(tmp_path_factory.mktemp("peer") / "venv")
    env.install(str(wheel))
    env.install("pytest-recording")
    env.install("pytest")
    assert "No broken requirements" in env.pip("check").stdout
    return env


class Phases:
    """The inner suite in a folder outside the repo, run phase by phase with both plugins in one mode."""

    def __init__(self, env: Venv, folder: Path) -> None:
        self.env = env
        self.folder = folder
        (folder / "conftest.py").write_text(CONFTEST)
        (folder / "test_peer.py").write_text(SUITE)
        self.port = free_port()

    def run(self, phase: str, mode: str, asks: str, *extra: str) -> dict[str, tuple[str, str, int]]:
        """Per plugin: passed or failed, the answers seen, and the upstream calls made in this phase."""
        calls = self.folder / f"calls-{phase}.txt"
        calls.write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VCR_", "ANTHROPIC_", "PYTEST_"))}
        env.update(PHASE=phase, ASKS=asks, UPSTREAM_PORT=str(self.port), CALLS_FILE=str(calls))
        done = subprocess.run(
            [
                self.env.python, "-m", "pytest", "-p", "no:cacheprovider", "-s", "-rA",
                f"--record-mode={mode}", f"--claude-vcr-record-mode={mode}",
                f"--claude-vcr-upstream=http://127.0.0.1:{self.port}", f"--claude-vcr-db={self.folder / 'vcr.db'}",
                *extra,
            ],
            cwd=self.folder, env=env, capture_output=True, text=True, timeout=120,
        )
        out = done.stdout
        assert "Traceback" not in done.stderr, done.stderr
        called = calls.read_text().split()
        found = {}
        for who in WHO:
            status = re.search(rf"^(PASSED|FAILED) test_peer.py::test_{who}\b", out, re.M)
            assert status, out
            answers = re.search(rf"ANSWERS {who} (.*)", out)
            found[who] = (status.group(1), answers.group(1) if answers else "", called.count(who))
        return found


# mode -> (phase 2 with `a,b`: result, answers, upstream calls), (phase 3, `none` with `a,b`: result, answers)
EXPECTED = {
    "none": (("FAILED", "", 0), ("FAILED", "")),
    "once": (("FAILED", "", 0), ("FAILED", "")),
    "new_episodes": (("PASSED", "a=p1 b=p2", 1), ("PASSED", "a=p1 b=p2")),
    "all": (("PASSED", "a=p2 b=p2", 2), ("PASSED", "a=p2 b=p2")),
    "rewrite": (("PASSED", "a=p2 b=p2", 2), ("PASSED", "a=p2 b=p2")),
}


@pytest.mark.parametrize("mode", list(EXPECTED))
def test_each_record_mode_means_what_it_means_in_pytest_recording(both, tmp_path, mode):
    phases = Phases(both, tmp_path)
    first = phases.run("p1", "once", "a")
    assert first == {who: ("PASSED", "a=p1", 1) for who in WHO}

    second = phases.run("p2", mode, "a,b")
    third = phases.run("p3", "none", "a,b")
    expected_second, expected_third = EXPECTED[mode]
    assert second["vcrpy"] == expected_second  # the reference: pytest-recording itself
    assert second["claude_vcr"] == second["vcrpy"]
    assert third["vcrpy"][:2] == expected_third
    assert third["claude_vcr"][:2] == third["vcrpy"][:2]
    assert third["claude_vcr"][2] == third["vcrpy"][2] == 0  # none never reaches the upstream


def test_a_recorded_response_plays_once_in_both(both, tmp_path):
    """vcrpy plays each recorded response once (allow_playback_repeats is off): a repeat past the recordings
    fails in `none`. The plugin sets --exhausted miss for the same reason (VCR_EXHAUSTED=repeat restores
    serve's default)."""
    phases = Phases(both, tmp_path)
    assert phases.run("p1", "once", "a") == {who: ("PASSED", "a=p1", 1) for who in WHO}
    repeated = phases.run("p2", "none", "a,a")
    assert repeated["vcrpy"] == repeated["claude_vcr"] == ("FAILED", "", 0)
    twice = phases.run("p3", "none", "a")
    assert twice["vcrpy"] == twice["claude_vcr"] == ("PASSED", "a=p1", 0)


def test_both_plugins_list_their_options_and_markers_side_by_side(both, tmp_path):
    helped = both.run(both.python, "-m", "pytest", "--help", "-p", "no:cacheprovider")
    for option in ("--record-mode=", "--claude-vcr-record-mode=", "--claude-vcr-db=", "--claude-vcr-upstream="):
        assert option in helped.stdout
    markers = both.run(both.python, "-m", "pytest", "--markers")
    assert "@pytest.mark.vcr" in markers.stdout and "@pytest.mark.claude_vcr" in markers.stdout
