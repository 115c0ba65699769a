"""The real Claude Code CLI through the proxy: record a session, replay it strict with the upstream down."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.claude_code import run_claude
from tests.support.loopback import unreachable_url

pytestmark = pytest.mark.claude_code


@pytest.fixture
def session_dirs(tmp_path: Path) -> tuple[Path, Path]:
    workdir, home = tmp_path / "shop-app", tmp_path / "home"
    workdir.mkdir()
    home.mkdir()
    (workdir / "README.md").write_text("A small shop app.\n")
    return workdir, home


@pytest.mark.parametrize(
    "args, expected",
    [
        (["Summarise what this project does."], "Scripted reply number"),
        (["Please RUN:echo vcr-tool-ok", "--allowedTools", "Bash"], "The tool printed: vcr-tool-ok"),
    ],
    ids=["text-turn", "tool-session"],
)
def test_claude_code_replays_strict_with_upstream_down(claude, proxy, upstream, session_dirs, args, expected):
    workdir, home = session_dirs
    recorder = proxy(mode="record")
    recorded = run_claude(claude, recorder.url + "/c/claude_code", workdir, home, *args)
    assert recorded.returncode == 0, recorded.stderr
    assert expected in recorded.stdout
    message_calls = len(upstream.script.message_calls())
    assert message_calls >= (2 if "Bash" in args else 1)
    recorder.stop()
    upstream.stop()
    calls = len(upstream.calls)

    replayer = proxy(mode="replay", upstream=unreachable_url())
    replayed = run_claude(claude, replayer.url + "/c/claude_code", workdir, home, *args)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout == recorded.stdout
    assert len(upstream.calls) == calls


def test_claude_code_sees_a_strict_miss_as_an_api_error(claude, proxy, upstream, session_dirs):
    workdir, home = session_dirs
    replayer = proxy(mode="replay", cassette="empty_cassette")
    result = run_claude(claude, replayer.url, workdir, home, "Nothing was recorded for this")
    assert result.returncode != 0
    assert "empty_cassette" in result.stdout + result.stderr
    assert upstream.calls == []


def test_claude_code_preset_replays_in_another_directory_and_home(claude, proxy, upstream, tmp_path):
    from claude_vcr.matching import Rules

    args = ["Please RUN:echo vcr-tool-ok", "--allowedTools", "Bash"]
    dirs = {}
    for side, project in (("ci", "shop-app"), ("laptop", "checkout-of-shop")):
        workdir, home = tmp_path / side / project, tmp_path / side / "home"
        workdir.mkdir(parents=True)
        home.mkdir()
        dirs[side] = (workdir, home)
    recorder = proxy(mode="record", rules=Rules().with_presets("claude-code"))
    recorded = run_claude(claude, recorder.url, *dirs["ci"], *args)
    assert recorded.returncode == 0 and "The tool printed: vcr-tool-ok" in recorded.stdout
    recorder.stop()
    upstream.stop()
    calls = len(upstream.calls)

    # no --preset here: the cassette keeps the rules it was recorded with
    replayer = proxy(mode="replay", upstream=unreachable_url())
    replayed = run_claude(claude, replayer.url, *dirs["laptop"], *args)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout == recorded.stdout
    assert len(upstream.calls) == calls


def test_claude_code_miss_in_another_directory_names_the_difference(claude, proxy, upstream, tmp_path):
    args = ["Summarise what this project does."]
    first, second = tmp_path / "one" / "app", tmp_path / "two" / "app"
    for workdir in (first, second):
        workdir.mkdir(parents=True)
    recorder = proxy(mode="record")
    assert run_claude(claude, recorder.url, first, tmp_path, *args).returncode == 0
    recorder.stop()
    replayer = proxy(mode="replay", upstream=unreachable_url())
    missed = run_claude(claude, replayer.url, second, tmp_path, *args)
    output = missed.stdout + missed.stderr
    assert missed.returncode != 0
    assert "Closest recordings:" in output and "% same" in output
    assert "Primary working directory" in output and "/two/app" in output and "/one/app" in output
