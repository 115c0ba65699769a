"""The OpenAI-compatible adapter: Anthropic Messages in, Chat Completions to a scripted upstream, and every
answer checked with the project's protocol validators (zero errors)."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import pytest
from claude_vcr import sse
from claude_vcr.adapters.openai import chat_completions_url, reply_headers
from claude_vcr.adapters.openai_messages import (
    MEDIA_TOKENS,
    anthropic_tool_id,
    anthropic_usage,
    chat_request,
    estimate_input_tokens,
    map_model,
    model_by_id,
    models_page,
    reasoning_effort,
    stop_reason,
    upstream_tool_id,
    upstream_tool_name,
)
from claude_vcr.adapters.openai_stream import StreamTranslator
from claude_vcr.protocol import (
    Finding,
    validate_count_tokens,
    validate_message,
    validate_models,
    validate_response,
    validate_stream,
)

from tests.support.client import TEST_API_KEY
from tests.support.loopback import LoopThread, unreachable_url
from tests.support.openai_upstream import MODEL, Chunks, OpenAIServer, Plan, serve_openai
from tests.support.sdk_calls import BASH_TOOL

MAP = (("claude-*", MODEL),)
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
BASH = BASH_TOOL
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def params(text: str, **extra: Any) -> dict[str, Any]:
    body = {"model": "claude-opus-5-5", "max_tokens": 256, "messages": [{"role": "user", "content": text}]}
    body.update(extra)
    return body


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    broken: bool

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name), None)

    def events(self) -> list[dict[str, Any]]:
        return [event.parsed for event in sse.parse_sse(self.body)]

    def json(self) -> Any:
        return json.loads(self.body)


def exchange(
    loop_thread: LoopThread,
    url: str,
    body: Any = None,
    *,
    method: str = "POST",
    path: str = "/v1/messages",
    watch: Callable[[bytes], None] | None = None,
) -> Answer:
    """One request as a client sends it; a stream cut mid-way still returns the bytes that came. `watch` sees
    the bytes received so far after each read (on the loop thread)."""

    async def go() -> Answer:
        headers = {"x-api-key": TEST_API_KEY, "anthropic-version": "2023-06-01"}
        async with aiohttp.ClientSession() as session:
            data = json.dumps(body).encode() if body is not None else None
            async with session.request(method, url + path, data=data, headers=headers) as response:
                parts, broken = [], False
                try:
                    while chunk := await response.content.readany():
                        parts.append(chunk)
                        if watch is not None:
                            watch(b"".join(parts))
                except aiohttp.ClientPayloadError:
                    broken = True
                return Answer(response.status, list(response.headers.items()), b"".join(parts), broken)

    return loop_thread.run(go())


def errors(findings: list[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.severity == "error"]


def checked(answer: Answer, request: dict[str, Any], path: str = "/v1/messages") -> list[Finding]:
    """Every protocol finding for an answer; the test fails on any error."""
    findings = validate_response(
        path,
        answer.status,
        answer.headers,
        answer.body,
        json.dumps(request).encode(),
        translated=True,
    )
    assert errors(findings) == [], "\n".join(map(str, findings)) + "\n" + answer.body.decode(errors="replace")
    return findings


def recordings(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("select count(*) from recordings").fetchone()[0]


@pytest.fixture
def openai_upstream(loop_thread: LoopThread) -> Iterator[OpenAIServer]:
    with serve_openai(loop_thread) as server:
        yield server


@pytest.fixture
def adapter(proxy, openai_upstream: OpenAIServer, monkeypatch) -> Callable[..., Any]:
    """Start a proxy in front of the scripted OpenAI upstream (record mode unless told otherwise)."""
    monkeypatch.setenv("VCR_UPSTREAM_API_KEY", "sk-openai-test-key")

    def start(**overrides: Any):
        settings: dict[str, Any] = {
            "mode": "record",
            "upstream": openai_upstream.url,
            "upstream_format": "openai",
            "model_map": MAP,
        }
        settings.update(overrides)
        return proxy(**settings)

    return start


def translate(
    chunks: list[dict[str, Any]], *, done: bool = True, **options: Any
) -> tuple[StreamTranslator, bytes]:
    """Run chunks through a translator directly; returns it and the SSE bytes it produced."""
    translator = StreamTranslator(message_id="msg_test", model="claude-x", input_tokens=10, **options)
    events = translator.start()
    for chunk in chunks:
        events += translator.feed(chunk)
    events += translator.end(saw_done=done)
    return translator, sse.encode_events(events)


# ----------------------------------------------------------------------------------------------------------
# Requests: Anthropic -> Chat Completions


def test_a_full_turn_translates_to_chat_completions():
    body = {
        "model": "claude-opus-5-5",
        "max_tokens": 1000,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "system": [{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Use tools."}],
        "tools": [WEATHER, {"type": "web_search_20250305", "name": "web_search"}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "thinking": {"type": "enabled", "budget_tokens": 8000},
        "metadata": {"user_id": "someone"},
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather here?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_call_1",
                        "name": "get_weather",
                        "input": {"city": "Oslo"},
                    },
                    {
                        "type": "tool_use",
                        "id": "toolu_01ABC",
                        "name": "get_weather",
                        "input": {"city": "Rome"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_call_1", "content": "5 degrees"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_01ABC",
                        "is_error": True,
                        "content": [
                            {"type": "text", "text": "service down"},
                            {
                                "type": "image",
                                "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                            },
                        ],
                    },
                    {"type": "text", "text": "Thanks"},
                ],
            },
        ],
    }
    chat = chat_request(body, "vendor/model", stream=True)
    assert chat == {
        "model": "vendor/model",
        "max_tokens": 1000,
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["END"],
        "reasoning_effort": "medium",
        "stream": True,
        "stream_options": {"include_usage": True},
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather for a city",
                    "parameters": WEATHER["input_schema"],
                },
            }
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "messages": [
            {"role": "system", "content": "You are terse.\n\nUse tools."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather here?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                ],
            },
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                    },
                    {
                        "id": "01ABC",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "5 degrees"},
            {"role": "tool", "tool_call_id": "01ABC", "content": "Error: service down"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "(attachments of the result of tool call 01ABC)"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "text", "text": "Thanks"},
                ],
            },
        ],
    }


def test_claude_codes_system_message_and_text_blocks_stay_in_order():
    body = {
        "model": "claude-opus-5-5",
        "system": "Main prompt",
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "<reminder>"}, {"type": "text", "text": "Hi"}],
            },
            {"role": "system", "content": [{"type": "text", "text": "# Environment"}]},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_x1", "name": "Bash", "input": {}}],
            },
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x1", "content": ""}]},
        ],
    }
    messages = chat_request(body, "m", stream=False)["messages"]
    assert messages == [
        {"role": "system", "content": "Main prompt"},
        {"role": "user", "content": "<reminder>\n\nHi"},
        {"role": "system", "content": "# Environment"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "x1", "type": "function", "function": {"name": "Bash", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "x1", "content": ""},
    ]


@pytest.mark.parametrize(
    "choice, expected",
    [
        ({"type": "auto"}, ("auto", None)),
        ({"type": "any"}, ("required", None)),
        ({"type": "none"}, ("none", None)),
        (
            {"type": "tool", "name": "get_weather"},
            ({"type": "function", "function": {"name": "get_weather"}}, None),
        ),
        ({"type": "auto", "disable_parallel_tool_use": True}, ("auto", False)),
    ],
)
def test_tool_choice(choice, expected):
    chat = chat_request(params("hi", tools=[WEATHER], tool_choice=choice), "m", stream=False)
    assert (chat.get("tool_choice"), chat.get("parallel_tool_calls")) == expected


@pytest.mark.parametrize(
    "extra, effort",
    [
        ({}, None),
        ({"thinking": {"type": "disabled"}}, None),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "low"),
        ({"thinking": {"type": "enabled", "budget_tokens": 10000}}, "medium"),
        ({"thinking": {"type": "enabled", "budget_tokens": 32000}}, "high"),
        ({"thinking": {"type": "adaptive"}}, "high"),
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}}, "low"),
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "max"}}, "high"),
    ],
)
def test_thinking_becomes_reasoning_effort(extra, effort):
    assert reasoning_effort(params("hi", **extra)) == effort
    assert chat_request(params("hi", **extra), "m", stream=False).get("reasoning_effort") == effort


def test_tool_ids_map_back_without_state():
    assert anthropic_tool_id("call_abc123", "seed") == "toolu_call_abc123"
    assert upstream_tool_id("toolu_call_abc123") == "call_abc123"
    assert upstream_tool_id(anthropic_tool_id("toolu_01XYZ", "seed")) == "toolu_01XYZ"
    kimi = anthropic_tool_id("functions.Bash:0", "seed")
    assert kimi.startswith("toolu_vcr") and kimi == anthropic_tool_id("functions.Bash:0", "other seed")
    assert anthropic_tool_id(None, "msg:0") != anthropic_tool_id(None, "msg:1")
    assert anthropic_tool_id(None, "msg:0") == anthropic_tool_id(None, "msg:0")


def test_long_tool_names_are_shortened_and_mapped_back(adapter, loop_thread, openai_upstream):
    long_name = "mcp__company-internal.knowledge-base__search_every_document_in_the_archive_by_keyword"
    tool = dict(WEATHER, name=long_name)
    short = upstream_tool_name(long_name)
    assert (
        len(short) <= 64 and short == upstream_tool_name(long_name) and upstream_tool_name("Bash") == "Bash"
    )
    c = Chunks(1)
    items = [
        *c.tool_call(0, "call_long", short, '{"city": "Oslo"}'),
        c.chunk({}, "tool_calls"),
        c.usage(5, 5),
    ]
    openai_upstream.script.plans += [Plan(items=items), Plan(items=items)]
    url = adapter().url
    history = {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": long_name, "input": {}}],
    }
    for stream in (True, False):
        request = params(
            "search", tools=[tool], tool_choice={"type": "tool", "name": long_name}, stream=stream
        )
        request["messages"] = [*request["messages"], history, {"role": "user", "content": "again"}]
        answer = exchange(loop_thread, url, request)
        findings = checked(answer, request)
        assert not [f for f in findings if f.rule == "B6"]
        message = sse.accumulate(sse.parse_sse(answer.body)) if stream else answer.json()
        assert message["content"][0]["name"] == long_name
    sent = openai_upstream.script.chat_calls()[-1].body
    assert sent["tools"][0]["function"]["name"] == short
    assert sent["tool_choice"]["function"]["name"] == short
    assert sent["messages"][1]["tool_calls"][0]["function"]["name"] == short


def test_model_map_first_match_wins_and_unmapped_names_pass():
    pairs = (("claude-haiku-*", "small/model"), ("claude-*", "big/model"))
    assert map_model("claude-haiku-4-5", pairs) == "small/model"
    assert map_model("claude-opus-5-5", pairs) == "big/model"
    assert map_model("qwen/qwen3-coder", pairs) == "qwen/qwen3-coder"


def test_usage_nets_cached_tokens_out_of_input():
    assert anthropic_usage(
        {"prompt_tokens": 1000, "completion_tokens": 50, "prompt_tokens_details": {"cached_tokens": 800}}
    ) == {
        "input_tokens": 200,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 800,
        "output_tokens": 50,
    }
    deepseek = anthropic_usage({"prompt_tokens": 100, "completion_tokens": 5, "prompt_cache_hit_tokens": 60})
    assert deepseek["input_tokens"] == 40 and deepseek["cache_read_input_tokens"] == 60


@pytest.mark.parametrize(
    "finish, options, expected",
    [
        ("stop", {}, ("end_turn", None)),
        ("length", {}, ("max_tokens", None)),
        ("tool_calls", {"tool_calls": True}, ("tool_use", None)),
        ("content_filter", {}, ("refusal", None)),
        ("stop", {"tool_calls": True}, ("tool_use", None)),
        ("stop", {"refused": True}, ("refusal", None)),
        ("stop", {"matched": "END", "stop_sequences": ["END"]}, ("stop_sequence", "END")),
        ("stop", {"matched": 128001, "stop_sequences": ["END"]}, ("end_turn", None)),
        ("something_new", {}, ("end_turn", None)),
        ("tool_calls", {}, ("end_turn", None)),
    ],
)
def test_stop_reasons(finish, options, expected):
    options.setdefault("tool_calls", False)
    assert stop_reason(finish, **options) == expected


@pytest.mark.parametrize(
    "base, endpoint",
    [
        ("http://127.0.0.1:11434", "http://127.0.0.1:11434/v1/chat/completions"),
        ("http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000/v1/chat/completions"),
        ("https://openrouter.ai/api/v1", "https://openrouter.ai/api/v1/chat/completions"),
        ("https://host/v1beta/openai", "https://host/v1beta/openai/chat/completions"),
    ],
)
def test_upstream_url_with_or_without_v1(base, endpoint):
    assert chat_completions_url(base) == endpoint


def test_rate_limit_headers_are_translated():
    headers = dict(
        reply_headers(
            [
                ("x-request-id", "abc-123"),
                ("retry-after", "7"),
                ("x-ratelimit-limit-requests", "500"),
                ("x-ratelimit-remaining-tokens", "1000"),
                ("x-ratelimit-reset-tokens", "6m0s"),
            ],
            "application/json",
        )
    )
    assert headers["request-id"] == "req_abc-123"
    assert headers["retry-after"] == "7"
    assert headers["anthropic-ratelimit-requests-limit"] == "500"
    assert headers["anthropic-ratelimit-tokens-remaining"] == "1000"
    assert headers["anthropic-ratelimit-tokens-reset"].endswith("Z")
    assert dict(reply_headers([], "application/json"))["request-id"].startswith("req_")


# ----------------------------------------------------------------------------------------------------------
# The stream translator alone: the hard orderings


def test_interleaved_calls_wait_for_the_open_one_and_lose_nothing():
    c = Chunks(1)
    first, second, third = '{"a": [1, 2, 3]}', '{"b": "x"}', '{"c": true}'
    chunks = [c.call_start(0, "call_a", "get_weather"), c.call_start(1, "call_b", "get_weather")]
    chunks += [
        c.call_args(1, second[:4]),
        c.call_args(0, first[:5]),
        c.call_start(2, "call_c", "get_weather"),
    ]
    chunks += [c.call_args(2, third), c.call_args(1, second[4:]), c.call_args(0, first[5:])]
    chunks += [c.chunk({}, "tool_calls"), c.usage(10, 5)]
    translator, body = translate(chunks)
    assert errors(validate_stream(body, translated=True)) == []
    message = sse.accumulate(sse.parse_sse(body))
    assert [(b["id"], b["input"]) for b in message["content"]] == [
        ("toolu_call_a", {"a": [1, 2, 3]}),
        ("toolu_call_b", {"b": "x"}),
        ("toolu_call_c", {"c": True}),
    ]
    assert message["stop_reason"] == "tool_use" and translator.failed is None


def test_whitespace_before_a_tool_call_makes_no_text_block_and_late_text_follows_the_calls():
    c = Chunks(1)
    chunks = [c.chunk({"content": "\n\n"}), c.call_start(0, "call_a", "Bash", '{"command": "l')]
    chunks += [c.chunk({"content": "after"}), c.call_args(0, 's"}'), c.chunk({}, "tool_calls"), c.usage(3, 3)]
    _, body = translate(chunks)
    assert errors(validate_stream(body, translated=True)) == []
    message = sse.accumulate(sse.parse_sse(body))
    assert [b["type"] for b in message["content"]] == ["tool_use", "text"]
    assert message["content"][0]["input"] == {"command": "ls"} and message["content"][1]["text"] == "after"


def test_blank_arguments_are_an_explicit_empty_object():
    c = Chunks(1)
    _, body = translate(
        [c.call_start(0, "call_a", "ListAgents", ""), c.chunk({}, "tool_calls"), c.usage(1, 1)]
    )
    assert b'"partial_json":"{}"' in body
    assert sse.accumulate(sse.parse_sse(body))["content"][0]["input"] == {}


def test_invalid_arguments_end_the_stream_with_an_error_event(caplog):
    c = Chunks(1)
    with caplog.at_level(logging.WARNING, "claude_vcr.adapters.openai"):
        translator, body = translate(
            [c.call_start(0, "call_a", "get_weather", '{"city": '), c.chunk({}, "tool_calls")]
        )
    events = [event.parsed for event in sse.parse_sse(body)]
    assert events[-1]["type"] == "error" and events[-1]["error"]["type"] == "api_error"
    assert "not a JSON object" in events[-1]["error"]["message"]
    assert not any(event["type"] == "content_block_stop" for event in events)
    assert translator.failed and "not a JSON object" in caplog.text
    assert errors(validate_stream(body, translated=True)) == []


@pytest.mark.parametrize("arguments", ['"just a string"', "[1, 2]", '{"a": 1}{"b": 2}'])
def test_arguments_that_are_not_one_object_fail(arguments):
    c = Chunks(1)
    translator, body = translate(
        [c.call_start(0, "call_a", "get_weather", arguments), c.chunk({}, "tool_calls")]
    )
    assert translator.failed and sse.parse_sse(body)[-1].parsed["type"] == "error"


def test_arguments_after_a_whole_object_fail_rather_than_vanish():
    c = Chunks(1)
    chunks = [c.call_start(0, "call_a", "f", '{"a": 1}'), c.call_start(1, "call_b", "f", "{}")]
    chunks += [c.call_args(0, ', "b": 2}'), c.chunk({}, "tool_calls")]
    translator, body = translate(chunks)
    assert translator.failed and "after they formed a whole JSON object" in translator.failed


def test_truncated_arguments_under_length_are_kept_as_the_api_does():
    c = Chunks(1)
    translator, body = translate(
        [c.call_start(0, "call_a", "get_weather", '{"city": "Pa'), c.chunk({}, "length")]
    )
    findings = validate_stream(body, translated=True)
    assert translator.failed is None and errors(findings) == []
    assert any(f.rule == "B4" and f.severity == "warning" for f in findings)
    assert sse.accumulate(sse.parse_sse(body))["stop_reason"] == "max_tokens"


def test_a_reused_index_with_a_new_id_is_a_new_call():
    c = Chunks(1)
    chunks = [c.call_start(0, "call_a", "f", '{"x": 1}'), c.call_start(0, "call_b", "f", '{"x": 2}')]
    _, body = translate(chunks + [c.chunk({}, "tool_calls"), c.usage(1, 1)])
    content = sse.accumulate(sse.parse_sse(body))["content"]
    assert [(b["id"], b["input"]) for b in content] == [
        ("toolu_call_a", {"x": 1}),
        ("toolu_call_b", {"x": 2}),
    ]


def test_calls_without_index_or_id_and_duplicate_ids_get_distinct_ids():
    c = Chunks(1)
    call = {"type": "function", "id": "call_same", "function": {"name": "f", "arguments": "{}"}}
    chunks = [c.chunk({"tool_calls": [dict(call, index=0)]}), c.chunk({"tool_calls": [dict(call, index=1)]})]
    _, body = translate(chunks + [c.chunk({}, "tool_calls"), c.usage(1, 1)])
    ids = [b["id"] for b in sse.accumulate(sse.parse_sse(body))["content"]]
    assert len(set(ids)) == 2 and errors(validate_stream(body, translated=True)) == []


def test_whole_calls_with_neither_index_nor_id_are_separate_calls():
    c = Chunks(1)
    calls = [
        {"type": "function", "function": {"name": "f", "arguments": json.dumps({"n": n})}} for n in (1, 2)
    ]
    chunks = [c.chunk({"tool_calls": [call]}) for call in calls] + [c.chunk({}, "tool_calls"), c.usage(1, 1)]
    translator, body = translate(chunks)
    content = sse.accumulate(sse.parse_sse(body))["content"]
    assert [block["input"] for block in content] == [{"n": 1}, {"n": 2}] and translator.failed is None
    assert content[0]["id"].startswith("toolu_vcr") and content[0]["id"] != content[1]["id"]


def test_a_delta_with_both_reasoning_fields_is_not_doubled():
    c = Chunks(1)
    chunks = [
        c.chunk({"reasoning_content": "think", "reasoning": "think"}),
        c.chunk({"content": "ok"}),
        c.chunk({}, "stop"),
    ]
    _, body = translate(chunks + [c.usage(1, 1)])
    content = sse.accumulate(sse.parse_sse(body))["content"]
    assert content[0]["thinking"] == "think" and content[0]["signature"].startswith("openai-reasoning:")


def test_a_body_cut_before_its_finish_is_an_error_but_done_without_finish_is_an_end():
    c = Chunks(1)
    translator, body = translate([c.chunk({"content": "Hel"})], done=False)
    assert translator.failed and sse.parse_sse(body)[-1].parsed["type"] == "error"
    translator, body = translate([c.chunk({"content": "Hello"})], done=True)
    assert translator.failed is None and errors(validate_stream(body, translated=True)) == []


# ----------------------------------------------------------------------------------------------------------
# Streams through the proxy, against the scripted upstream


@pytest.mark.parametrize(
    "prompt, tools, blocks, stop",
    [
        ("Hello", [], ["text"], "end_turn"),
        ("Please RUN:echo hi", [BASH], ["text", "tool_use"], "tool_use"),
        ("PARALLEL weather", [WEATHER], ["tool_use", "tool_use"], "tool_use"),
        ("ONECHUNK weather", [WEATHER], ["tool_use"], "tool_use"),
        ("NOID weather", [WEATHER], ["tool_use"], "tool_use"),
        ("REASONING", [], ["thinking", "text"], "end_turn"),
        ("OPENROUTER", [], ["thinking", "text", "thinking", "text"], "end_turn"),
        ("LENGTH", [], ["text"], "max_tokens"),
        ("FILTER", [], ["text"], "refusal"),
        ("STOPSEQ", [], ["text"], "stop_sequence"),
        ("CACHED", [], ["text"], "end_turn"),
        ("NOUSAGE", [], ["text"], "end_turn"),
        ("NODONE", [], ["text"], "end_turn"),
    ],
)
def test_streams_are_valid_anthropic_streams(adapter, loop_thread, prompt, tools, blocks, stop):
    request = params(prompt, stream=True, stop_sequences=["END"], **({"tools": tools} if tools else {}))
    answer = exchange(loop_thread, adapter().url, request)
    assert answer.status == 200 and not answer.broken
    assert answer.header("content-type") == "text/event-stream; charset=utf-8"
    assert answer.header("request-id").startswith("req_")
    checked(answer, request)
    assert b"[DONE]" not in answer.body
    message = sse.accumulate(sse.parse_sse(answer.body))
    assert [block["type"] for block in message["content"]] == blocks
    assert message["stop_reason"] == stop and message["model"] == "claude-opus-5-5"
    assert all(
        block["id"].startswith("toolu_") for block in message["content"] if block["type"] == "tool_use"
    )
    kinds = [event["type"] for event in answer.events()]
    assert kinds.count("message_start") == 1 and kinds.index("message_delta") == len(kinds) - 2


def test_tool_inputs_and_ids_survive_fragmenting(adapter, loop_thread, openai_upstream):
    request = params("PARALLEL weather", stream=True, tools=[WEATHER])
    message = sse.accumulate(sse.parse_sse(exchange(loop_thread, adapter().url, request).body))
    assert [(b["id"], b["input"]) for b in message["content"]] == [
        ("toolu_call_paris0001", {"city": "Paris"}),
        ("toolu_call_london0001", {"city": "London", "unit": "celsius"}),
    ]
    fragments = [
        e
        for e in sse.parse_sse(exchange(loop_thread, adapter().url, request).body)
        if "input_json" in (e.data or "")
    ]
    assert len(fragments) > 4


def test_usage_comes_from_the_trailing_chunk(adapter, loop_thread):
    request = params("CACHED", stream=True)
    answer = exchange(loop_thread, adapter().url, request)
    delta = next(event for event in answer.events() if event["type"] == "message_delta")
    assert delta["usage"] == {
        "input_tokens": 11,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 20,
        "output_tokens": 12,
    }
    start = answer.events()[0]["message"]["usage"]
    assert start["input_tokens"] == estimate_input_tokens(request) and start["output_tokens"] == 0


def test_the_upstream_gets_chat_completions_with_the_key_and_mapped_model(
    adapter, loop_thread, openai_upstream
):
    request = params(
        "Please RUN:ls", stream=True, tools=[BASH], thinking={"type": "enabled", "budget_tokens": 2000}
    )
    exchange(loop_thread, adapter().url + "/c/mine", request)
    call = openai_upstream.script.chat_calls()[-1]
    assert call.path == "/v1/chat/completions"
    assert call.headers["authorization"] == "Bearer sk-openai-test-key"
    assert TEST_API_KEY not in json.dumps(dict(call.headers))
    assert call.body["model"] == MODEL and call.body["stream"] is True
    assert call.body["stream_options"] == {"include_usage": True}
    assert call.body["reasoning_effort"] == "low"
    assert call.body["tools"][0]["function"]["name"] == "Bash"


def test_pings_fill_upstream_silences(adapter, loop_thread, openai_upstream):
    request = params("SLOW please", stream=True)

    def two_pings_then_go_on(received: bytes) -> None:
        if received.count(b"event: ping") >= 2:
            openai_upstream.script.release()  # the upstream is silent until then

    answer = exchange(loop_thread, adapter(ping_interval=0.2).url, request, watch=two_pings_then_go_on)
    kinds = [event["type"] for event in answer.events()]
    assert kinds.count("ping") >= 2 and kinds[0] == "message_start"
    checked(answer, request)


def test_pings_do_not_hide_a_dead_upstream_for_ever(adapter, loop_thread, openai_upstream, db_path):
    request = params("SLOW please", stream=True)  # never released: the upstream stays silent
    answer = exchange(loop_thread, adapter(ping_interval=0.1, upstream_read_timeout=1.0).url, request)
    events = answer.events()
    assert "ping" in [e["type"] for e in events] and events[-1]["type"] == "error"
    assert "broke off" in events[-1]["error"]["message"] and answer.broken
    checked(answer, request)
    assert recordings(db_path) == 0


def test_no_ping_when_the_upstream_keeps_talking(adapter, loop_thread):
    answer = exchange(loop_thread, adapter(ping_interval=5).url, params("Hello", stream=True))
    assert "ping" not in [event["type"] for event in answer.events()]


@pytest.mark.parametrize(
    "status, kind",
    [
        (429, "rate_limit_error"),
        (401, "authentication_error"),
        (400, "invalid_request_error"),
        (404, "not_found_error"),
        (500, "api_error"),
        (503, "overloaded_error"),
        (529, "overloaded_error"),
    ],
)
def test_upstream_errors_before_the_stream_are_anthropic_errors(adapter, loop_thread, db_path, status, kind):
    request = params(f"STATUS:{status}", stream=True)
    answer = exchange(loop_thread, adapter().url, request)
    assert answer.status == status
    assert answer.json()["type"] == "error" and answer.json()["error"] == {
        "type": kind,
        "message": f"scripted {status}",
    }
    assert answer.json()["request_id"] == answer.header("request-id")
    checked(answer, request)
    if status == 429:
        assert answer.header("retry-after") == "7"
    # an error that comes back the same every time is an answer (recorded); one that says "try again" is not
    assert recordings(db_path) == (0 if status in (429, 500, 503, 529) else 1)


def test_an_unknown_upstream_error_body_still_gives_an_anthropic_error(adapter, loop_thread, openai_upstream):
    openai_upstream.script.plans.append(Plan(status=502, body="<html>bad gateway</html>"))
    answer = exchange(loop_thread, adapter().url, params("hi", stream=True))
    assert answer.status == 502 and answer.json()["error"]["type"] == "api_error"


@pytest.mark.parametrize(
    "prompt, message",
    [
        ("MIDFAIL", "the upstream broke off"),
        ("MIDERROR", "Provider returned error"),
        ("BADJSON weather", "not a JSON object"),
    ],
)
def test_mid_stream_failures_end_in_an_error_event_and_are_not_stored(
    adapter, loop_thread, db_path, caplog, prompt, message
):
    request = params(prompt, stream=True, tools=[WEATHER])
    with caplog.at_level(logging.WARNING):
        answer = exchange(loop_thread, adapter().url, request)
    events = answer.events()
    assert events[-1]["type"] == "error" and message in events[-1]["error"]["message"]
    assert answer.broken
    checked(answer, request)
    assert message in caplog.text and "nothing stored" in caplog.text
    assert recordings(db_path) == 0


def test_the_sdk_raises_the_error_event(adapter, openai_upstream):
    client = anthropic.Anthropic(base_url=adapter().url, api_key=TEST_API_KEY, max_retries=0)
    with pytest.raises(anthropic.APIError, match="Provider returned error"):
        with client.messages.stream(**params("MIDERROR")) as stream:
            for _ in stream:
                pass


def test_the_sdk_accumulates_a_translated_tool_turn(adapter):
    client = anthropic.Anthropic(base_url=adapter().url, api_key=TEST_API_KEY, max_retries=0)
    with client.messages.stream(**params("PARALLEL weather", tools=[WEATHER])) as stream:
        message = stream.get_final_message()
    assert [block.input for block in message.content] == [
        {"city": "Paris"},
        {"city": "London", "unit": "celsius"},
    ]
    assert message.stop_reason == "tool_use" and message.usage.output_tokens == 12


def test_a_tool_result_round_trip_reaches_the_upstream_with_its_call_id(adapter, openai_upstream):
    client = anthropic.Anthropic(base_url=adapter().url, api_key=TEST_API_KEY, max_retries=0)
    first = client.messages.create(**params("Please RUN:echo hi", tools=[BASH]))
    call = next(block for block in first.content if block.type == "tool_use")
    assert call.id == "toolu_call_scripted0001"
    messages = [
        {"role": "user", "content": "Please RUN:echo hi"},
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "hi\n"}]},
    ]
    second = client.messages.create(model="claude-opus-5-5", max_tokens=100, tools=[BASH], messages=messages)
    assert second.content[0].text == "The tool printed: hi"
    sent = openai_upstream.script.chat_calls()[-1].body["messages"]
    assert sent[-2]["tool_calls"][0]["id"] == "call_scripted0001"
    assert sent[-1] == {"role": "tool", "tool_call_id": "call_scripted0001", "content": "hi\n"}


def test_concurrent_streams_keep_their_own_state(adapter, loop_thread):
    url = adapter().url
    prompts = [
        "PARALLEL weather",
        "OPENROUTER",
        "Please RUN:echo a",
        "Hello",
        "REASONING",
        "NOID weather",
    ] * 2

    async def one(session: aiohttp.ClientSession, prompt: str) -> tuple[dict[str, Any], bytes]:
        request = params(prompt, stream=True, tools=[WEATHER, BASH])
        async with session.post(url + "/v1/messages", json=request) as response:
            return request, await response.read()

    async def all_at_once() -> list[tuple[dict[str, Any], bytes]]:
        async with aiohttp.ClientSession() as session:
            return await asyncio.gather(*(one(session, prompt) for prompt in prompts))

    for request, body in loop_thread.run(all_at_once()):
        assert errors(validate_stream(body, request, translated=True)) == []


# ----------------------------------------------------------------------------------------------------------
# Non-streaming, count_tokens, models


@pytest.mark.parametrize(
    "prompt, blocks, stop",
    [
        ("Hello", ["text"], "end_turn"),
        ("Please RUN:echo hi", ["text", "tool_use"], "tool_use"),
        ("PARALLEL weather", ["tool_use", "tool_use"], "tool_use"),
        ("REASONING", ["thinking", "text"], "end_turn"),
        ("NOUSAGE", ["text"], "end_turn"),
    ],
)
def test_non_streaming_requests_get_a_message(adapter, loop_thread, openai_upstream, prompt, blocks, stop):
    request = params(prompt, tools=[WEATHER, BASH])
    answer = exchange(loop_thread, adapter().url, request)
    assert answer.status == 200 and answer.header("content-type") == "application/json"
    checked(answer, request)
    assert validate_message(answer.body, request) == []
    message = answer.json()
    assert [block["type"] for block in message["content"]] == blocks and message["stop_reason"] == stop
    assert message["usage"]["input_tokens"] > 0 and message["usage"]["output_tokens"] > 0
    assert openai_upstream.script.chat_calls()[-1].body.get("stream") is None


def test_non_streaming_invalid_tool_json_is_a_502(adapter, loop_thread):
    answer = exchange(loop_thread, adapter().url, params("BADJSON weather", tools=[WEATHER]))
    assert answer.status == 502 and answer.json()["error"]["type"] == "api_error"
    assert "not a JSON object" in answer.json()["error"]["message"]


def test_a_server_that_ignores_stream_still_gives_a_stream(adapter, loop_thread, openai_upstream):
    c = Chunks(1)
    completion = {
        "id": c.id,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "plain"}, "finish_reason": "stop"}
        ],
    }
    completion["usage"] = {"prompt_tokens": 5, "completion_tokens": 1}
    openai_upstream.script.plans.append(Plan(body=completion))
    request = params("hi", stream=True)
    answer = exchange(loop_thread, adapter().url, request)
    assert answer.header("content-type").startswith("text/event-stream")
    checked(answer, request)
    assert sse.accumulate(sse.parse_sse(answer.body))["content"] == [{"type": "text", "text": "plain"}]


def test_count_tokens_is_a_local_estimate(adapter, loop_thread, openai_upstream):
    url = adapter().url
    small = params("Hello there")
    answer = exchange(loop_thread, url, small, path="/v1/messages/count_tokens?beta=true")
    assert answer.status == 200 and validate_count_tokens(answer.body) == []
    assert answer.json()["input_tokens"] == estimate_input_tokens(small)
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG * 100}}
    bigger = params("Hello there", tools=[WEATHER, BASH])
    bigger["messages"][0]["content"] = [{"type": "text", "text": "Hello there"}, image]
    counted = exchange(loop_thread, url, bigger, path="/v1/messages/count_tokens").json()["input_tokens"]
    assert counted > MEDIA_TOKENS + answer.json()["input_tokens"]
    assert openai_upstream.calls == []


def test_estimate_counts_text_at_about_four_characters_a_token():
    assert estimate_input_tokens(params("x" * 4000)) in range(1000, 1020)
    assert estimate_input_tokens(params("日本語" * 100)) >= 300


def test_models_lists_the_mapped_models(adapter, loop_thread, openai_upstream):
    pairs = (("claude-haiku-4-5", "small/model"), ("claude-*", "big/model"))
    url = adapter(model_map=pairs).url
    answer = exchange(loop_thread, url, method="GET", path="/v1/models?limit=1000")
    assert answer.status == 200 and validate_models(answer.body) == []
    assert [model["id"] for model in answer.json()["data"]] == [
        "claude-haiku-4-5",
        "small/model",
        "big/model",
    ]
    one = exchange(loop_thread, url, method="GET", path="/v1/models/claude-opus-5-5")
    assert one.json()["id"] == "claude-opus-5-5" and validate_models(one.body, single=True) == []
    missing = exchange(loop_thread, url, method="GET", path="/v1/models/gpt-none")
    assert missing.status == 404 and missing.json()["error"]["type"] == "not_found_error"
    assert openai_upstream.calls == []


def test_models_paging():
    pairs = tuple((f"m{i}", f"t{i}") for i in range(3))
    assert [m["id"] for m in models_page(pairs, {})["data"]] == ["m0", "m1", "m2", "t0", "t1", "t2"]
    first = models_page(pairs, {"limit": "2"})
    assert [m["id"] for m in first["data"]] == ["m0", "m1"] and first["has_more"] and first["last_id"] == "m1"
    second = models_page(pairs, {"limit": "2", "after_id": "m1"})
    assert [m["id"] for m in second["data"]] == ["m2", "t0"] and second["has_more"]
    last = models_page(pairs, {"limit": "2", "after_id": "t0"})
    assert [m["id"] for m in last["data"]] == ["t1", "t2"] and not last["has_more"]
    back = models_page(pairs, {"limit": "2", "before_id": "t0"})
    assert [m["id"] for m in back["data"]] == ["m1", "m2"] and back["has_more"]
    assert models_page((), {})["data"] == [] and model_by_id((), "x") is None


@pytest.mark.parametrize(
    "body, message",
    [
        (b"not json", "not JSON"),
        (json.dumps({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}).encode(), "model"),
        (json.dumps({"model": "claude-x", "max_tokens": 5, "messages": []}).encode(), "messages"),
        (json.dumps(params("x", tool_choice={"type": "weird"}, tools=[WEATHER])).encode(), "tool_choice"),
    ],
)
def test_requests_that_cannot_be_translated_are_400s_without_an_upstream_call(
    adapter, loop_thread, openai_upstream, body, message
):
    url = adapter().url

    async def go() -> tuple[int, dict[str, Any]]:
        async with aiohttp.ClientSession() as session:
            async with session.post(url + "/v1/messages", data=body) as response:
                return response.status, await response.json(content_type=None)

    status, payload = loop_thread.run(go())
    assert (
        status == 400
        and payload["error"]["type"] == "invalid_request_error"
        and message in payload["error"]["message"]
    )
    assert openai_upstream.calls == []


def test_a_model_that_refuses_reasoning_effort_is_asked_again_without_it(
    adapter, loop_thread, openai_upstream
):
    refusal = {
        "error": {"message": "Unsupported parameter: 'reasoning_effort' is not supported with this model."}
    }
    openai_upstream.script.plans.append(Plan(status=400, body=refusal))
    url = adapter().url
    request = params("Hello", stream=True, thinking={"type": "adaptive"})
    checked(exchange(loop_thread, url, request), request)
    checked(exchange(loop_thread, url, request), request)
    sent = [call.body.get("reasoning_effort") for call in openai_upstream.script.chat_calls()]
    assert sent == ["high", None, None]


def test_an_unreachable_upstream_is_a_502(adapter, loop_thread):
    answer = exchange(loop_thread, adapter(upstream=unreachable_url()).url, params("hi", stream=True))
    assert answer.status == 502 and answer.json()["error"]["type"] == "api_error"


def test_probe_and_telemetry_are_answered_locally(adapter, loop_thread, openai_upstream):
    url = adapter(mode="auto").url
    assert exchange(loop_thread, url, method="HEAD", path="/api/hello").status == 200
    assert exchange(loop_thread, url, {"events": []}, path="/api/event_logging/batch").status == 200
    assert exchange(loop_thread, url, {}, path="/v1/files").status == 404
    assert openai_upstream.calls == []


# ----------------------------------------------------------------------------------------------------------
# Recording and strict replay on top of the adapter


def test_record_then_strict_replay_with_the_upstream_down(
    adapter, proxy, loop_thread, openai_upstream, db_path
):
    recorder = adapter()
    requests = [
        params("Please RUN:echo hi", stream=True, tools=[BASH]),
        params("REASONING", stream=True),
        params("Hello", tools=[WEATHER]),
    ]
    recorded = [exchange(loop_thread, recorder.url + "/c/adapted", request) for request in requests]
    counted = exchange(
        loop_thread, recorder.url + "/c/adapted", requests[0], path="/v1/messages/count_tokens"
    )
    outcomes = [answer.header("x-vcr-outcome") for answer in [*recorded, counted]]
    assert outcomes == ["recording", "recording", "recorded", "recorded"]  # a stream's header leaves before its end
    assert recordings(db_path) == 4
    recorder.stop()
    openai_upstream.stop()
    calls = len(openai_upstream.calls)

    replayer = proxy(mode="replay", upstream=unreachable_url(), upstream_format="openai", model_map=MAP)
    for request, original in zip(requests, recorded, strict=True):
        replayed = exchange(loop_thread, replayer.url + "/c/adapted", request)
        assert replayed.header("x-vcr-outcome") == "hit"
        assert replayed.body == original.body and replayed.status == 200
        checked(replayed, request)
    again = exchange(loop_thread, replayer.url + "/c/adapted", requests[0], path="/v1/messages/count_tokens")
    assert again.body == counted.body
    miss = exchange(loop_thread, replayer.url + "/c/adapted", params("never recorded", stream=True))
    assert miss.status == 400 and miss.header("x-vcr-outcome") == "miss"
    assert len(openai_upstream.calls) == calls


def test_monitor_mode_finds_nothing_wrong_with_adapter_streams(adapter, loop_thread, caplog):
    url = adapter(mode="passthrough", check=True).url
    with caplog.at_level(logging.WARNING, "claude_vcr.proxy"):
        for prompt in ("Please RUN:echo hi", "OPENROUTER", "PARALLEL weather"):
            exchange(loop_thread, url, params(prompt, stream=True, tools=[WEATHER, BASH]))
    findings = [record.getMessage() for record in caplog.records if record.getMessage().startswith("check")]
    assert not [line for line in findings if " error" in line], findings
