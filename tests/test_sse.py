"""SSE parsing, writing, folding into a Message and unfolding, on the shapes the Anthropic API streams."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from claude_vcr.sse import (
    MessageFold,
    SSEEvent,
    SSEParser,
    StreamError,
    accumulate,
    encode_event,
    encode_events,
    is_stream,
    iter_sse,
    message_to_events,
    message_to_sse,
    parse_partial_json,
    parse_sse,
)

MODEL = "claude-sonnet-4-5-20250929"
SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"


def payloads(events: list[SSEEvent]) -> list[Any]:
    """Only the decoded data, for comparing event sequences."""
    return [event.parsed for event in events]


def start(**usage: Any) -> dict[str, Any]:
    """A message_start as the API sends it."""
    base = {
        "input_tokens": 472,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 2,
    }
    base.update(usage)
    message = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": base,
    }
    return {"type": "message_start", "message": message}


def delta(index: int, **fields: Any) -> dict[str, Any]:
    """A content_block_delta payload."""
    return {"type": "content_block_delta", "index": index, "delta": fields}


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    """A content_block_start payload."""
    return {"type": "content_block_start", "index": index, "content_block": block}


def block_stop(index: int) -> dict[str, Any]:
    """A content_block_stop payload."""
    return {"type": "content_block_stop", "index": index}


STREAM = [
    start(),
    {"type": "ping"},
    block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
    delta(0, type="thinking_delta", thinking="The user wants "),
    delta(0, type="thinking_delta", thinking="the files listed."),
    delta(0, type="signature_delta", signature=SIGNATURE),
    block_stop(0),
    block_start(1, {"type": "text", "text": ""}),
    delta(1, type="text_delta", text="Listing files – "),
    delta(1, type="text_delta", text="café ☕ 📁"),
    block_stop(1),
    block_start(2, {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "Bash", "input": {}}),
    delta(2, type="input_json_delta", partial_json=""),
    delta(2, type="input_json_delta", partial_json='{"command": "ls'),
    delta(2, type="input_json_delta", partial_json=' -la", "description": "List files"}'),
    block_stop(2),
    {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {"input_tokens": 480, "output_tokens": 89},
    },
    {"type": "message_stop"},
]
"""Thinking, text with multi-byte characters, and a tool call whose JSON starts with an empty fragment."""

EXPECTED_MESSAGE = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": MODEL,
    "content": [
        {"type": "thinking", "thinking": "The user wants the files listed.", "signature": SIGNATURE},
        {"type": "text", "text": "Listing files – café ☕ 📁"},
        {
            "type": "tool_use",
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "name": "Bash",
            "input": {"command": "ls -la", "description": "List files"},
        },
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "stop_details": None,
    "usage": {
        "input_tokens": 480,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 89,
    },
}
"""Worked out by hand: usage from message_delta replaces, never adds; cache counts absent there survive."""


# Parsing ----------------------------------------------------------------------------------------------------


def test_parse_lf_stream() -> None:
    body = b'event: ping\ndata: {"type": "ping"}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n\n'
    events = parse_sse(body)
    assert [(e.event, e.data, e.parsed, e.terminated) for e in events] == [
        ("ping", '{"type": "ping"}', {"type": "ping"}, True),
        ("message_stop", '{"type":"message_stop"}', {"type": "message_stop"}, True),
    ]
    assert events[0].type == "ping"


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_line_endings_give_the_same_events(newline: bytes) -> None:
    body = encode_events(STREAM).replace(b"\n", newline)
    assert payloads(parse_sse(body)) == STREAM


def test_comments_are_skipped_and_kept() -> None:
    parser = SSEParser()
    events = parser.feed(b': keep-alive\nevent: ping\n:no space\ndata: {"type":"ping"}\n\n: trailing\n\n')
    assert payloads(events) == [{"type": "ping"}]
    assert parser.comments == ["keep-alive", "no space", "trailing"]


def test_multi_line_data_is_joined_with_newlines() -> None:
    body = b'event: message_stop\ndata: {"type":\ndata:  "message_stop"}\n\n'
    (event,) = parse_sse(body)
    assert event.data == '{"type":\n "message_stop"}'
    assert event.parsed == {"type": "message_stop"}


def test_field_rules() -> None:
    body = b"\xef\xbb\xbfevent:ping\ndata\nid: 7\nretry: 3000\nfoo: bar\n\nfoo: only unknown\n\n"
    (event,) = parse_sse(body)
    assert (event.event, event.data, event.parsed, event.id, event.retry) == ("ping", "", None, "7", 3000)


def test_event_without_data_is_still_dispatched() -> None:
    (event,) = parse_sse(b"event: ping\n\n")
    assert (event.event, event.data, event.parsed, event.type) == ("ping", None, None, None)


def test_non_json_data() -> None:
    (event,) = parse_sse(b"data: [DONE]\n\n")
    assert (event.event, event.data, event.parsed) == (None, "[DONE]", None)


def test_final_event_without_blank_line_is_marked() -> None:
    body = b'event: ping\ndata: {"type":"ping"}\n\nevent: message_stop\ndata: {"type":"message_stop"}\n'
    events = parse_sse(body)
    assert [e.terminated for e in events] == [True, False]
    assert events[1].parsed == {"type": "message_stop"}


def test_incomplete_trailing_data_waits_for_more() -> None:
    parser = SSEParser()
    assert parser.feed(b'event: message_stop\ndata: {"type":"mess') == []
    assert parser.pending
    (event,) = parser.feed(b'age_stop"}\n\n')
    assert event.parsed == {"type": "message_stop"}
    assert not parser.pending
    assert parser.close() == []


def test_incomplete_trailing_data_at_close() -> None:
    parser = SSEParser()
    assert parser.feed(b'event: message_stop\ndata: {"type":"mess') == []
    (event,) = parser.close()
    assert (event.event, event.data, event.parsed, event.terminated) == (
        "message_stop",
        '{"type":"mess',
        None,
        False,
    )


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR"])
def test_split_at_every_byte_boundary(newline: bytes) -> None:
    body = (b": comment\n" + encode_events(STREAM)).replace(b"\n", newline)
    whole = parse_sse(body)
    assert payloads(whole) == STREAM
    for cut in range(len(body) + 1):
        parser = SSEParser()
        events = parser.feed(body[:cut]) + parser.feed(body[cut:]) + parser.close()
        assert events == whole, f"split at byte {cut}"
        assert parser.comments == ["comment"]


def test_byte_by_byte_feed() -> None:
    body = encode_events(STREAM).replace(b"\n", b"\r\n")
    parser = SSEParser()
    events: list[SSEEvent] = []
    for i in range(len(body)):
        events.extend(parser.feed(body[i : i + 1]))
    assert parser.close() == []
    assert payloads(events) == STREAM


def test_iter_sse_yields_events_as_chunks_arrive() -> None:
    body = encode_events(STREAM)
    chunks = [body[i : i + 7] for i in range(0, len(body), 7)]
    assert payloads(list(iter_sse(chunks))) == STREAM


# Writing ----------------------------------------------------------------------------------------------------


def test_encode_event_exact_bytes() -> None:
    payload = delta(0, type="text_delta", text="Héllo\n")
    assert encode_event(payload) == (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
        b'"delta":{"type":"text_delta","text":"H\xc3\xa9llo\\n"}}\n\n'
    )
    assert encode_event({"type": "ping"}) == b'event: ping\ndata: {"type":"ping"}\n\n'


def test_encode_parsed_event_keeps_its_data_text() -> None:
    body = b'event: ping\ndata: {"type": "ping"}\n\ndata: [DONE]\n\nevent: x\ndata: a\ndata: b\n\n'
    assert encode_events(parse_sse(body)) == body


def test_write_then_parse_round_trip() -> None:
    assert payloads(parse_sse(encode_events(STREAM))) == STREAM


# Accumulating -----------------------------------------------------------------------------------------------


def test_accumulate_hand_computed() -> None:
    assert accumulate(STREAM) == EXPECTED_MESSAGE


def test_accumulate_parsed_events_skips_unnamed_and_unknown() -> None:
    body = encode_events(STREAM[:2]) + b'data: {"type":"ping"}\n\nevent: future\ndata: {"type":"future"}\n\n'
    body += encode_events(STREAM[2:])
    assert accumulate(parse_sse(body)) == EXPECTED_MESSAGE


def test_accumulate_does_not_alias_its_input() -> None:
    events = copy.deepcopy(STREAM)
    message = accumulate(events)
    message["content"][1]["text"] = "changed"
    message["usage"]["output_tokens"] = 0
    assert events == STREAM


def test_usage_overwrites_and_optional_fields_survive() -> None:
    events = [
        start(input_tokens=10, cache_read_input_tokens=5, output_tokens=1),
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 7, "cache_read_input_tokens": None},
        },
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 9, "input_tokens": 12, "server_tool_use": {"web_search_requests": 1}},
        },
        {"type": "message_stop"},
    ]
    assert accumulate(events)["usage"] == {
        "input_tokens": 12,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 5,
        "output_tokens": 9,
        "server_tool_use": {"web_search_requests": 1},
    }


def test_stop_details_and_container() -> None:
    details = {"type": "refusal", "category": "cyber", "explanation": "Declined."}
    events = [
        start(),
        block_start(0, {"type": "text", "text": ""}),
        block_stop(0),
        {
            "type": "message_delta",
            "delta": {
                "stop_reason": "refusal",
                "stop_sequence": None,
                "stop_details": details,
                "container": {"id": "container_011", "expires_at": "2025-01-01T00:00:00Z"},
            },
            "usage": {"output_tokens": 0},
        },
    ]
    message = accumulate(events)
    assert message["stop_details"] == details
    assert message["container"]["id"] == "container_011"
    assert message["content"] == [{"type": "text", "text": ""}]


def test_citations_and_signature_replacement() -> None:
    citation = {"type": "web_search_result_location", "url": "https://example.com", "cited_text": "Sunny"}
    events = [
        start(),
        block_start(0, {"type": "text", "text": ""}),
        delta(0, type="citations_delta", citation=citation),
        delta(0, type="citations_delta", citation=citation),
        delta(0, type="text_delta", text="It is sunny."),
        delta(0, type="thinking_delta", thinking="ignored: wrong block type"),
        block_stop(0),
        block_start(1, {"type": "thinking", "thinking": ""}),
        delta(1, type="signature_delta", signature="first"),
        delta(1, type="signature_delta", signature="second"),
        block_stop(1),
    ]
    content = accumulate(events)["content"]
    assert content[0] == {"type": "text", "text": "It is sunny.", "citations": [citation, citation]}
    assert content[1] == {"type": "thinking", "thinking": "", "signature": "second"}


@pytest.mark.parametrize(
    ("fragments", "expected"),
    [
        ([], {}),
        ([""], {}),
        (["", "{}"], {}),
        (['{"query": "weather', ' in NYC"}'], {"query": "weather in NYC"}),
        (['{"file_path": "/tmp/a.py", "content": "print('], {"file_path": "/tmp/a.py"}),
        (['{"a": [1, 2', ", 3"], {"a": [1, 2, 3]}),
    ],
    ids=["no-deltas", "empty-fragment", "empty-object", "joined", "cut-short", "cut-in-array"],
)
def test_tool_input_from_fragments(fragments: list[str], expected: Any) -> None:
    events = [
        start(),
        block_start(0, {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search", "input": {}}),
        *[delta(0, type="input_json_delta", partial_json=f) for f in fragments],
    ]
    assert accumulate(events)["content"][0]["input"] == expected


def test_invalid_tool_json_raises() -> None:
    events = [
        start(),
        block_start(0, {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {}}),
        delta(0, type="input_json_delta", partial_json='{"command" "ls"}'),
    ]
    with pytest.raises(ValueError, match="tool parameter JSON"):
        accumulate(events)


def test_error_event_raises_stream_error() -> None:
    error = {"type": "overloaded_error", "message": "Overloaded"}
    with pytest.raises(StreamError) as caught:
        accumulate([start(), {"type": "error", "error": error}])
    assert caught.value.error == error


@pytest.mark.parametrize(
    "events",
    [[], [{"type": "ping"}], [block_start(0, {"type": "text", "text": ""})]],
    ids=["empty", "ping-only", "block-first"],
)
def test_missing_message_start_raises(events: list[dict[str, Any]]) -> None:
    with pytest.raises(ValueError):
        accumulate(events)


def test_matches_the_official_sdk() -> None:
    """Cross-check with anthropic-sdk-python's own accumulator when it is installed (a test extra)."""
    streaming = pytest.importorskip("anthropic.lib.streaming._messages")
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for event in STREAM:
        if event["type"] == "ping":
            continue
        snapshot = streaming.accumulate_event(event=event, current_snapshot=snapshot, json_bufs=json_bufs)
    assert snapshot is not None
    sdk = snapshot.to_dict()
    assert sdk == EXPECTED_MESSAGE


def test_a_delta_for_a_block_that_never_started_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="never started"):
        accumulate([start(), delta(0, type="text_delta", text="orphan")])


def test_tolerant_fold_keeps_the_blocks_of_a_stream_that_ends_in_an_error() -> None:
    error = {"type": "overloaded_error", "message": "Overloaded"}
    events = [*STREAM[:11], {"type": "error", "error": error}]
    fold = MessageFold(strict=False).feed(events)
    message = fold.finish()
    assert [block["type"] for block in message["content"]] == ["thinking", "text"]
    assert message["content"][1]["text"] == "Listing files – café ☕ 📁"
    assert fold.error == error and fold.faults == [
        f"stream error event: {json.dumps(error, separators=(',', ':'))}"
    ]


def test_tolerant_fold_notes_what_strict_raises_for_and_goes_on() -> None:
    events = [
        block_start(0, {"type": "text", "text": ""}),
        delta(0, type="text_delta", text="early"),
        delta(3, type="text_delta", text="nowhere"),
        start(),
        block_start(1, {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {}}),
        delta(1, type="input_json_delta", partial_json='{"command" "ls"}'),
    ]
    fold = MessageFold(strict=False).feed(events)
    message = fold.finish()
    assert message["id"] == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert message["content"][0] == {"type": "text", "text": "early"}
    assert message["content"][1]["input"] == '{"command" "ls"}'  # not JSON at all: kept as its text
    assert fold.incomplete_input == {1}
    assert [fault.split(",")[0].split(":")[0] for fault in fold.faults] == [
        "Unexpected event order",  # content_block_start before message_start
        "Unexpected event order",  # content_block_delta before message_start
        "content_block_delta for block 3",
        "Unable to parse tool parameter JSON",
    ]


def test_cut_short_tool_json_is_shown_as_the_sdks_show_it_and_marked() -> None:
    events = [
        start(),
        block_start(0, {"type": "tool_use", "id": "toolu_01", "name": "Write", "input": {}}),
        delta(0, type="input_json_delta", partial_json='{"file_path": "/tmp/a.py", "content": "print('),
    ]
    fold = MessageFold().feed(events)
    assert fold.finish()["content"][0]["input"] == {"file_path": "/tmp/a.py"}
    assert fold.incomplete_input == {0} and fold.faults == []


def test_unknown_block_and_delta_types_are_carried_or_dropped_as_the_sdk_does() -> None:
    """The SDK's beta fold: a compaction_delta replaces content and encrypted_content; an unknown delta, or a
    known one that does not fit the block, changes nothing; an unknown block stays as it started."""
    events = [
        start(),
        block_start(0, {"type": "compaction", "content": None}),
        delta(0, type="compaction_delta", content="Summary, ", encrypted_content="e1"),
        delta(0, type="compaction_delta", content="part two."),
        delta(0, type="future_delta", detail={"level": 1}),
        delta(0, type="text_delta", text="ignored: a known delta that does not fit the block"),
        block_stop(0),
        block_start(1, {"type": "future_block", "frames": 3}),
        delta(1, type="future_delta", frames=4),
        block_stop(1),
    ]
    assert accumulate(events)["content"] == [
        {"type": "compaction", "content": "part two.", "encrypted_content": None},
        {"type": "future_block", "frames": 3},
    ]


def test_only_the_sdks_usage_fields_of_message_delta_are_taken() -> None:
    events = [
        start(),
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 3, "future": 1, "iterations": [{"type": "message"}]},
        },
    ]
    folded = accumulate(events)["usage"]
    assert "future" not in folded and folded["iterations"] == [{"type": "message"}]


@pytest.mark.parametrize(
    ("headers", "body", "expected"),
    [
        ({"Content-Type": "text/event-stream; charset=utf-8"}, b"{}", True),
        ([("content-type", "Text/Event-Stream")], b"", True),
        ({"content-type": "application/json"}, b"event: ping\ndata: {}\n\n", False),
        (None, b"\r\nevent: ping\ndata: {}\n\n", True),
        ([], b"data: {}\n\n", True),
        ({}, b": comment\n\n", True),
        (None, b'{"type": "message"}', False),
    ],
    ids=["header", "header-case", "json-header-wins", "sniff-event", "sniff-data", "sniff-comment", "json"],
)
def test_is_stream_by_content_type_else_by_first_bytes(headers: Any, body: bytes, expected: bool) -> None:
    assert is_stream(headers, body) is expected


# Unfolding a Message into events ----------------------------------------------------------------------------

WEB_SEARCH_MESSAGE = {
    "id": "msg_01Ap3RnxBeU3JZuDUDmWx6dm",
    "type": "message",
    "role": "assistant",
    "model": MODEL,
    "content": [
        {"type": "text", "text": "I'll search for that."},
        {
            "type": "server_tool_use",
            "id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB",
            "name": "web_search",
            "input": {"query": "weather NYC today"},
        },
        {
            "type": "web_search_tool_result",
            "tool_use_id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB",
            "content": [
                {
                    "type": "web_search_result",
                    "title": "Weather in New York",
                    "url": "https://weather.example/nyc",
                    "encrypted_content": "EqgfCioIARgBIiQ3YTAwMjY1Mi1",
                    "page_age": None,
                }
            ],
        },
        {
            "type": "text",
            "text": "It is sunny.",
            "citations": [
                {
                    "type": "web_search_result_location",
                    "url": "https://weather.example/nyc",
                    "title": "Weather in New York",
                    "encrypted_index": "Eo8BCioIAhgBIiQyYjQ0OWJmZi1",
                    "cited_text": "Sunny, 75F",
                }
            ],
        },
    ],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "stop_details": None,
    "usage": {
        "input_tokens": 10682,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 510,
        "server_tool_use": {"web_search_requests": 1},
    },
}

ROUND_TRIP_MESSAGES = {
    "text+tool_use+thinking": EXPECTED_MESSAGE,
    "web_search": WEB_SEARCH_MESSAGE,
    "refusal": {
        **EXPECTED_MESSAGE,
        "content": [{"type": "text", "text": ""}],
        "stop_reason": "refusal",
        "stop_details": {"type": "refusal", "category": "cyber", "explanation": "Declined."},
        "usage": {"input_tokens": 20, "output_tokens": 0},
    },
    "redacted+empty-input+container": {
        **EXPECTED_MESSAGE,
        "content": [
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
            {"type": "tool_use", "id": "toolu_02", "name": "TodoRead", "input": {}},
        ],
        "container": {"id": "container_011CNm", "expires_at": "2025-06-01T00:00:00Z"},
    },
    "stop_sequence": {
        **EXPECTED_MESSAGE,
        "content": [{"type": "text", "text": "1, 2, 3"}],
        "stop_reason": "stop_sequence",
        "stop_sequence": "4",
    },
}


@pytest.mark.parametrize("message", ROUND_TRIP_MESSAGES.values(), ids=ROUND_TRIP_MESSAGES.keys())
def test_accumulate_inverts_message_to_events(message: dict[str, Any]) -> None:
    original = copy.deepcopy(message)
    assert accumulate(message_to_events(message)) == message
    assert accumulate(parse_sse(message_to_sse(message))) == message
    assert message == original


def test_message_to_events_shape() -> None:
    events = message_to_events(EXPECTED_MESSAGE)
    assert [e["type"] for e in events] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    first = events[0]["message"]
    assert (first["content"], first["stop_reason"], first["stop_sequence"]) == ([], None, None)
    assert first["usage"]["output_tokens"] == 1
    assert events[2]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert [e["delta"]["type"] for e in events[3:5]] == ["thinking_delta", "signature_delta"]
    assert events[9]["content_block"]["input"] == {}
    assert events[10]["delta"] == {
        "type": "input_json_delta",
        "partial_json": '{"command":"ls -la","description":"List files"}',
    }
    assert events[12] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None, "stop_details": None},
        "usage": {
            "input_tokens": 480,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 89,
        },
    }


def test_message_to_events_web_search_blocks() -> None:
    events = message_to_events(WEB_SEARCH_MESSAGE, ping=False)
    result_start = next(e for e in events if e.get("index") == 2)
    assert result_start["content_block"] == WEB_SEARCH_MESSAGE["content"][2]
    assert [e["type"] for e in events if e.get("index") == 2] == ["content_block_start", "content_block_stop"]
    citation_deltas = [e["delta"]["type"] for e in events if e.get("index") == 3 and "delta" in e]
    assert citation_deltas == ["citations_delta", "text_delta"]


def test_message_to_sse_is_anthropic_framing() -> None:
    body = message_to_sse(EXPECTED_MESSAGE)
    assert body.startswith(b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_01')
    assert body.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    for chunk in body.split(b"\n\n")[:-1]:
        name, data = chunk.split(b"\n")
        assert json.loads(data.removeprefix(b"data: "))["type"] == name.removeprefix(b"event: ").decode()


# Partial JSON -----------------------------------------------------------------------------------------------

PARTIAL_CASES = {
    '{"a": "hel': {},
    '{"a": 1, "b": [1, 2': {"a": 1, "b": [1, 2]},
    '{"a": tr': {},
    '{"a": 12': {"a": 12},
    '{"a": 1.': {},
    '{"a": -': {},
    '{"a": 1e': {},
    '{"a"': {},
    '{"a":': {},
    "{": {},
    "[1,": [1],
    "[[[": [[[]]],
    '{"a": {"b": "x"}, "c": ["y': {"a": {"b": "x"}, "c": []},
    '{"a": "x\\': {},
    '{"a": "x\\"y"': {"a": 'x"y'},
    '{"k": "\\u00e9", "n": -0.5e': {"k": "é"},
    '{"a": true}': {"a": True},
    '{"a":1}  x': {"a": 1},
}


@pytest.mark.parametrize(("text", "expected"), PARTIAL_CASES.items(), ids=list(PARTIAL_CASES))
def test_parse_partial_json(text: str, expected: Any) -> None:
    assert parse_partial_json(text) == expected


@pytest.mark.parametrize("text", ['"ab', "  ", "[1,]", '{"a" 1}', '{"a": nope}', '{"a": 01}', "{'a': 1}"])
def test_parse_partial_json_rejects_invalid(text: str) -> None:
    with pytest.raises(ValueError):
        parse_partial_json(text)


def test_parse_partial_json_agrees_with_jiter() -> None:
    """The SDK reads tool input with jiter's partial mode; every prefix of a real input must read the same."""
    jiter = pytest.importorskip("jiter")
    text = '{"file_path": "/tmp/a.py", "edits": [{"old": "x = 1", "new": "-2.5e3"}], "dry": false, "n": null}'
    for cut in range(1, len(text) + 1):
        assert parse_partial_json(text[:cut]) == jiter.from_json(text[:cut].encode(), partial_mode=True), cut
