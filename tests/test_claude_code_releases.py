"""Cassettes that survive Claude Code releases: recorded with one real release, replayed strict with another."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from claude_vcr.matching import Rules

from tests.support.claude_code import claude_code_version, run_claude
from tests.support.loopback import unreachable_url

pytestmark = pytest.mark.claude_code

TURNS = {
    "text-turn": (["Summarise what this project does."], "Scripted reply number"),
    "tool-turn": (["Please RUN:echo vcr-tool-ok", "--allowedTools", "Bash"], "The tool printed: vcr-tool-ok"),
}


def machine(tmp_path: Path, side: str, project: str) -> tuple[Path, Path]:
    """A working directory and a HOME of their own, as on another machine."""
    workdir, home = tmp_path / side / project, tmp_path / side / "home"
    workdir.mkdir(parents=True)
    home.mkdir()
    (workdir / "README.md").write_text("A small shop app.\n")
    return workdir, home


def test_the_pinned_releases_are_the_ones_named(claude, claude_next, claude_old):
    assert claude_code_version(claude) == "2.1.328"
    assert claude_code_version(claude_next) == "2.1.332"
    assert claude_code_version(claude_old) == "2.1.197"


@pytest.mark.parametrize("turn", list(TURNS))
def test_a_session_recorded_with_one_release_replays_strict_with_the_next(
    claude, claude_next, proxy, upstream, tmp_path, turn
):
    args, expected = TURNS[turn]
    recorder = proxy(mode="record", rules=Rules().with_presets("claude-code"))
    recorded = run_claude(claude, recorder.url, *machine(tmp_path, "ci", "shop-app"), *args)
    assert recorded.returncode == 0 and expected in recorded.stdout, recorded.stderr
    recorder.stop()
    upstream.stop()
    calls = len(upstream.calls)

    replayer = proxy(mode="replay", upstream=unreachable_url())
    replayed = run_claude(claude_next, replayer.url, *machine(tmp_path, "laptop", "checkout"), *args)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout == recorded.stdout
    assert len(upstream.calls) == calls


def test_a_cassette_keyed_by_the_first_preset_version_keeps_its_keys_and_misses_on_the_next_release(
    claude, claude_next, proxy, upstream, tmp_path, caplog
):
    """Version 1 of the preset still counted tool schemas: its cassettes keep their keys (nothing recorded
    under it turns into a miss), and the release whose schemas changed misses there, naming the schema."""
    caplog.set_level(logging.INFO, logger="claude_vcr")
    args, expected = TURNS["tool-turn"]
    recorder = proxy(mode="record", rules=Rules(presets=("claude-code",), versions=(("claude-code", 1),)))
    recorded = run_claude(claude, recorder.url, *machine(tmp_path, "ci", "shop-app"), *args)
    assert recorded.returncode == 0 and expected in recorded.stdout, recorded.stderr
    recorder.stop()
    upstream.stop()

    replayer = proxy(mode="replay", upstream=unreachable_url())
    same = run_claude(claude, replayer.url, *machine(tmp_path, "laptop", "checkout"), *args)
    assert same.returncode == 0 and same.stdout == recorded.stdout
    missed = run_claude(claude_next, replayer.url, *machine(tmp_path, "other", "checkout"), *args)
    assert missed.returncode != 0 and "no recording for POST /v1/messages" in missed.stdout
    first_miss = next(r.getMessage() for r in caplog.records if "no recording for" in r.getMessage())
    assert ".input_schema." in first_miss


@pytest.mark.parametrize("turn", list(TURNS))
def test_match_conversation_carries_a_session_across_a_large_release_jump_with_the_model_pinned(
    claude_old, claude_next, proxy, upstream, tmp_path, caplog, turn
):
    """2.1.197 -> 2.1.332: another system prompt, tool set, max_tokens and thinking; the same conversation.
    Recorded under preset version 2, which still counted the harness (version 3 hits: the release matrix)."""
    caplog.set_level(logging.INFO, logger="claude_vcr")
    args, expected = TURNS[turn]
    args = [*args, "--model", "claude-opus-4-5-20251101"]
    recorder = proxy(mode="record", rules=Rules(presets=("claude-code",), versions=(("claude-code", 2),)))
    recorded = run_claude(claude_old, recorder.url, *machine(tmp_path, "ci", "shop-app"), *args)
    assert recorded.returncode == 0 and expected in recorded.stdout, recorded.stderr
    recorder.stop()
    upstream.stop()
    calls = len(upstream.calls)

    exact = proxy(mode="replay", upstream=unreachable_url())
    missed = run_claude(claude_next, exact.url, *machine(tmp_path, "laptop", "checkout"), *args)
    assert missed.returncode != 0 and "no recording for" in missed.stdout  # exact matching stays the default
    exact.stop()

    replayer = proxy(mode="replay", upstream=unreachable_url(), match="conversation")
    replayed = run_claude(claude_next, replayer.url, *machine(tmp_path, "other", "checkout"), *args)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert expected in replayed.stdout
    assert len(upstream.calls) == calls
    warnings = [m for r in caplog.records if (m := r.getMessage()).startswith("hit-conversation") and "replays" in m]
    assert warnings and all("system" in w and "tools" in w for w in warnings), warnings
