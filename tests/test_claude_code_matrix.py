"""The release matrix: sessions recorded with each of seven Claude Code releases (June to December 2026) replay
strict under the claude-code preset with every later release, from another directory, HOME and date."""

from __future__ import annotations

import json
import logging
import subprocess
import urllib.request
from pathlib import Path

import pytest
from claude_vcr.catalog import Catalog
from claude_vcr.config import ProxyConfig
from claude_vcr.harness import run_command
from claude_vcr.render import run_summary
from claude_vcr.ui.pages import cassette_url

from tests.support.claude_code_matrix import (
    MODEL,
    RELEASES,
    REPLAYED,
    SESSIONS,
    collisions,
    later,
    replay_sessions,
)
from tests.support.cli import cli
from tests.support.fixtures_ui import viewing
from tests.support.loopback import unreachable_url

pytestmark = pytest.mark.claude_code

FAKETIME_CRASHES = ("2.1.270",)
"""This release's binary dies (SIGSEGV) under libfaketime: it replays on the real date."""

PAIRS = [(old, new) for old in RELEASES for new in later(old)]


@pytest.mark.parametrize("old, new", PAIRS, ids=[f"{o}->{n}" for o, n in PAIRS])
def test_a_session_recorded_with_one_release_replays_strict_with_a_later_one(
    release_recordings, loop_thread, tmp_path, old, new
):
    recorded = release_recordings(old)
    release_recordings(new)  # installed, and its own recordings exist for the no-collision check
    date = None if new in FAKETIME_CRASHES else "2027-03-14"
    outputs = replay_sessions(loop_thread, recorded.db, RELEASES[new], tmp_path, date=date, sessions=REPLAYED)
    assert outputs == {s.name: recorded.outputs[s.name] for s in REPLAYED}


def test_sessions_replay_in_an_environment_unlike_the_recording_one(
    release_recordings, loop_thread, tmp_path
):
    """A git repository instead of none, another user name, other CLAUDE_CODE_* variables."""
    recorded = release_recordings("2.1.332")
    for session in REPLAYED:
        repo = tmp_path / session.name / "checkout"
        repo.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
    env = {
        "USER": "mallory",
        "LOGNAME": "mallory",
        "CLAUDE_CODE_MAX_OUTPUT_TOKENS": "4096",
        "CLAUDE_CODE_DISABLE_TERMINAL_TITLE": "1",
        "CLAUDE_CODE_ENABLE_TELEMETRY": "0",
    }
    outputs = replay_sessions(loop_thread, recorded.db, RELEASES["2.1.337"], tmp_path, env=env, sessions=REPLAYED)
    assert outputs == {s.name: recorded.outputs[s.name] for s in REPLAYED}


@pytest.mark.parametrize("version", list(RELEASES))
def test_no_two_requests_of_different_purposes_or_conversations_share_a_key(release_recordings, version):
    found = collisions(release_recordings(version).db)
    assert found.keys >= 8
    if version == "2.1.197":  # the releases that ask for a title in `-p` mode
        assert len(found.purposes) >= 2, found.purposes
    assert not found.shared


def test_list_json_shows_the_typed_prompt(release_recordings, tmp_path):
    recorded = release_recordings("2.1.337")
    result = cli("list", "--json", "--db", recorded.db)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    prompts = {row.get("prompt_excerpt") or row.get("prompt") for row in rows}
    assert "Summarise what this project does." in prompts
    assert not any(p and "<system-reminder>" in p for p in prompts)


def test_the_viewer_shows_the_typed_prompt(release_recordings, loop_thread):
    recorded = release_recordings("2.1.337")
    with Catalog.open(recorded.db) as catalog:
        cassettes = {r.cassette for r in catalog.recordings()}
    pages = []
    with viewing(loop_thread, Path(recorded.db)) as url:
        for name in sorted(cassettes):
            with urllib.request.urlopen(url.rstrip("/") + cassette_url(name), timeout=30) as response:
                pages.append(response.read().decode())
    shown = "\n".join(pages)
    assert "Summarise what this project does." in shown
    assert "system-reminder" not in shown and "Attribution for git commits" not in shown


def test_a_replay_across_releases_says_once_per_cassette_how_the_harness_drifted(
    release_recordings, loop_thread, tmp_path, caplog
):
    caplog.set_level(logging.WARNING, logger="claude_vcr")
    recorded = release_recordings("2.1.328")
    sessions = [s for s in SESSIONS if s.name in ("text-turn", "bash-turn")]
    outputs = replay_sessions(loop_thread, recorded.db, RELEASES["2.1.337"], tmp_path, sessions=sessions)
    assert outputs == {s.name: recorded.outputs[s.name] for s in sessions}
    drift = [m for r in caplog.records if "harness drift" in (m := r.getMessage())]
    assert len(drift) == 1, drift
    assert "claude-code 2.1.328 -> 2.1.337: " in drift[0] and "same harness" not in drift[0]


def test_harness_diff_shows_the_full_difference_between_a_recording_and_a_request(
    release_recordings, tmp_path
):
    old, new = release_recordings("2.1.197"), release_recordings("2.1.337")
    catalog = Catalog.open(new.db)
    try:
        request = next(
            r for r in catalog.iter_details() if b"Summarise what this project does." in r.request_body
        )
    finally:
        catalog.close()
    saved = tmp_path / "request.json"
    saved.write_text(
        json.dumps(
            {
                "method": "POST",
                "path": request.path,
                "headers": dict(request.request_headers),
                "body": json.loads(request.request_body),
            }
        )
    )
    catalog = Catalog.open(old.db)
    try:
        key = next(
            r.key for r in catalog.iter_details() if b"Summarise what this project does." in r.request_body
        )
    finally:
        catalog.close()
    result = cli("harness-diff", key[:12], saved, "--db", old.db)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("claude-code 2.1.197 -> 2.1.337: system prompt ")
    assert any(line.startswith("--- recorded system prompt") for line in lines)
    assert any(line.startswith("tools removed: ") and "CronCreate" in line for line in lines)
    missing = cli("harness-diff", "ffffffffffff", saved, "--db", old.db)
    assert missing.exit_code == 1 and "Traceback" not in missing.output


def test_run_says_the_drift_once_and_the_summary_names_it(release_recordings, tmp_path):
    """`claude-vcr run -- claude ...` with a later release: one drift line while it runs, one in the summary."""
    recorded = release_recordings("2.1.328")
    workdir, home = tmp_path / "checkout", tmp_path / "home"
    workdir.mkdir()
    home.mkdir()
    (workdir / "README.md").write_text("A small shop app.\n")
    told: list[str] = []
    config = ProxyConfig(db=recorded.db, upstream=unreachable_url(), port=0, mode="replay")
    argv = [
        "env", "-C", str(workdir), f"HOME={home}", "ANTHROPIC_API_KEY=sk-ant-api03-EXAMPLE-key",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1", "DISABLE_AUTOUPDATER=1",
        str(RELEASES["2.1.337"]), "-p", "Please RUN:echo vcr-tool-ok", "--allowedTools", "Bash", *MODEL,
    ]  # fmt: skip
    result = run_command(config, argv, told.append)
    assert result.status == 0, told
    assert [line for line in told if "harness drift" in line] == [
        line
        for line in told
        if line.startswith("claude-vcr: cassette default: harness drift claude-code 2.1.328 -> 2.1.337")
    ]
    assert len([line for line in told if "harness drift" in line]) == 1, told
    summary = run_summary(
        result.counts(),
        None,
        str(recorded.db),
        {n: t.drift for n, t in result.ledger.cassettes.items() if t.drift},
    )
    assert (
        "cassette default replayed another Claude Code's recordings: claude-code 2.1.328 -> 2.1.337"
        in summary
    )
