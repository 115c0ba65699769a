"""The real Claude Code CLI on Bedrock and Vertex through claude-vcr: record against the scripted cloud,
replay strict with it stopped and no cloud credentials, the same output."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.bedrock_upstream import ACCESS_KEY, SECRET_KEY, SESSION_TOKEN
from tests.support.claude_code import run_claude
from tests.support.db_scan import every_value
from tests.support.loopback import unreachable_url
from tests.support.vertex_upstream import TOKEN as VERTEX_TOKEN

pytestmark = pytest.mark.claude_code

TURNS = [
    (["Summarise what this project does."], "Hello from the scripted"),
    (["Please RUN:echo vcr-tool-ok", "--allowedTools", "Bash"], "The tool printed: vcr-tool-ok"),
]


@pytest.fixture
def session_dirs(tmp_path: Path) -> tuple[Path, Path]:
    workdir, home = tmp_path / "shop-app", tmp_path / "home"
    workdir.mkdir()
    home.mkdir()
    (workdir / "README.md").write_text("A small shop app.\n")
    return workdir, home


@pytest.mark.parametrize("args, expected", TURNS, ids=["text-turn", "bash-turn"])
def test_claude_code_on_bedrock(
    claude, proxy, bedrock, aws_credentials, session_dirs, db_path, monkeypatch, args, expected
):
    workdir, home = session_dirs
    recorder = proxy(mode="record", upstream=bedrock.url, upstream_format="bedrock")
    recorded = run_claude(claude, recorder.url + "/c/bedrock_cc", workdir, home, *args, provider="bedrock")
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert expected in recorded.stdout
    assert bedrock.script.rejected == []  # the start-up control-plane call is signed too
    assert ("GET", "/inference-profiles?type=SYSTEM_DEFINED") in [
        (c.method, c.path) for c in bedrock.script.calls
    ]
    assert len(bedrock.script.model_calls()) >= (2 if "Bash" in args else 1)
    recorder.stop()
    bedrock.stop()
    calls = len(bedrock.script.calls)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)

    replayer = proxy(mode="replay", upstream=unreachable_url(), upstream_format="bedrock")
    replayed = run_claude(claude, replayer.url + "/c/bedrock_cc", workdir, home, *args, provider="bedrock")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout == recorded.stdout
    assert len(bedrock.script.calls) == calls
    stored = every_value(db_path)
    for secret in (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN, "Signature=", "AWS4-HMAC-SHA256"):
        assert secret.encode() not in stored, secret


@pytest.mark.parametrize("args, expected", TURNS, ids=["text-turn", "bash-turn"])
def test_claude_code_on_vertex(claude, proxy, vertex, session_dirs, db_path, monkeypatch, args, expected):
    """With CLAUDE_CODE_SKIP_VERTEX_AUTH=1 the CLI sends no token: the proxy adds GOOGLE_OAUTH_ACCESS_TOKEN."""
    workdir, home = session_dirs
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", VERTEX_TOKEN)
    recorder = proxy(mode="record", upstream=vertex.url, upstream_format="vertex")
    recorded = run_claude(claude, recorder.url + "/c/vertex_cc", workdir, home, *args, provider="vertex")
    assert recorded.returncode == 0, [(c.method, c.path) for c in vertex.script.calls]
    assert expected in recorded.stdout
    assert vertex.script.rejected == []
    assert len(vertex.script.model_calls()) >= (2 if "Bash" in args else 1)
    recorder.stop()
    vertex.stop()
    calls = len(vertex.script.calls)
    monkeypatch.delenv("GOOGLE_OAUTH_ACCESS_TOKEN")

    replayer = proxy(mode="replay", upstream=unreachable_url(), upstream_format="vertex")
    replayed = run_claude(claude, replayer.url + "/c/vertex_cc", workdir, home, *args, provider="vertex")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout == recorded.stdout
    assert len(vertex.script.calls) == calls
    assert VERTEX_TOKEN.encode() not in every_value(db_path)


@pytest.mark.parametrize("turn", [0, 1], ids=["text-turn", "bash-turn"])
def test_bedrock_session_recorded_with_one_release_replays_with_the_next(
    claude, claude_next, proxy, bedrock, aws_credentials, tmp_path, monkeypatch, turn
):
    """The claude-code preset on Bedrock: another release, directory and HOME replay the cassette strict."""
    from claude_vcr.matching import Rules

    args, expected = TURNS[turn]
    machines = []
    for side, project in (("ci", "shop-app"), ("laptop", "checkout")):
        workdir, home = tmp_path / side / project, tmp_path / side / "home"
        workdir.mkdir(parents=True)
        home.mkdir()
        (workdir / "README.md").write_text("A small shop app.\n")
        machines.append((workdir, home))
    recorder = proxy(
        mode="record",
        upstream=bedrock.url,
        upstream_format="bedrock",
        rules=Rules().with_presets("claude-code"),
    )
    recorded = run_claude(claude, recorder.url, *machines[0], *args, provider="bedrock")
    assert recorded.returncode == 0 and expected in recorded.stdout, recorded.stdout + recorded.stderr
    recorder.stop()
    bedrock.stop()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    replayer = proxy(mode="replay", upstream=unreachable_url(), upstream_format="bedrock")
    replayed = run_claude(claude_next, replayer.url, *machines[1], *args, provider="bedrock")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout == recorded.stdout
