"""The real Claude Code CLI through the OpenAI adapter: a multi-turn Bash session against the scripted
OpenAI-compatible upstream, recorded, every stored answer valid, then replayed strict with the upstream down."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from claude_vcr.protocol import validate_response
from claude_vcr.records import Recording
from claude_vcr.store import Store

from tests.support.claude_code import run_claude
from tests.support.loopback import unreachable_url
from tests.support.openai_upstream import MODEL, serve_openai

pytestmark = pytest.mark.claude_code


def stored(db: Path, cassette: str) -> list[Recording]:
    """Every recording of a cassette, bodies decompressed."""
    with Store(db) as store:
        found = [store.catalog.recording(cassette, key, ordinal) for _, key, ordinal in store.catalog.keys(cassette)]
    return [recording for recording in found if recording is not None]


def test_claude_code_runs_a_tool_session_through_the_adapter(
    claude, proxy, loop_thread, db_path, tmp_path, monkeypatch
):
    monkeypatch.setenv("VCR_UPSTREAM_API_KEY", "sk-openai-claude-code")
    workdir, home = tmp_path / "shop-app", tmp_path / "home"
    workdir.mkdir()
    home.mkdir()
    (workdir / "README.md").write_text("A small shop app.\n")
    args = ["Please RUN:echo adapter-ok", "--allowedTools", "Bash"]
    with serve_openai(loop_thread) as upstream:
        recorder = proxy(
            mode="record", upstream=upstream.url, upstream_format="openai", model_map=(("claude-*", MODEL),)
        )
        recorded = run_claude(claude, recorder.url + "/c/adapted", workdir, home, *args)
        assert recorded.returncode == 0, recorded.stdout + recorded.stderr
        assert "The tool printed: adapter-ok" in recorded.stdout
        chats = upstream.script.chat_calls()
        assert len(chats) >= 2
        tool_turn = next(call for call in chats if call.body["messages"][-1]["role"] == "tool")
        assert "adapter-ok" in tool_turn.body["messages"][-1]["content"]
        assert all(call.body["model"] == MODEL and call.body["stream"] for call in chats)
        assert all(call.headers["authorization"] == "Bearer sk-openai-claude-code" for call in chats)
        recorder.stop()
        calls = len(upstream.calls)

    recordings = stored(db_path, "adapted")
    messages = [r for r in recordings if r.path.startswith("/v1/messages")]
    assert len(messages) >= 2
    for r in recordings:
        findings = validate_response(
            r.path, r.status, r.response_headers, r.response_body, r.request_body, translated=True
        )
        assert [f for f in findings if f.severity == "error"] == [], (r.path, [str(f) for f in findings])
        assert b"[DONE]" not in r.response_body
    turns = [message for r in messages for message in json.loads(r.request_body)["messages"]]
    assert any(
        isinstance(turn["content"], list)
        and any(block.get("type") == "tool_result" for block in turn["content"])
        for turn in turns
    )

    replayer = proxy(
        mode="replay", upstream=unreachable_url(), upstream_format="openai", model_map=(("claude-*", MODEL),)
    )
    replayed = run_claude(claude, replayer.url + "/c/adapted", workdir, home, *args)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout == recorded.stdout
    assert len(upstream.calls) == calls
