"""The plugin with real clients in subprocesses: the Claude Code CLI and the Claude Agent SDK's query(),
recorded in one directory and HOME, replayed strict in another with the upstream down (the claude-code
preset given on the marker); and pytest-xdist workers writing one db."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.client import TEST_API_KEY
from tests.support.inner_suites import AGENT_SDK_SUITE, CLAUDE_CODE_SUITE, FAST, answers, clean_environment


@pytest.fixture
def inner(pytester, monkeypatch, upstream, tmp_path, claude):
    clean_environment(monkeypatch)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("CLAUDE", claude)
    db = tmp_path / "cassettes.db"

    def run(side: str, *args: str, key: str | None = None):
        workdir, home = tmp_path / side / "shop-app", tmp_path / side / "home"
        workdir.mkdir(parents=True)
        home.mkdir()
        (workdir / "README.md").write_text("A small shop app.\n")
        monkeypatch.setenv("SESSION_DIR", str(workdir))
        monkeypatch.setenv("SESSION_HOME", str(home))
        if key:
            monkeypatch.setenv("ANTHROPIC_API_KEY", key)
        else:
            monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
        return pytester.runpytest_subprocess(
            *FAST, "-s", f"--claude-vcr-db={db}", f"--claude-vcr-upstream={upstream.url}", *args, timeout=300
        )

    run.db = db
    return run


def replays_elsewhere(inner, upstream, suite_name: str) -> None:
    recorded = inner("ci", "--claude-vcr-record-mode=once", key=TEST_API_KEY)
    recorded.assert_outcomes(passed=1)
    made = len(upstream.script.message_calls())
    assert made >= 1
    upstream.stop()
    replayed = inner("laptop")
    replayed.assert_outcomes(passed=1)
    assert answers(replayed.stdout.str()) == answers(recorded.stdout.str())
    assert "Scripted reply number" in answers(replayed.stdout.str())[0]
    assert f"0 recorded, {made} replayed, 0 missed" in replayed.stdout.str()


@pytest.mark.claude_code
def test_claude_code_cli_in_a_marked_test_replays_in_another_directory_and_home(pytester, inner, upstream):
    pytester.makepyfile(test_cli=CLAUDE_CODE_SUITE)
    replays_elsewhere(inner, upstream, "test_cli")


@pytest.mark.claude_code
def test_agent_sdk_query_in_a_marked_test_replays_in_another_directory_and_home(pytester, inner, upstream):
    pytest.importorskip("claude_agent_sdk")
    pytester.makepyfile(test_agent=AGENT_SDK_SUITE)
    replays_elsewhere(inner, upstream, "test_agent")


XDIST_SUITE = '''
import anthropic
import pytest


@pytest.mark.claude_vcr
@pytest.mark.parametrize("n", range(8))
def test_ask(n):
    for turn in range(2):
        message = anthropic.Anthropic(max_retries=0).messages.create(
            model="claude-opus-5-5", max_tokens=64, messages=[{"role": "user", "content": f"question {n}.{turn}"}]
        )
        print("ANSWER", n, turn, message.content[0].text)
'''


def test_xdist_workers_record_into_one_db_and_lose_nothing(pytester, monkeypatch, upstream, tmp_path):
    import xdist  # noqa: F401  (a test extra: its absence is a failure, not a skip)
    clean_environment(monkeypatch)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makepyfile(test_many=XDIST_SUITE)
    db = tmp_path / "shared.db"
    common = (*FAST, "-p", "xdist.plugin", "-n", "2", f"--claude-vcr-db={db}", f"--claude-vcr-upstream={upstream.url}")
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    recorded = pytester.runpytest_subprocess(*common, "--claude-vcr-record-mode=once", timeout=300)
    recorded.assert_outcomes(passed=8)
    assert "16 recorded, 0 replayed, 0 missed" in recorded.stdout.str()  # the workers' ledgers, added up
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute("SELECT count(*) FROM recordings").fetchone()
        (cassettes,) = conn.execute("SELECT count(*) FROM cassettes").fetchone()
    assert (count, cassettes) == (16, 8)
    assert not Path(f"{db}-wal").exists()
    upstream.stop()
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    replayed = pytester.runpytest_subprocess(*common, timeout=300)
    replayed.assert_outcomes(passed=8)
    assert "0 recorded, 16 replayed, 0 missed" in replayed.stdout.str()
