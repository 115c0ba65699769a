"""Claude on Google Vertex AI: the SDK's AnthropicVertex records through claude-vcr with its own bearer
token, then replays strict with Vertex down; the token never reaches the db."""

from __future__ import annotations

import anthropic
import pytest

from tests.support.cli import cli
from tests.support.db_scan import every_value
from tests.support.loopback import unreachable_url
from tests.support.sdk_calls import BASH_TOOL, SdkCalls
from tests.support.vertex_upstream import MODEL, PROJECT, REGION, TOKEN, client

TEXT = {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": "Hi there"}]}
TOOL = {**TEXT, "tools": [BASH_TOOL], "messages": [{"role": "user", "content": "RUN: echo hi"}]}


CALLS = SdkCalls(client)
json_call, one_stream_call, stream_call = CALLS.json_call, CALLS.one_stream_call, CALLS.stream_call


@pytest.mark.parametrize("call", [json_call, stream_call], ids=["json", "stream"])
@pytest.mark.parametrize("params", [TEXT, TOOL], ids=["text", "tool"])
def test_sdk_records_then_replays_strict_offline(proxy, vertex, db_path, monkeypatch, call, params):
    monkeypatch.delenv("GOOGLE_OAUTH_ACCESS_TOKEN", raising=False)
    recorder = proxy(mode="record", upstream=vertex.url, upstream_format="vertex")
    recorded_bytes, recorded = call(recorder.url, params)
    recorder.stop()
    assert vertex.script.rejected == []
    assert vertex.script.model_calls()
    if params is TOOL:
        assert recorded["stop_reason"] == "tool_use"
    vertex.stop()
    calls = len(vertex.script.calls)

    replayer = proxy(mode="replay", upstream=unreachable_url(), upstream_format="vertex")
    replayed_bytes, replayed = call(replayer.url, params)
    assert replayed_bytes == recorded_bytes
    assert replayed == recorded
    assert len(vertex.script.calls) == calls
    assert TOKEN.encode() not in every_value(db_path)


def test_count_tokens_records(proxy, vertex, db_path):
    recorder = proxy(mode="record", upstream=vertex.url, upstream_format="vertex")
    counted = client(recorder.url).messages.count_tokens(model=MODEL, messages=TEXT["messages"])
    assert counted.input_tokens > 0
    assert any("count-tokens:rawPredict" in call.path for call in vertex.script.calls)
    assert TOKEN.encode() not in every_value(db_path)
    recorder.stop()
    linted = cli("lint", "--db", db_path)  # a count, not a Message: no M1/M2 errors
    assert linted.exit_code == 0 and " E " not in linted.output, linted.output


def test_token_from_the_environment_when_the_client_sends_none(proxy, vertex, monkeypatch):
    """Claude Code with CLAUDE_CODE_SKIP_VERTEX_AUTH=1 sends no token: the proxy adds GOOGLE_OAUTH_ACCESS_TOKEN."""
    import httpx2 as httpx

    path = f"/v1/projects/{PROJECT}/locations/{REGION}/publishers/anthropic/models/{MODEL}:rawPredict"
    body = {
        "anthropic_version": "vertex-2023-10-16",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }
    recorder = proxy(mode="record", upstream=vertex.url, upstream_format="vertex")
    monkeypatch.delenv("GOOGLE_OAUTH_ACCESS_TOKEN", raising=False)
    refused = httpx.post(recorder.url + path, json=body)
    assert refused.status_code == 502 and "GOOGLE_OAUTH_ACCESS_TOKEN" in refused.text
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", TOKEN)
    answered = httpx.post(recorder.url + path, json=body)
    assert answered.status_code == 200, answered.text
    assert vertex.script.rejected == []


def test_wrong_token_is_refused_upstream(vertex):
    with pytest.raises(anthropic.AuthenticationError):
        client(vertex.url, token="ya29.wrong").messages.create(**TEXT)


def test_vertex_recordings_lint_clean(proxy, vertex, db_path):
    recorder = proxy(mode="record", upstream=vertex.url, upstream_format="vertex")
    for call in (json_call, stream_call):
        call(recorder.url, TOOL)
    recorder.stop()
    result = cli("lint", "--db", db_path)
    assert result.exit_code == 0, result.output
    assert " E " not in result.output


@pytest.mark.parametrize(
    ("first", "then"),
    [(json_call, stream_call), (one_stream_call, json_call)],
    ids=["json-then-stream", "stream-then-json"],
)
def test_raw_predict_and_stream_raw_predict_convert_on_replay(proxy, vertex, first, then):
    recorder = proxy(mode="record", upstream=vertex.url, upstream_format="vertex")
    _, recorded = first(recorder.url, TOOL)
    recorder.stop()
    vertex.stop()
    replayer = proxy(mode="replay", upstream=unreachable_url(), upstream_format="vertex")
    _, replayed = then(replayer.url, TOOL)
    assert {k: v for k, v in replayed.items() if k != "stop_details"} == {
        k: v for k, v in recorded.items() if k != "stop_details"
    }
