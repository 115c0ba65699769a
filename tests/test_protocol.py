"""Protocol validators: every rule passes a realistic response and catches a minimal broken one.

Streams are built from the shapes in the protocol checklist, PROTOCOL.md (W.2-W.8). Each broken case asserts
its rule fires with the documented severity and that the exact set of error rules is what the case expects.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from claude_vcr.protocol import (
    Finding,
    error_body,
    validate_count_tokens,
    validate_error_response,
    validate_forwarded_headers,
    validate_headers,
    validate_message,
    validate_models,
    validate_response,
    validate_stream,
)
from claude_vcr.sse import accumulate, encode_events, message_to_events, message_to_sse

MODEL = "claude-sonnet-4-5-20250929"
SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"
TOOL_ID = "toolu_01T1x1fJ34qAmk2tNTrN7Up6"
SERVER_TOOL_ID = "srvtoolu_014hJH82Qum7Td6UV8gDXThB"
SSE_HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "request-id": "req_018EeWyXxfu5pfWkrYcMdjWG",
}
JSON_HEADERS = {"content-type": "application/json", "request-id": "req_018EeWyXxfu5pfWkrYcMdjWG"}
REQUEST = {
    "model": MODEL,
    "max_tokens": 4096,
    "stream": True,
    "messages": [{"role": "user", "content": "Please RUN:ls -la"}],
    "tools": [
        {
            "name": "Bash",
            "description": "Run a shell command",
            "input_schema": {
                "type": "object",
                "properties": {"command": {"type": "string"}, "description": {"type": "string"}},
                "required": ["command"],
            },
        },
        {
            "name": "Write",
            "description": "Write a file",
            "input_schema": {
                "type": "object",
                "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
                "required": ["file_path", "content"],
            },
        },
    ],
}
Events = list[dict[str, Any]]


# Building streams -------------------------------------------------------------------------------------------


def start(**usage: Any) -> dict[str, Any]:
    """message_start with the usage shape of a real recording (ai-sdk fixture in PROTOCOL.md W.7)."""
    base = {
        "input_tokens": 472,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 2,
        "service_tier": "standard",
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


PING = {"type": "ping"}
STOP = {"type": "message_stop"}
OVERLOADED = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def block_delta(index: int, **delta: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def block_stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def text_block(index: int, *chunks: str) -> Events:
    """A text block streamed in chunks."""
    deltas = [block_delta(index, type="text_delta", text=chunk) for chunk in chunks]
    return [block_start(index, {"type": "text", "text": ""}), *deltas, block_stop(index)]


def tool_block(
    index: int, *fragments: str, name: str = "Bash", tool_id: str = TOOL_ID, kind: str = "tool_use"
) -> Events:
    """A tool call whose input arrives as input_json_delta fragments."""
    deltas = [block_delta(index, type="input_json_delta", partial_json=f) for f in fragments]
    block = {"type": kind, "id": tool_id, "name": name, "input": {}}
    return [block_start(index, block), *deltas, block_stop(index)]


def thinking_block(index: int, *chunks: str, signature: str | None = SIGNATURE) -> Events:
    """A thinking block: thinking deltas, then the signature_delta just before the stop."""
    deltas = [block_delta(index, type="thinking_delta", thinking=chunk) for chunk in chunks]
    if signature is not None:
        deltas.append(block_delta(index, type="signature_delta", signature=signature))
    return [
        block_start(index, {"type": "thinking", "thinking": "", "signature": ""}),
        *deltas,
        block_stop(index),
    ]


def message_delta(
    stop_reason: Any, output_tokens: Any, stop_sequence: Any = None, **extra: Any
) -> dict[str, Any]:
    """message_delta; `stop_details`/`container` go to delta, anything else to usage."""
    delta = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
    for key in ("stop_details", "container"):
        if key in extra:
            delta[key] = extra.pop(key)
    return {"type": "message_delta", "delta": delta, "usage": {"output_tokens": output_tokens, **extra}}


def text_stream() -> Events:
    return [start(), PING, *text_block(0, "Hello", "! How can I help?"), message_delta("end_turn", 12), STOP]


def tool_stream() -> Events:
    """Text, then a Bash call whose JSON starts with an empty fragment; cumulative input in the delta."""
    return [
        start(),
        PING,
        *text_block(0, "I'll list the files."),
        *tool_block(1, "", '{"command": "ls', ' -la", "description": "List files"}'),
        message_delta(
            "tool_use", 89, input_tokens=472, cache_creation_input_tokens=0, cache_read_input_tokens=0
        ),
        STOP,
    ]


def thinking_stream() -> Events:
    return [
        start(),
        PING,
        *thinking_block(0, "The user asks 2+2.", " That is 4."),
        *text_block(1, "2 + 2 = 4."),
        message_delta("end_turn", 40),
        STOP,
    ]


WEB_RESULT = {
    "type": "web_search_tool_result",
    "tool_use_id": SERVER_TOOL_ID,
    "content": [
        {
            "type": "web_search_result",
            "title": "Weather in New York",
            "url": "https://weather.example/nyc",
            "encrypted_content": "EqgfCioIARgBIiQ3YTAwMjY1Mi1",
            "page_age": None,
        }
    ],
}
CITATION = {
    "type": "web_search_result_location",
    "url": "https://weather.example/nyc",
    "title": "Weather in New York",
    "encrypted_index": "Eo8BCioIAhgBIiQyYjQ0OWJmZi1",
    "cited_text": "Sunny, 75F",
}


def web_search_stream() -> Events:
    """Docs web-search shape: server_tool_use, a result block without deltas, cited text, more input."""
    return [
        start(input_tokens=2679),
        PING,
        *text_block(0, "I'll search for that."),
        *tool_block(
            1,
            "",
            '{"query": "weather NYC today"}',
            name="web_search",
            tool_id=SERVER_TOOL_ID,
            kind="server_tool_use",
        ),
        block_start(2, WEB_RESULT),
        block_stop(2),
        block_start(3, {"type": "text", "text": "", "citations": []}),
        block_delta(3, type="citations_delta", citation=CITATION),
        block_delta(3, type="text_delta", text="It is sunny."),
        block_stop(3),
        message_delta("end_turn", 510, input_tokens=10682, server_tool_use={"web_search_requests": 1}),
        STOP,
    ]


def refusal_stream() -> Events:
    """SDK refusal fixture shape: an empty text block (no deltas), then refusal with stop_details."""
    details = {"type": "refusal", "category": "cyber", "explanation": "This request was declined."}
    return [
        start(),
        block_start(0, {"type": "text", "text": ""}),
        block_stop(0),
        message_delta("refusal", 120, stop_details=details, output_tokens_details={"thinking_tokens": 67}),
        STOP,
    ]


def error_stream() -> Events:
    """Overloaded after a 200: message_start, part of a block, then the error event ends the stream."""
    return [
        start(),
        PING,
        block_start(0, {"type": "text", "text": ""}),
        block_delta(0, type="text_delta", text="Here"),
        OVERLOADED,
    ]


def max_tokens_tool_stream() -> Events:
    """SDK fixture incomplete_partial_json_response: the tool block is never stopped, its JSON is cut."""
    return [
        start(),
        *text_block(0, "Writing the file."),
        block_start(1, {"type": "tool_use", "id": TOOL_ID, "name": "Write", "input": {}}),
        block_delta(1, type="input_json_delta", partial_json=""),
        block_delta(1, type="input_json_delta", partial_json='{"file_path": "/tmp/a.py", "content": "print('),
        message_delta("max_tokens", 4096),
        STOP,
    ]


VALID_STREAMS: dict[str, tuple[Callable[[], Events], set[str]]] = {
    "text": (text_stream, set()),
    "tool_use": (tool_stream, set()),
    "thinking": (thinking_stream, set()),
    "web_search": (web_search_stream, set()),
    "refusal": (refusal_stream, set()),
    "error_after_start": (error_stream, set()),
    "max_tokens_in_tool_json": (max_tokens_tool_stream, {"S7", "B4"}),
}
"""Each valid stream and the warnings it is expected to carry (none but the max_tokens cut)."""


def sse(events: Events) -> bytes:
    return encode_events(events)


def by_severity(findings: list[Finding], severity: str) -> set[str]:
    return {f.rule for f in findings if f.severity == severity}


def rules(findings: list[Finding]) -> set[str]:
    return {f.rule for f in findings}


def edit(events: Events, where: int | str, path: str, value: Any) -> Events:
    """A copy with one field of one event replaced; `where` is a position or the first event of that type.

    `path` is dotted ("message.usage.output_tokens"); the value "-" deletes the field.
    """
    events = copy.deepcopy(events)
    index = where if isinstance(where, int) else next(i for i, e in enumerate(events) if e["type"] == where)
    target = events[index]
    *parents, last = path.split(".")
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value == "-":
        del target[last]
    else:
        target[last] = value
    return events


def without(events: Events, *indexes: int) -> Events:
    return [e for i, e in enumerate(copy.deepcopy(events)) if i not in indexes]


# Valid streams ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VALID_STREAMS)
def test_valid_streams(name: str) -> None:
    build, warnings = VALID_STREAMS[name]
    findings = validate_stream(sse(build()), REQUEST, SSE_HEADERS)
    assert by_severity(findings, "error") == set(), findings
    assert by_severity(findings, "warning") == warnings, findings


def test_max_tokens_cut_is_only_warnings() -> None:
    findings = validate_stream(sse(max_tokens_tool_stream()), REQUEST)
    assert {(f.rule, f.severity, f.index) for f in findings if f.severity != "info"} == {
        ("S7", "warning", 7),
        ("B4", "warning", 4),
    }


def test_valid_streams_without_context() -> None:
    for build, _ in VALID_STREAMS.values():
        assert by_severity(validate_stream(sse(build())), "error") == set()


def test_stream_from_non_streaming_message_is_valid() -> None:
    for build, _ in list(VALID_STREAMS.values())[:5]:
        message = accumulate(build())
        findings = validate_stream(message_to_sse(message), REQUEST, SSE_HEADERS)
        assert by_severity(findings, "error") | by_severity(findings, "warning") == set(), findings


def test_finding_str() -> None:
    """The one rendering of a finding (lint, verify, JUnit, the ui and the proxy's monitor log)."""
    assert str(Finding("S4", "error", 3, "index 1, expected 0")) == "E S4 @3 index 1, expected 0"
    assert str(Finding("H1", "warning", None, "no request-id")) == "W H1 no request-id"
    assert Finding("H1", "warning", None, "no request-id").to_json() == {
        "rule": "H1",
        "severity": "warning",
        "index": None,
        "message": "no request-id",
    }


# Stream rules: one valid and one minimal broken stream per rule ---------------------------------------------


@dataclass
class Case:
    """A rule, its expected severity, a valid stream without it and a broken one with it."""

    rule: str
    severity: str
    broken: bytes
    valid: bytes = b""
    errors: set[str] | None = None
    """The exact error rules the broken stream yields; defaults to {rule} for errors, {} otherwise."""
    kwargs: dict[str, Any] = field(default_factory=dict)


def raw(*chunks: bytes) -> bytes:
    return b"".join(chunks)


TEXT = sse(text_stream())
TOOL = sse(tool_stream())
THINKING = sse(thinking_stream())
WEB = sse(web_search_stream())
FINE_GRAINED = {"anthropic-beta": "claude-code-20250219,fine-grained-tool-streaming-2025-05-14"}
EAGER_REQUEST = {**REQUEST, "tools": [{**REQUEST["tools"][0], "eager_input_streaming": True}]}
BAD_JSON = ("", '{"command": "ls -la"', ', "description": ')


def bad_json_tool_stream() -> Events:
    return [start(), *tool_block(0, *BAD_JSON), message_delta("tool_use", 30), STOP]


STREAM_CASES = [
    # F: framing
    Case(
        "F1", "error", raw(sse(text_stream()[:1]), b'data: {"type":"ping"}\n\n', sse(text_stream()[2:])), TEXT
    ),
    Case(
        "F1",
        "error",
        raw(sse(text_stream()[:1]), b'event: keepalive\ndata: {"type":"ping"}\n\n', sse(text_stream()[2:])),
    ),
    Case("F1", "error", raw(sse(text_stream()[:1]), b"event: ping\ndata: hello\n\n", sse(text_stream()[2:]))),
    Case("F1", "error", raw(sse(text_stream()[:1]), b"event: ping\n\n", sse(text_stream()[2:]))),
    Case("F1", "error", TEXT[:-2], errors={"F1", "S2"}),
    Case("F2", "warning", TEXT + b"data: [DONE]\n\n", TEXT),
    Case(
        "F2", "warning", raw(sse(text_stream()[:-1]), b"event: message_stop\ndata: [DONE]\n\n"), errors={"S2"}
    ),
    Case(
        "F3",
        "info",
        raw(b": keep-alive\n\n", sse(text_stream()[:3]), b":ping\n", sse(text_stream()[3:])),
        TEXT,
    ),
    Case(
        "F4",
        "warning",
        raw(
            sse(text_stream()[:3]),
            b'event: annotation\ndata: {"type":"annotation"}\n\n',
            sse(text_stream()[3:]),
        ),
        TEXT,
    ),
    Case(
        "F5",
        "error",
        TEXT,
        kwargs={"request": REQUEST, "headers": {**SSE_HEADERS, "content-type": "application/json"}},
    ),
    # S: sequence
    Case("S1", "error", sse(without(text_stream(), 0)), TEXT),
    Case("S1", "error", sse([start(), *text_stream()])),
    Case("S1", "error", b"", errors={"S1", "S2"}),
    Case("S2", "error", sse(text_stream()[:-1]), TEXT),
    Case("S10", "error", sse([*text_stream(), PING])),
    Case("S10", "error", sse([*text_stream(), *text_block(1, "late")])),
    Case("S10", "error", TEXT + b'event: future_event\ndata: {"type":"future_event"}\n\n', TEXT),
    Case("S3", "error", sse(without(text_stream(), 6)), TEXT),
    Case("S3", "error", sse([*text_stream()[:-1], *text_block(1, "late"), STOP])),
    Case("S4", "error", sse([start(), *text_block(1, "Hi"), message_delta("end_turn", 3), STOP]), TEXT),
    Case(
        "S4",
        "error",
        sse(
            [
                start(),
                *text_block(0, "Listing."),
                *tool_block(0, '{"command": "ls"}'),
                message_delta("tool_use", 20),
                STOP,
            ]
        ),
        TOOL,
    ),
    Case(
        "S5",
        "error",
        sse(
            [
                start(),
                block_start(0, {"type": "text", "text": ""}),
                block_delta(0, type="text_delta", text="Listing."),
                *tool_block(1, '{"command": "ls"}'),
                block_stop(0),
                message_delta("tool_use", 20),
                STOP,
            ]
        ),
        TOOL,
    ),
    Case(
        "S6",
        "error",
        sse(
            [
                start(),
                *text_block(0, "Listing."),
                block_start(1, {"type": "tool_use", "id": TOOL_ID, "name": "Bash", "input": {}}),
                block_delta(0, type="text_delta", text=" Again."),
                block_delta(1, type="input_json_delta", partial_json='{"command": "ls"}'),
                block_stop(1),
                message_delta("tool_use", 20),
                STOP,
            ]
        ),
        TOOL,
    ),
    Case("S7", "error", sse(without(text_stream(), 5)), TEXT),
    Case("S7", "warning", sse(max_tokens_tool_stream()), TOOL, errors=set(), kwargs={"request": REQUEST}),
    Case("S8", "info", sse(refusal_stream()), TEXT),
    Case("S9", "warning", sse([PING, *text_stream()]), TEXT),
    # B: blocks and deltas
    Case(
        "B1",
        "error",
        sse(
            edit(text_stream(), "content_block_delta", "delta", {"type": "thinking_delta", "thinking": "hmm"})
        ),
        TEXT,
    ),
    Case(
        "B1", "error", sse(edit(text_stream(), "content_block_delta", "delta", {"type": "text_delta"})), TEXT
    ),
    Case("B1", "error", sse(edit(text_stream(), "content_block_delta", "delta", "-"))),
    Case(
        "B1",
        "error",
        sse(
            [
                start(),
                block_start(0, {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}),
                block_delta(0, type="thinking_delta", thinking="leak"),
                block_stop(0),
                *text_block(1, "4"),
                message_delta("end_turn", 9),
                STOP,
            ]
        ),
        THINKING,
    ),
    Case(
        "B1",
        "warning",
        sse(edit(text_stream(), "content_block_delta", "delta", {"type": "sparkle_delta", "sparkle": 1})),
        TEXT,
    ),
    Case(
        "B2",
        "warning",
        sse(edit(text_stream(), "content_block_start", "content_block", {"type": "hologram", "text": ""})),
        TEXT,
    ),
    Case("B2", "error", sse(edit(text_stream(), "content_block_start", "content_block", "-"))),
    Case("B3", "error", sse(edit(tool_stream(), 5, "content_block.input", {"command": "ls"})), TOOL),
    Case("B3", "error", sse(edit(tool_stream(), 5, "content_block.name", "-"))),
    Case("B3", "warning", sse(edit(tool_stream(), 5, "content_block.input", "-")), TOOL),
    Case("B4", "error", sse(bad_json_tool_stream()), TOOL),
    Case(
        "B4",
        "error",
        sse(edit(edit(tool_stream(), 7, "delta.partial_json", '["ls'), 8, "delta.partial_json", ' -la"]')),
    ),
    Case("B4", "warning", sse(bad_json_tool_stream()), TOOL, kwargs={"request_headers": FINE_GRAINED}),
    Case("B4", "warning", sse(bad_json_tool_stream()), TOOL, kwargs={"request": EAGER_REQUEST}),
    Case(
        "B4",
        "warning",
        sse([start(), *tool_block(0, *BAD_JSON), message_delta("max_tokens", 4096), STOP]),
        TOOL,
    ),
    Case(
        "B5",
        "warning",
        sse(edit(tool_stream(), 7, "delta.partial_json", '{"cmd": "ls')),
        TOOL,
        kwargs={"request": REQUEST},
    ),
    Case(
        "B6",
        "warning",
        sse(edit(tool_stream(), 5, "content_block.name", "bash")),
        TOOL,
        kwargs={"request": REQUEST},
    ),
    Case(
        "B7",
        "error",
        sse(
            [
                start(),
                *tool_block(0, '{"command": "ls"}'),
                *tool_block(1, '{"command": "pwd"}'),
                message_delta("tool_use", 40),
                STOP,
            ]
        ),
        TOOL,
    ),
    Case("B7", "warning", sse(edit(tool_stream(), 5, "content_block.id", "call_abc123")), TOOL),
    Case(
        "B7",
        "error",
        sse(edit(web_search_stream(), 9, "content_block.tool_use_id", "srvtoolu_other")),
        WEB,
        kwargs={"request": REQUEST},
    ),
    Case(
        "B7",
        "warning",
        sse(edit(web_search_stream(), 9, "content_block.tool_use_id", "srvtoolu_other")),
        WEB,
        errors=set(),
    ),
    Case("B8", "error", sse(without(thinking_stream(), 5)), THINKING),
    Case("B8", "error", sse(edit(thinking_stream(), 5, "delta.signature", "")), THINKING),
    Case(
        "B8",
        "error",
        sse(
            [
                *thinking_stream()[:5],
                block_delta(0, type="signature_delta", signature="x"),
                *thinking_stream()[5:],
            ]
        ),
        THINKING,
    ),
    Case("B8", "warning", sse(without(thinking_stream(), 5)), THINKING, kwargs={"translated": True}),
    Case(
        "B9",
        "warning",
        sse(
            [
                *thinking_stream()[:6],
                block_delta(0, type="thinking_delta", thinking="Second step."),
                *thinking_stream()[6:],
            ]
        ),
        THINKING,
        errors=set(),
        kwargs={"translated": True},
    ),
    # M: message, usage, stop
    Case(
        "M1",
        "error",
        sse(edit(text_stream(), "message_start", "message.content", [{"type": "text", "text": "Hi"}])),
        TEXT,
    ),
    Case("M1", "error", sse(edit(text_stream(), "message_start", "message.role", "user"))),
    Case("M1", "error", sse(edit(text_stream(), "message_start", "message.stop_reason", "end_turn"))),
    Case("M1", "error", sse(edit(text_stream(), "message_start", "message.usage.output_tokens", "-"))),
    Case("M1", "error", sse(edit(text_stream(), "message_start", "message", "-"))),
    Case("M1", "warning", sse(edit(text_stream(), "message_start", "message.id", "chatcmpl-123")), TEXT),
    Case("M2", "error", sse(edit(text_stream(), "message_delta", "delta.stop_reason", "stop")), TEXT),
    Case("M2", "error", sse(edit(text_stream(), "message_delta", "delta.stop_reason", None)), TEXT),
    Case("M2", "error", sse(edit(text_stream(), "message_delta", "usage.output_tokens", "-")), TEXT),
    Case("M2", "warning", sse(edit(text_stream(), "message_delta", "delta.stop_reason", "compaction")), TEXT),
    Case("M3", "info", TOOL, TEXT),
    Case("M4", "warning", sse(edit(text_stream(), "message_start", "message.usage.output_tokens", 50)), TEXT),
    Case("M4", "warning", sse(edit(text_stream(), "message_delta", "usage.input_tokens", 9000)), WEB),
    Case(
        "M4",
        "warning",
        sse(
            edit(
                edit(text_stream(), "message_start", "message.usage.cache_read_input_tokens", 900),
                "message_delta",
                "usage.cache_read_input_tokens",
                0,
            )
        ),
        TEXT,
    ),
    Case("M5", "error", sse(edit(text_stream(), "message_delta", "delta.stop_reason", "tool_use")), TOOL),
    Case("M5", "warning", sse(edit(tool_stream(), 10, "delta.stop_reason", "end_turn")), TOOL),
    Case(
        "M6", "warning", sse(edit(text_stream(), "message_delta", "delta.stop_sequence", "\n\nHuman:")), TEXT
    ),
    Case(
        "M6", "warning", sse(edit(text_stream(), "message_delta", "delta.stop_reason", "stop_sequence")), TEXT
    ),
    Case(
        "M7",
        "warning",
        sse(edit(text_stream(), "message_start", "message.usage.cache_read_input_tokens", -1)),
        TEXT,
    ),
    Case(
        "M7",
        "warning",
        sse(edit(text_stream(), "message_start", "message.usage.cache_creation_input_tokens", 5501)),
        TEXT,
    ),
    Case(
        "M7", "warning", sse(edit(text_stream(), "message_start", "message.usage.service_tier", "gold")), TEXT
    ),
    Case("M8", "warning", sse(edit(text_stream(), "message_start", "message.usage.input_tokens", 0)), TEXT),
    Case(
        "M8",
        "warning",
        sse(
            edit(
                edit(text_stream(), "message_start", "message.usage.input_tokens", 100),
                "message_delta",
                "usage.output_tokens",
                1,
            )
        ),
        TEXT,
    ),
    Case(
        "M9", "info", sse(edit(refusal_stream(), 3, "delta.stop_details", "refusal")), sse(refusal_stream())
    ),
    Case(
        "M9",
        "info",
        sse(edit(refusal_stream(), 3, "delta.stop_details", {"type": "refusal"})),
        sse(refusal_stream()),
    ),
    # E: errors inside a stream
    Case("E1", "error", sse(edit(error_stream(), 4, "error", "-")), sse(error_stream())),
    Case("E1", "error", sse(edit(error_stream(), 4, "error.message", "-")), sse(error_stream())),
    Case("E1", "warning", sse(edit(error_stream(), 4, "error.type", "brownout_error")), sse(error_stream())),
    Case(
        "E2",
        "error",
        sse(
            [
                start(),
                *text_block(0, "[OpenRouter Error] upstream returned 502"),
                message_delta("end_turn", 9),
                STOP,
            ]
        ),
        TEXT,
    ),
    Case("E2", "error", sse(edit(text_stream(), "message_delta", "delta.stop_reason", "error")), TEXT),
    # H: headers of a streamed response
    Case("H1", "warning", TEXT, kwargs={"headers": {"content-type": "text/event-stream"}}),
    Case(
        "H2",
        "info",
        TEXT,
        kwargs={"headers": {**SSE_HEADERS, "anthropic-ratelimit-requests-reset": "1735689600"}},
    ),
]


def case_id(case: Case) -> str:
    return f"{case.rule}-{case.severity}"


@pytest.mark.parametrize("case", STREAM_CASES, ids=[case_id(c) for c in STREAM_CASES])
def test_stream_rule(case: Case) -> None:
    findings = validate_stream(case.broken, **case.kwargs)
    assert (case.rule, case.severity) in {(f.rule, f.severity) for f in findings}, findings
    expected = (
        case.errors if case.errors is not None else ({case.rule} if case.severity == "error" else set())
    )
    assert by_severity(findings, "error") == expected, findings
    if case.valid:
        assert case.rule not in rules(validate_stream(case.valid, **case.kwargs))


@pytest.mark.parametrize(
    ("rule", "bad", "good"),
    [
        ("F5", {**SSE_HEADERS, "content-type": "application/json"}, SSE_HEADERS),
        ("H1", {"content-type": "text/event-stream"}, SSE_HEADERS),
        ("H1", {**SSE_HEADERS, "request-id": "abc"}, SSE_HEADERS),
        (
            "H2",
            {**SSE_HEADERS, "anthropic-ratelimit-tokens-reset": "1735689600"},
            {**SSE_HEADERS, "anthropic-ratelimit-tokens-reset": "2025-01-01T00:00:00Z"},
        ),
    ],
)
def test_stream_header_rules(rule: str, bad: dict[str, str], good: dict[str, str]) -> None:
    assert rule in rules(validate_stream(TEXT, REQUEST, bad))
    assert rule not in rules(validate_stream(TEXT, REQUEST, good))


def test_context_rules_need_context() -> None:
    """B5, B6, F5 and the fine-grained downgrade apply only when request or headers are given."""
    assert (
        rules(validate_stream(sse(edit(tool_stream(), 5, "content_block.name", "bash")))) & {"B5", "B6"}
        == set()
    )
    assert "F5" not in rules(validate_stream(TEXT))
    assert "F5" not in rules(validate_stream(TEXT, {**REQUEST, "stream": False}, JSON_HEADERS))
    broken = sse(bad_json_tool_stream())
    assert {(f.rule, f.severity) for f in validate_stream(broken) if f.rule == "B4"} == {("B4", "error")}


def test_server_tool_result_may_follow_a_call_from_an_earlier_turn() -> None:
    """After pause_turn the next response can carry the result of a call made in the previous one."""
    events = [
        start(),
        block_start(0, WEB_RESULT),
        block_stop(0),
        *text_block(1, "It is sunny."),
        message_delta("end_turn", 30),
        STOP,
    ]
    call = {"type": "server_tool_use", "id": SERVER_TOOL_ID, "name": "web_search", "input": {"query": "NYC"}}
    request = {**REQUEST, "messages": [*REQUEST["messages"], {"role": "assistant", "content": [call]}]}
    assert "B7" not in rules(validate_stream(sse(events), request))
    assert by_severity(validate_stream(sse(events), REQUEST), "error") == {"B7"}


def test_findings_point_at_events() -> None:
    events = [start(), *text_block(1, "Hi"), message_delta("end_turn", 3), STOP]
    (finding,) = [f for f in validate_stream(sse(events)) if f.rule == "S4"]
    assert finding.index == 1
    assert "expected 0" in finding.message


def test_stream_with_error_status_is_an_error_response() -> None:
    body = json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert validate_stream(body.encode(), REQUEST, {**JSON_HEADERS, "retry-after": "5"}, status=529) == []


def test_message_delta_usage_may_carry_cumulative_input() -> None:
    """The claudish plan says message_delta must not carry input_tokens; today's API does (M3 is info)."""
    findings = validate_stream(WEB, REQUEST, SSE_HEADERS)
    assert {(f.rule, f.severity) for f in findings if f.rule.startswith("M")} == {("M3", "info")}


@pytest.mark.parametrize(
    "stop_reason",
    [
        "end_turn",
        "max_tokens",
        "stop_sequence",
        "tool_use",
        "pause_turn",
        "refusal",
        "model_context_window_exceeded",
    ],
)
def test_seven_ga_stop_reasons(stop_reason: str) -> None:
    findings = validate_stream(sse(edit(text_stream(), "message_delta", "delta.stop_reason", stop_reason)))
    assert "M2" not in rules(findings)


def test_compaction_stop_reason_with_its_beta() -> None:
    broken = sse(edit(text_stream(), "message_delta", "delta.stop_reason", "compaction"))
    headers = {"anthropic-beta": "compact-2026-01-12"}
    assert "M2" not in rules(validate_stream(broken, request_headers=headers))


def test_error_event_first_is_an_api_error_not_a_sequence_error() -> None:
    assert by_severity(validate_stream(sse([OVERLOADED])), "error") == set()


def test_split_chunks_do_not_change_findings() -> None:
    body = sse(tool_stream()).replace(b"\n", b"\r\n")
    assert validate_stream(body, REQUEST) == validate_stream(sse(tool_stream()), REQUEST)


# Non-streaming messages -------------------------------------------------------------------------------------


def message_of(build: Callable[[], Events]) -> dict[str, Any]:
    return accumulate(build())


@pytest.mark.parametrize("name", ["text", "tool_use", "thinking", "web_search", "refusal"])
def test_valid_messages(name: str) -> None:
    message = message_of(VALID_STREAMS[name][0])
    findings = validate_message(json.dumps(message).encode(), REQUEST)
    assert by_severity(findings, "error") | by_severity(findings, "warning") == set(), findings
    assert accumulate(message_to_events(message)) == message


MESSAGE_CASES = [
    ("M1", "error", lambda m: {**m, "role": "user"}),
    ("M1", "error", lambda m: {**m, "usage": {"input_tokens": 5}}),
    ("M1", "warning", lambda m: {**m, "id": "chatcmpl-1"}),
    ("M2", "error", lambda m: {**m, "stop_reason": None}),
    ("E2", "error", lambda m: {**m, "stop_reason": "error"}),
    ("B2", "warning", lambda m: {**m, "content": [*m["content"], {"type": "hologram"}]}),
    ("B2", "error", lambda m: {**m, "content": [*m["content"], {"text": "untyped"}]}),
    ("B3", "error", lambda m: {**m, "content": [{k: v for k, v in m["content"][1].items() if k != "id"}]}),
    ("B4", "error", lambda m: {**m, "content": [{**m["content"][1], "input": '{"command": "ls"}'}]}),
    ("B5", "warning", lambda m: {**m, "content": [{**m["content"][1], "input": {}}]}),
    ("B6", "warning", lambda m: {**m, "content": [{**m["content"][1], "name": "Shell"}]}),
    ("B7", "error", lambda m: {**m, "content": [m["content"][1], m["content"][1]]}),
    (
        "B8",
        "error",
        lambda m: {**m, "content": [{"type": "thinking", "thinking": "x", "signature": ""}, *m["content"]]},
    ),
    ("M5", "error", lambda m: {**m, "content": m["content"][:1]}),
    ("M5", "warning", lambda m: {**m, "stop_reason": "end_turn"}),
    ("M6", "warning", lambda m: {**m, "stop_sequence": "END"}),
    ("M7", "warning", lambda m: {**m, "usage": {**m["usage"], "service_tier": "gold"}}),
    ("M8", "warning", lambda m: {**m, "usage": {**m["usage"], "input_tokens": 0}}),
    ("M9", "info", lambda m: {**m, "stop_details": {"type": "refusal"}}),
]


@pytest.mark.parametrize(
    ("rule", "severity", "breaks"), MESSAGE_CASES, ids=[f"{r}-{s}" for r, s, _ in MESSAGE_CASES]
)
def test_message_rule(rule: str, severity: str, breaks: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    valid = message_of(tool_stream)
    assert rule not in rules(validate_message(valid, REQUEST))
    findings = validate_message(breaks(copy.deepcopy(valid)), REQUEST)
    assert (rule, severity) in {(f.rule, f.severity) for f in findings}, findings
    assert by_severity(findings, "error") == ({rule} if severity == "error" else set()), findings


def test_message_not_json() -> None:
    assert by_severity(validate_message(b"<html>502</html>"), "error") == {"M1"}


# Error responses, headers, other endpoints ------------------------------------------------------------------

OVERLOADED_BODY = {
    "type": "error",
    "error": {"type": "overloaded_error", "message": "Overloaded"},
    "request_id": "req_018EeWyXxfu5pfWkrYcMdjWG",
}


def test_the_one_error_body_is_what_the_validators_expect() -> None:
    body = error_body("overloaded_error", "Überlastet", "req_018EeWyXxfu5pfWkrYcMdjWG")
    assert json.loads(body) == {
        **OVERLOADED_BODY,
        "error": {"type": "overloaded_error", "message": "Überlastet"},
    }
    assert "Überlastet".encode() in body  # UTF-8 as the API writes it, not \u escapes
    assert "request_id" not in json.loads(error_body("api_error", "down"))
    assert validate_error_response(529, body, {**JSON_HEADERS, "retry-after": "5"}) == []


def test_the_final_rules_judge_the_one_fold() -> None:
    """An unknown delta is carried into its block (warned, never an error) and the folded message still gets
    the final-message rules: here M5, a tool_use stop_reason with no tool call."""
    events = [
        start(),
        {"type": "content_block_start", "index": 0, "content_block": {"type": "compaction", "content": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "future_delta", "content": "x"}},
        {"type": "content_block_stop", "index": 0},
        message_delta("tool_use", 5),
        STOP,
    ]
    findings = validate_stream(sse(events), REQUEST)
    assert "B1" in by_severity(findings, "warning") and "B1" not in by_severity(findings, "error")
    assert "M5" in by_severity(findings, "error")


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (503, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_valid_error_responses(status: int, error_type: str) -> None:
    body = {**OVERLOADED_BODY, "error": {"type": error_type, "message": "..."}}
    headers = {**JSON_HEADERS, "retry-after": "5", "x-should-retry": "true"}
    assert validate_error_response(status, json.dumps(body).encode(), headers) == []


@pytest.mark.parametrize(
    ("status", "body", "headers", "rule", "severity"),
    [
        (529, b"<html>Bad gateway</html>", None, "E3", "error"),
        (529, {"error": "Overloaded"}, None, "E3", "error"),
        (529, {"type": "error", "error": {"type": "overloaded_error"}}, None, "E3", "error"),
        (429, {**OVERLOADED_BODY, "error": {"type": "api_error", "message": "x"}}, None, "E3", "error"),
        (400, {**OVERLOADED_BODY, "error": {"type": "quota_error", "message": "x"}}, None, "E3", "warning"),
        (
            429,
            {**OVERLOADED_BODY, "error": {"type": "rate_limit_error", "message": "x"}},
            JSON_HEADERS,
            "E4",
            "warning",
        ),
        (
            529,
            OVERLOADED_BODY,
            {**JSON_HEADERS, "retry-after": "1", "x-should-retry": "yes"},
            "E4",
            "warning",
        ),
        (529, OVERLOADED_BODY, {"retry-after": "1"}, "H1", "warning"),
    ],
)
def test_error_response_rules(status: int, body: Any, headers: Any, rule: str, severity: str) -> None:
    findings = validate_error_response(status, body, headers)
    assert (rule, severity) in {(f.rule, f.severity) for f in findings}, findings
    assert by_severity(findings, "error") == ({rule} if severity == "error" else set()), findings


def test_headers_as_pairs() -> None:
    pairs = [("Request-Id", "req_01"), ("Anthropic-Ratelimit-Tokens-Reset", "2025-01-01T00:00:00.5+00:00")]
    assert validate_headers(pairs) == []
    assert rules(validate_headers([("x-should-retry", "True")])) == {"H1", "E4"}


def test_forwarded_headers() -> None:
    client = [
        ("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14"),
        ("anthropic-version", "2023-06-01"),
    ]
    assert validate_forwarded_headers(client, list(reversed(client))) == []
    changed = [("anthropic-beta", "claude-code-20250219"), ("anthropic-version", "2023-06-01")]
    findings = validate_forwarded_headers(client, changed)
    assert [(f.rule, f.severity) for f in findings] == [("H3", "error")]
    assert rules(validate_forwarded_headers(client, client[:1])) == {"H3"}


@pytest.mark.parametrize(
    ("body", "severity"),
    [
        ({"input_tokens": "12"}, "error"),
        ({"tokens": 12}, "error"),
        (b"nope", "error"),
        ({"input_tokens": 12, "x": 1}, "warning"),
    ],
)
def test_count_tokens(body: Any, severity: str) -> None:
    assert validate_count_tokens(b'{"input_tokens": 2095}') == []
    findings = validate_count_tokens(body)
    assert ("C1", severity) in {(f.rule, f.severity) for f in findings}
    assert rules(findings) == {"C1"}
    assert by_severity(findings, "error") == ({"C1"} if severity == "error" else set())


MODEL_INFO = {
    "type": "model",
    "id": "claude-sonnet-4-5-20250929",
    "display_name": "Claude Sonnet 4.5",
    "created_at": "2025-09-29T00:00:00Z",
}
MODELS = {"data": [MODEL_INFO], "has_more": False, "first_id": MODEL_INFO["id"], "last_id": MODEL_INFO["id"]}


@pytest.mark.parametrize(
    ("body", "single", "severity"),
    [
        ({**MODELS, "has_more": "no"}, None, "error"),
        ({k: v for k, v in MODELS.items() if k != "last_id"}, None, "warning"),  # the SDK types it Optional
        ({"models": []}, None, "error"),
        ({**MODELS, "data": [{**MODEL_INFO, "display_name": None}]}, None, "error"),
        ({**MODELS, "data": [{**MODEL_INFO, "type": "llm"}]}, None, "error"),
        ({**MODEL_INFO, "created_at": "yesterday"}, True, "warning"),
        ({k: v for k, v in MODEL_INFO.items() if k != "id"}, True, "error"),
    ],
)
def test_models(body: Any, single: bool | None, severity: str) -> None:
    assert validate_models(MODELS) == []
    assert validate_models(MODEL_INFO) == []
    findings = validate_models(body, single=single)
    assert {(f.rule, f.severity) for f in findings} == {("D1", severity)}


# Dispatch ---------------------------------------------------------------------------------------------------


def test_dispatch_stream() -> None:
    broken = sse([start(), *text_block(1, "Hi"), message_delta("end_turn", 3), STOP])
    findings = validate_response(
        "/v1/messages?beta=true", 200, SSE_HEADERS, broken, json.dumps(REQUEST)
    )
    assert by_severity(findings, "error") == {"S4"}
    assert validate_response("/v1/messages", 200, SSE_HEADERS, TEXT, REQUEST) == [
        f for f in validate_stream(TEXT, REQUEST, SSE_HEADERS)
    ]
    assert by_severity(validate_response("/v1/messages", 200, None, TEXT), "error") == set()


def test_dispatch_message() -> None:
    body = json.dumps(message_of(tool_stream)).encode()
    request = {**REQUEST, "stream": False}
    assert (
        by_severity(validate_response("/v1/messages", 200, JSON_HEADERS, body, request), "error")
        == set()
    )
    findings = validate_response("/v1/messages", 200, JSON_HEADERS, body, REQUEST)
    assert by_severity(findings, "error") == {"F5"}
    findings = validate_response(
        "/v1/messages", 200, {"content-type": "application/json"}, body, request
    )
    assert rules(findings) == {"H1"}


def test_dispatch_other_endpoints() -> None:
    count = validate_response(
        "/v1/messages/count_tokens?beta=true", 200, JSON_HEADERS, b'{"input_tokens": 9}'
    )
    assert count == []
    bad_count = validate_response("/v1/messages/count_tokens?beta=true", 200, JSON_HEADERS, b"{}")
    assert rules(bad_count) == {"C1"}
    assert validate_response("/v1/models?limit=1000", 200, JSON_HEADERS, json.dumps(MODELS)) == []
    one = validate_response(
        f"/v1/models/{MODEL_INFO['id']}", 200, JSON_HEADERS, json.dumps(MODEL_INFO)
    )
    assert one == []
    error = validate_response("/v1/messages", 529, JSON_HEADERS, json.dumps(OVERLOADED_BODY))
    assert rules(error) == {"E4"}
    assert validate_response("/api/hello", 200, {}, b"") == []
    assert validate_response("/api/event_logging/batch", 200, {}, b"{}") == []


def test_estimated_input_usage_is_info_for_translated_streams():
    from claude_vcr.protocol import validate_stream

    def event(payload: dict) -> str:
        return f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n"

    start = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "m",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 1},
    }
    body = "".join(
        [
            event({"type": "message_start", "message": start}),
            event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}}),
            event({"type": "content_block_stop", "index": 0}),
            event(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"input_tokens": 25, "output_tokens": 3},
                }
            ),
            event({"type": "message_stop"}),
        ]
    ).encode()
    native = [f.severity for f in validate_stream(body) if f.rule == "M4"]
    translated = [f.severity for f in validate_stream(body, translated=True) if f.rule == "M4"]
    assert native == ["warning"] and translated == ["info"]
