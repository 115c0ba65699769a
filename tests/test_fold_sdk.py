"""The one fold (sse.MessageFold) against the installed official SDK's accumulation, field for field.

Corpus: every stream of the scenario library, streams of every block and delta type the SDK's beta event types
know (validated by the SDK's own pydantic types), and unknown future types. For each, our fold must equal
what the SDK's `accumulate_event` builds; and a Message turned back into SSE (`sse.message_to_sse`) must
accumulate, in the SDK, to the same Message.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from claude_vcr.conformance.library import (
    MODEL,
    SCENARIOS,
    STOP,
    block_delta,
    block_start,
    block_stop,
    fake_id,
    fake_signature,
    message,
    message_delta,
    text_block,
    thinking_block,
    tool_block,
    usage,
)
from claude_vcr.sse import StreamError, accumulate, message_to_sse, parse_sse, sdk_payloads

from tests.support.sdk_fold import sdk_accumulate, sdk_events

FINE_GRAINED = "fine-grained-tool-streaming-2025-05-14"
Events = list[dict[str, Any]]


def ours(body: bytes, request_headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Our fold of an SSE body, strict, reading tool JSON as the SDK does under the request's betas."""
    return accumulate(parse_sse(body), request_headers)


def sdk(body: bytes, request_headers: dict[str, str] | None = None, *, beta: bool = True) -> dict[str, Any]:
    """The SDK's fold of the same SSE body (the events it acts on, parsed by our SSE parser)."""
    return sdk_accumulate(list(sdk_payloads(parse_sse(body))), request_headers, beta=beta)


def sse(events: Events) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


# The scenario library -----------------------------------------------------------------------------------------

STREAMS = [s for s in SCENARIOS if s.is_sse and 200 <= s.status < 300]


def test_the_scenario_library_has_streams_to_compare() -> None:
    assert len(STREAMS) >= 15


@pytest.mark.parametrize("scenario", STREAMS, ids=[s.name for s in STREAMS])
def test_scenario_streams_fold_as_the_sdk_accumulates_them(scenario: Any) -> None:
    headers = dict(scenario.request_headers)
    if any(e.get("type") == "error" for e in scenario.events if isinstance(e, dict)):
        with pytest.raises(StreamError):
            ours(scenario.body, headers)
        return
    expected = sdk(scenario.body, headers)
    assert ours(scenario.body, headers) == expected
    assert sdk(scenario.body, headers, beta=False) == expected  # GA types: the GA accumulator agrees


# Every block and delta type of the SDK's beta event types -------------------------------------------------------

START = {"type": "message_start", "message": message("sdk-types", usage(1200, 3))}
TOOL_ID = fake_id("toolu_", "sdk-types")
SERVER_ID = fake_id("srvtoolu_", "sdk-types")
MCP_ID = fake_id("mcptoolu_", "sdk-types")
CITATION = {
    "type": "web_search_result_location",
    "cited_text": "Claude is a family of models.",
    "url": "https://example.com/claude",
    "title": "Claude",
    "encrypted_index": fake_signature("index", 40),
}


def whole(index: int, block: dict[str, Any]) -> Events:
    """A block that arrives whole in its start and carries no deltas (server tool results, fallback...)."""
    return [block_start(index, block), block_stop(index)]


def final(stop_reason: str = "end_turn", output_tokens: int = 90, **extra: Any) -> dict[str, Any]:
    return message_delta(stop_reason, output_tokens, **extra)


SDK_TYPED_STREAMS: dict[str, Events] = {
    "text-with-citations": [
        START,
        block_start(0, {"type": "text", "text": "", "citations": None}),
        block_delta(0, type="citations_delta", citation=CITATION),
        block_delta(0, type="text_delta", text="Claude is "),
        block_delta(0, type="citations_delta", citation={**CITATION, "cited_text": "second"}),
        block_delta(0, type="text_delta", text="a model."),
        block_stop(0),
        final(),
        STOP,
    ],
    "thinking-redacted-tool": [
        START,
        *thinking_block(0, "Let me think about the file layout first.", fake_signature("sig")),
        whole(1, {"type": "redacted_thinking", "data": fake_signature("redacted", 120)})[0],
        block_stop(1),
        block_start(2, {"type": "tool_use", "id": TOOL_ID, "name": "Bash", "input": {}, "caller": {"type": "direct"}}),
        block_delta(2, type="input_json_delta", partial_json=""),
        block_delta(2, type="input_json_delta", partial_json='{"command": "ls'),
        block_delta(2, type="input_json_delta", partial_json=' -la", "n": [1, 2.5, null, true]}'),
        block_stop(2),
        final("tool_use", 120, input_tokens=1200, cache_read_input_tokens=40),
        STOP,
    ],
    "server-tools": [
        START,
        *tool_block(0, SERVER_ID, "web_search", {"query": "claude"}, kind="server_tool_use"),
        *whole(
            1,
            {
                "type": "web_search_tool_result",
                "tool_use_id": SERVER_ID,
                "content": [
                    {
                        "type": "web_search_result",
                        "url": "https://example.com",
                        "title": "Example",
                        "encrypted_content": fake_signature("search", 60),
                        "page_age": None,
                    }
                ],
            },
        ),
        *whole(
            2,
            {
                "type": "web_fetch_tool_result",
                "tool_use_id": SERVER_ID,
                "content": {"type": "web_fetch_tool_result_error", "error_code": "url_not_accessible"},
            },
        ),
        *whole(
            3,
            {
                "type": "code_execution_tool_result",
                "tool_use_id": SERVER_ID,
                "content": {
                    "type": "code_execution_result",
                    "stdout": "4\n",
                    "stderr": "",
                    "return_code": 0,
                    "content": [],
                },
            },
        ),
        *whole(
            4,
            {
                "type": "bash_code_execution_tool_result",
                "tool_use_id": SERVER_ID,
                "content": {"type": "bash_code_execution_tool_result_error", "error_code": "unavailable"},
            },
        ),
        *whole(
            5,
            {
                "type": "text_editor_code_execution_tool_result",
                "tool_use_id": SERVER_ID,
                "content": {"type": "text_editor_code_execution_tool_result_error", "error_code": "unavailable"},
            },
        ),
        *whole(
            6,
            {
                "type": "tool_search_tool_result",
                "tool_use_id": SERVER_ID,
                "content": {"type": "tool_search_tool_result_error", "error_code": "unavailable"},
            },
        ),
        *whole(7, {"type": "container_upload", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"}),
        final(
            "end_turn",
            200,
            server_tool_use={"web_search_requests": 1, "web_fetch_requests": 1},
            container={"id": "container_011", "expires_at": "2026-12-02T10:00:00Z"},
        ),
        STOP,
    ],
    "mcp": [
        START,
        *(
            {**e, "content_block": {**e["content_block"], "server_name": "github"}} if "content_block" in e else e
            for e in tool_block(0, MCP_ID, "list_issues", {"repo": "claude-vcr"}, kind="mcp_tool_use")
        ),
        *whole(
            1,
            {
                "type": "mcp_tool_result",
                "tool_use_id": MCP_ID,
                "is_error": False,
                "content": [{"type": "text", "text": "3 open issues"}],
            },
        ),
        final(),
        STOP,
    ],
    "compaction": [
        START,
        block_start(0, {"type": "compaction", "content": None, "encrypted_content": None}),
        block_delta(0, type="compaction_delta", content="Summary of the first 40 turns.", encrypted_content="enc1"),
        block_delta(0, type="compaction_delta", content="Summary, revised.", encrypted_content=None),
        block_stop(0),
        *text_block(1, "Continuing from the summary."),
        final("compaction", 60),
        STOP,
    ],
    "fallback-relabels-model": [
        START,
        *text_block(0, "Let me start on that"),
        *whole(
            1,
            {
                "type": "fallback",
                "from": {"model": MODEL},
                "to": {"model": "claude-sonnet-4-5-20250929"},
                "trigger": {"type": "refusal"},
            },
        ),
        *text_block(2, "Here is the answer from the fallback model."),
        final("end_turn", 70, input_tokens=1300),
        STOP,
    ],
    "refusal-stop-details": [
        START,
        block_start(0, {"type": "text", "text": ""}),
        block_stop(0),
        final(
            "refusal",
            0,
            stop_details={"type": "refusal", "category": "cyber", "explanation": "Not something I can help with."},
        ),
        STOP,
    ],
    "usage-merging": [
        START,
        *text_block(0, "Counted."),
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {
                "output_tokens": 15,
                "input_tokens": 1210,
                "cache_creation_input_tokens": None,
                "cache_read_input_tokens": 7,
                "output_tokens_details": {"thinking_tokens": 4},
            },
            "context_management": {"applied_edits": []},
        },
        {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
            "usage": {"output_tokens": 16},
        },
        STOP,
    ],
    "stop-sequence": [
        START,
        *text_block(0, "one, two, "),
        final("stop_sequence", 9, stop_sequence="three"),
        STOP,
    ],
}


def test_the_sdk_typed_corpus_covers_every_block_type_of_the_sdk_start_event() -> None:
    from typing import get_args

    from anthropic.types.beta.beta_raw_content_block_start_event import ContentBlock

    union = get_args(get_args(ContentBlock)[0])
    known = {cls.model_fields["type"].annotation.__args__[0] for cls in union}
    seen = {
        e["content_block"]["type"]
        for stream in SDK_TYPED_STREAMS.values()
        for e in stream
        if e["type"] == "content_block_start"
    }
    assert known - seen <= {"advisor_tool_result", "mcp_tool_listing"}, known - seen


@pytest.mark.parametrize("name", list(SDK_TYPED_STREAMS))
def test_streams_of_the_sdks_own_event_types_fold_as_the_sdk_accumulates_them(name: str) -> None:
    body = sse(sdk_events(SDK_TYPED_STREAMS[name]))
    assert ours(body) == sdk(body)


def test_a_fallback_block_relabels_the_model_as_the_sdk_does() -> None:
    body = sse(sdk_events(SDK_TYPED_STREAMS["fallback-relabels-model"]))
    assert ours(body)["model"] == "claude-sonnet-4-5-20250929" == sdk(body)["model"]


def test_a_compaction_delta_fills_the_block_as_the_sdk_does() -> None:
    body = sse(sdk_events(SDK_TYPED_STREAMS["compaction"]))
    assert ours(body)["content"][0] == {"type": "compaction", "content": "Summary, revised.", "encrypted_content": None}
    assert ours(body) == sdk(body)


# Unknown future types and cut-short tool JSON ------------------------------------------------------------------

UNKNOWN_STREAMS: dict[str, Events] = {
    "unknown-block-event-delta-fields": [
        {"type": "message_start", "message": {**message("future", usage(10, 1)), "future_field": {"a": [1]}}},
        block_start(0, {"type": "hologram", "frames": 3, "meta": {"fps": 24}}),
        block_delta(0, type="hologram_delta", frames=4),
        block_delta(0, type="text_delta", text="a known delta that does not fit"),
        block_stop(0),
        {"type": "telemetry_event", "payload": {"x": 1}},
        *text_block(1, "And some text."),
        block_delta(1, type="thinking_delta", thinking="ignored: wrong block"),
        {
            "type": "message_delta",
            "delta": {"stop_reason": "future_reason", "stop_sequence": None, "future_delta_field": 1},
            "usage": {"output_tokens": 5, "future_usage": 9},
            "future_top_level": True,
        },
        {"type": "ping"},
        STOP,
    ],
    "events-after-message-stop": [
        {"type": "message_start", "message": message("late", usage(10, 1))},
        *text_block(0, "Done."),
        final(),
        STOP,
        *text_block(1, "A late block the SDK still folds."),
    ],
    "second-message-start-ignored": [
        {"type": "message_start", "message": message("first", usage(10, 1))},
        {"type": "message_start", "message": message("second", usage(99, 9))},
        *text_block(0, "hi"),
        final(),
        STOP,
    ],
}
CUT_JSON = ['{"file_path": "/tmp/a.py", "content": "print(', '{"a": [1, 2', '{"a": "he\\u00', '{"a": tr', '[1, "x']


@pytest.mark.parametrize("name", list(UNKNOWN_STREAMS))
def test_unknown_types_are_carried_or_dropped_exactly_as_the_sdk_does(name: str) -> None:
    body = sse(UNKNOWN_STREAMS[name])
    assert ours(body) == sdk(body)


@pytest.mark.parametrize("beta", ["", FINE_GRAINED], ids=["partial", "trailing-strings"])
@pytest.mark.parametrize("cut", CUT_JSON)
def test_tool_json_cut_short_reads_as_the_sdk_reads_it(cut: str, beta: str) -> None:
    body = sse(
        [
            {"type": "message_start", "message": message("cut", usage(10, 1))},
            *tool_block(0, TOOL_ID, "Write", cut, size=7, stop=False),
            final("max_tokens", 64),
            STOP,
        ]
    )
    headers = {"anthropic-beta": f"claude-code-20250219,{beta}"}
    assert ours(body, headers) == sdk(body, headers)


# JSON -> SSE synthesis, accumulated by the SDK -----------------------------------------------------------------

ALL_BODIES = [
    *(s.body for s in STREAMS if not any(e.get("type") == "error" for e in s.events if isinstance(e, dict))),
    *(sse(sdk_events(events)) for events in SDK_TYPED_STREAMS.values()),
]


@pytest.mark.parametrize("body", ALL_BODIES, ids=[f"stream{i}" for i in range(len(ALL_BODIES))])
def test_a_message_synthesised_as_sse_accumulates_in_the_sdk_to_the_same_message(body: bytes) -> None:
    folded = accumulate(parse_sse(body))
    if folded.get("stop_reason") == "max_tokens" and any(
        b.get("type") == "tool_use" for b in folded["content"]
    ):
        pytest.skip("a cut tool call's partial input is not the JSON it would re-serialise to")
    synthesised = message_to_sse(folded)
    assert sdk(synthesised) == folded
    assert accumulate(parse_sse(synthesised)) == folded


@pytest.mark.parametrize("name", list(SDK_TYPED_STREAMS))
def test_the_validators_accept_every_block_and_delta_type_of_the_sdk(name: str) -> None:
    from claude_vcr.protocol import validate_stream

    body = sse(sdk_events(SDK_TYPED_STREAMS[name]))
    findings = validate_stream(body, {"model": MODEL, "stream": True}, request_headers={"anthropic-beta": "compact-2026-01-12"})
    assert [str(f) for f in findings if f.severity == "error" or f.rule in {"B1", "B2", "F4"}] == []
