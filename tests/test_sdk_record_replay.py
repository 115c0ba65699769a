"""Record with the official anthropic SDK, then replay strict with the upstream down: the same bytes."""

from __future__ import annotations

import anthropic
import pytest
from claude_vcr.sse import accumulate, parse_sse

from tests.support.client import TEST_API_KEY
from tests.support.loopback import unreachable_url

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["city"],
    },
}


def client(url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=url, api_key=TEST_API_KEY, max_retries=0)


def raw_json_call(url: str, **params) -> tuple[bytes, dict]:
    response = client(url).messages.with_raw_response.create(**params)
    return response.http_response.content, response.parse().model_dump()


def raw_stream_call(url: str, **params) -> bytes:
    with client(url).messages.with_streaming_response.create(stream=True, **params) as response:
        return response.read()


def final_stream_message(url: str, **params) -> dict:
    with client(url).messages.stream(**params) as stream:
        return stream.get_final_message().model_dump()


TEXT = {"model": "claude-opus-5-5", "max_tokens": 100, "messages": [{"role": "user", "content": "Hi there"}]}
TOOL = {
    "model": "claude-opus-5-5",
    "max_tokens": 100,
    "tools": [WEATHER_TOOL],
    "messages": [{"role": "user", "content": "What is the weather in Paris?"}],
}


@pytest.mark.parametrize("params", [TEXT, TOOL], ids=["text", "tool_use"])
def test_non_streaming_replays_identical_bytes(proxy, upstream, params):
    recorder = proxy(mode="record")
    recorded_bytes, recorded = raw_json_call(recorder.url, **params)
    recorder.stop()
    upstream.stop()
    calls_before = len(upstream.calls)

    replayer = proxy(mode="replay", upstream=unreachable_url())
    replayed_bytes, replayed = raw_json_call(replayer.url, **params)

    assert replayed_bytes == recorded_bytes
    assert replayed == recorded
    assert len(upstream.calls) == calls_before == 1
    if params is TOOL:
        assert replayed["content"][0]["input"] == {"city": "Paris", "unit": "celsius"}
        assert replayed["stop_reason"] == "tool_use"


@pytest.mark.parametrize("params", [TEXT, TOOL], ids=["text", "tool_use"])
def test_streaming_replays_identical_bytes_and_message(proxy, upstream, params):
    recorder = proxy(mode="auto")
    recorded_bytes = raw_stream_call(recorder.url, **params)
    assert len(upstream.calls) == 1
    recorder.stop()
    upstream.stop()

    replayer = proxy(mode="replay", upstream=unreachable_url())
    assert raw_stream_call(replayer.url, **params) == recorded_bytes
    replayed_message = final_stream_message(replayer.url, **params)  # the same request again: repeats
    expected = accumulate(parse_sse(recorded_bytes))
    assert (
        replayed_message["id"] == expected["id"]
        and replayed_message["stop_reason"] == expected["stop_reason"]
    )
    assert [block.get("text") or block.get("input") for block in replayed_message["content"]] == [
        block.get("text") or block.get("input") for block in expected["content"]
    ]
    assert b"event: message_start" in recorded_bytes
    assert len(upstream.calls) == 1
    if params is TOOL:
        assert replayed_message["content"][0]["input"] == {"city": "Paris", "unit": "celsius"}


def test_strict_miss_is_not_retried_and_names_cassette_and_key(proxy, upstream):
    replayer = proxy(mode="replay", cassette="basic_tests")
    sdk = anthropic.Anthropic(base_url=replayer.url, api_key=TEST_API_KEY)  # default retries on
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk.messages.create(**TEXT)
    message = str(caught.value)
    assert "basic_tests" in message and "no recording" in message
    key = caught.value.response.headers["x-vcr-key"]
    assert key[:12] in message
    assert upstream.calls == []
