"""Deliberately broken Anthropic-compatible peers: the scenario library, rewritten the way peers get it wrong.

Each `Breakage` reproduces one translation pitfall of PROTOCOL.md (P1-P23) on every scenario it applies to,
and names the rule ids `claude-vcr verify` must report for it. `EQUIVALENT` is the opposite: a correct peer
whose answers differ from the recordings only in noise (ids, chunk boundaries, ping placement, token
counts, request ids), which verify must pass. Serve one with `ScenarioUpstream(transform=...)`.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from claude_vcr.conformance.library import SSE_TYPE, Scenario
from claude_vcr.sse import encode_events

Answer = tuple[int, tuple[tuple[str, str], ...], bytes]
Events = list[dict[str, Any]]
EventRewrite = Callable[[Events], Events | bytes]


@dataclass(frozen=True)
class Breakage:
    """One broken behaviour: which pitfall, what it does, the rules verify must name, and the rewrite."""

    name: str
    pitfall: str
    what: str
    rules: frozenset[str]
    transform: Callable[[Scenario], Answer]


def exact(scenario: Scenario) -> Answer:
    return scenario.status, scenario.headers, scenario.body


def on_streams(rewrite: EventRewrite) -> Callable[[Scenario], Answer]:
    """Apply an event rewrite to SSE answers; other answers pass unchanged."""

    def transform(scenario: Scenario) -> Answer:
        if not scenario.is_sse:
            return exact(scenario)
        result = rewrite(copy.deepcopy(scenario.events))
        body = result if isinstance(result, bytes) else encode_events(result)
        return scenario.status, scenario.headers, body

    return transform


def _blocks_of(events: Events, kinds: set[str]) -> set[int]:
    """Indexes of the blocks of these types."""
    return {
        e["index"]
        for e in events
        if e["type"] == "content_block_start" and e["content_block"]["type"] in kinds
    }


# --- the pitfalls -------------------------------------------------------------------------------------------


def hard_coded_index(events: Events) -> Events:
    """P1: every content block event says index 0."""
    for event in events:
        if event["type"].startswith("content_block_"):
            event["index"] = 0
    return events


def interleaved_blocks(events: Events) -> Events:
    """P2: a new block starts while the previous one is open; every block is closed at the end."""
    stops = [e for e in events if e["type"] == "content_block_stop"]
    rest = [e for e in events if e["type"] != "content_block_stop"]
    at = next((i for i, e in enumerate(rest) if e["type"] == "message_delta"), None)
    if at is None:
        return events
    return rest[:at] + stops + rest[at:]


def done_sentinel(events: Events) -> bytes:
    """P18: `data: [DONE]` after message_stop, 'to match' a protocol that never sends it."""
    return encode_events(events) + b"data: [DONE]\n\n"


def no_pings(events: Events) -> Events:
    """P13: no ping events at all."""
    return [e for e in events if e["type"] != "ping"]


PLACEHOLDER_USAGE = {"input_tokens": 100, "output_tokens": 1}


def placeholder_usage_events(events: Events) -> Events:
    """P11: usage is a constant placeholder instead of the real counts."""
    for event in events:
        if event["type"] == "message_start":
            event["message"]["usage"] = dict(PLACEHOLDER_USAGE)
        elif event["type"] == "message_delta":
            event["usage"] = {"output_tokens": 1}
    return events


def placeholder_usage(scenario: Scenario) -> Answer:
    """P11 on streams and on non-streaming Messages."""
    if scenario.is_sse:
        return on_streams(placeholder_usage_events)(scenario)
    body = json.loads(scenario.body)
    if isinstance(body, dict) and body.get("type") == "message":
        body["usage"] = dict(PLACEHOLDER_USAGE)
        return scenario.status, scenario.headers, json.dumps(body).encode()
    return exact(scenario)


OPENAI_FINISH = {
    "end_turn": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "stop_sequence": "stop",
    "refusal": "content_filter",
}


def openai_stop_reasons(scenario: Scenario) -> Answer:
    """P8: OpenAI finish reasons passed through as stop reasons (`tool_calls`, `length`, ...)."""

    def rewrite(events: Events) -> Events:
        for event in events:
            if event["type"] == "message_delta":
                event["delta"]["stop_reason"] = OPENAI_FINISH[event["delta"]["stop_reason"]]
        return events

    if scenario.is_sse:
        return on_streams(rewrite)(scenario)
    body = json.loads(scenario.body)
    if isinstance(body, dict) and body.get("type") == "message":
        body["stop_reason"] = OPENAI_FINISH[body["stop_reason"]]
        return scenario.status, scenario.headers, json.dumps(body).encode()
    return exact(scenario)


def hard_coded_end_turn(events: Events) -> Events:
    """P8: the stop reason is always end_turn (tool calls, cuts and refusals included)."""
    for event in events:
        if event["type"] == "message_delta":
            event["delta"] = {"stop_reason": "end_turn", "stop_sequence": None}
    return events


def empty_tool_input(events: Events) -> Events:
    """P3: the tool's JSON fragments are lost on the block transition; the call arrives with input {}."""
    tools = _blocks_of(events, {"tool_use"})
    return [
        e
        for e in events
        if not (
            e["type"] == "content_block_delta"
            and e["index"] in tools
            and e["delta"]["type"] == "input_json_delta"
        )
    ]


def _disguised_stream(message: dict[str, Any], blocks: Events, text: str) -> Events:
    """A stream that ends normally with an error message as the assistant's text."""
    index = sum(1 for e in blocks if e["type"] == "content_block_start")
    return [
        {"type": "message_start", "message": message},
        *blocks,
        {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}},
        {"type": "content_block_stop", "index": index},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 9},
        },
        {"type": "message_stop"},
    ]


def errors_as_text(scenario: Scenario) -> Answer:
    """P19: an upstream error becomes assistant text and a normal end_turn, over a 200."""
    if scenario.is_sse:
        events = scenario.events
        errors = [e for e in events if e["type"] == "error"]
        if not errors:
            return exact(scenario)
        error = errors[0]["error"]
        blocks = [e for e in events[1:] if e["type"].startswith("content_block_")]
        open_blocks = {e["index"] for e in blocks if e["type"] == "content_block_start"} - {
            e["index"] for e in blocks if e["type"] == "content_block_stop"
        }
        blocks += [{"type": "content_block_stop", "index": i} for i in sorted(open_blocks)]
        text = f"[Upstream Error] {error['type']}: {error['message']}"
        return (
            scenario.status,
            scenario.headers,
            encode_events(_disguised_stream(events[0]["message"], blocks, text)),
        )
    if scenario.status < 400:
        return exact(scenario)
    error = json.loads(scenario.body)["error"]
    message = {
        "id": "msg_011CDisguisedError000000",
        "type": "message",
        "role": "assistant",
        "model": (scenario.request or {}).get("model", "claude"),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 1},
    }
    text = f"[API Error] {error['type']}: {error['message']}"
    headers = tuple((k, SSE_TYPE if k == "content-type" else v) for k, v in scenario.headers)
    return 200, headers, encode_events(_disguised_stream(message, [], text))


def duplicate_message_start(events: Events) -> Events:
    """P6: message_start is sent twice."""
    return [events[0], copy.deepcopy(events[0]), *events[1:]]


def thinking_in_text(events: Events) -> Events:
    """P5: reasoning streamed as thinking_delta into a block announced as text."""
    for index in _blocks_of(events, {"thinking"}):
        for event in events:
            if event["type"] == "content_block_start" and event["index"] == index:
                event["content_block"] = {"type": "text", "text": ""}
    return events


def dropped_signature(events: Events) -> Events:
    """P17: the thinking signature is dropped (the next turn would be a 400)."""
    return [
        e
        for e in events
        if not (e["type"] == "content_block_delta" and e["delta"]["type"] == "signature_delta")
    ]


def dropped_headers(scenario: Scenario) -> Answer:
    """P20: a pass-through that keeps only content-type (no request-id, retry-after, rate limits)."""
    return scenario.status, tuple((k, v) for k, v in scenario.headers if k == "content-type"), scenario.body


def openai_tool_ids(events: Events) -> Events:
    """P16: tool calls keep the OpenAI ids they were translated from (`call_...`)."""
    for event in events:
        block = event.get("content_block")
        if event["type"] == "content_block_start" and block["type"] == "tool_use":
            block["id"] = "call_" + hashlib.sha256(block["id"].encode()).hexdigest()[:24]
    return events


BREAKAGES: list[Breakage] = [
    Breakage(
        "hard_coded_index",
        "P1",
        "every block at index 0",
        frozenset({"S4", "V2"}),
        on_streams(hard_coded_index),
    ),
    Breakage(
        "interleaved_blocks",
        "P2",
        "blocks open at once, all closed at the end",
        frozenset({"S5", "V2"}),
        on_streams(interleaved_blocks),
    ),
    Breakage(
        "done_sentinel",
        "P18",
        "data: [DONE] after message_stop",
        frozenset({"F2"}),
        on_streams(done_sentinel),
    ),
    Breakage("no_pings", "P13", "no ping events", frozenset({"V6"}), on_streams(no_pings)),
    Breakage("placeholder_usage", "P11", "usage 100/1", frozenset({"M8", "V5"}), placeholder_usage),
    Breakage(
        "openai_stop_reasons",
        "P8",
        "stop reasons tool_calls, length, stop",
        frozenset({"M2", "V4"}),
        openai_stop_reasons,
    ),
    Breakage(
        "hard_coded_end_turn",
        "P8",
        "stop reason always end_turn",
        frozenset({"V4", "M5"}),
        on_streams(hard_coded_end_turn),
    ),
    Breakage(
        "empty_tool_input", "P3", "tool input {}", frozenset({"B5", "V3"}), on_streams(empty_tool_input)
    ),
    Breakage(
        "errors_as_text", "P19", "errors as assistant text", frozenset({"E2", "V7", "V1"}), errors_as_text
    ),
    Breakage(
        "duplicate_message_start",
        "P6",
        "message_start twice",
        frozenset({"S1"}),
        on_streams(duplicate_message_start),
    ),
    Breakage(
        "thinking_in_text",
        "P5",
        "thinking deltas in a text block",
        frozenset({"B1", "V3"}),
        on_streams(thinking_in_text),
    ),
    Breakage(
        "dropped_signature",
        "P17",
        "thinking signature dropped",
        frozenset({"B8", "V3"}),
        on_streams(dropped_signature),
    ),
    Breakage("dropped_headers", "P20", "response headers dropped", frozenset({"H1", "V9"}), dropped_headers),
    Breakage(
        "openai_tool_ids", "P16", "tool ids call_...", frozenset({"B7", "V3"}), on_streams(openai_tool_ids)
    ),
]
BY_NAME: dict[str, Breakage] = {b.name: b for b in BREAKAGES}


# --- a correct peer that differs only in noise ------------------------------------------------------------


def _fresh_id(value: str) -> str:
    """Another id with the same prefix, as a second call of the API would give."""
    prefix = value.split("_", 1)[0] + "_"
    return prefix + "01" + hashlib.sha256(("fresh/" + value).encode()).hexdigest()[:22]


def _refresh(value: Any, *, tokens: bool = True) -> Any:
    """New ids, new opaque blobs of the same length, and (with `tokens`) every non-zero token count moved."""
    if isinstance(value, dict):
        result = {}
        opaque = {"signature", "encrypted_content", "encrypted_index"}
        if value.get("type") == "redacted_thinking":
            opaque.add("data")
        for key, child in value.items():
            if key in ("id", "tool_use_id") and isinstance(child, str) and "_" in child:
                result[key] = _fresh_id(child)
            elif key in opaque and isinstance(child, str) and child:
                result[key] = hashlib.sha256(child.encode()).hexdigest()[: len(child)].ljust(len(child), "0")
            elif tokens and key.endswith("_tokens") and isinstance(child, int) and child > 0:
                result[key] = child + 7
            else:
                result[key] = _refresh(child, tokens=tokens)
        return result
    if isinstance(value, list):
        return [_refresh(child, tokens=tokens) for child in value]
    return value


def _rechunk(events: Events) -> Events:
    """Deltas joined or split differently, pings moved: the same stream to an SDK."""
    out: Events = []
    for event in events:
        if event["type"] == "ping":
            continue
        previous = out[-1] if out else None
        delta = event.get("delta") or {}
        if (
            event["type"] == "content_block_delta"
            and delta.get("type") in ("text_delta", "thinking_delta")
            and previous is not None
            and previous["type"] == "content_block_delta"
            and previous["delta"]["type"] == delta["type"]
        ):
            field = "text" if delta["type"] == "text_delta" else "thinking"
            previous["delta"][field] += delta[field]
            continue
        if (
            event["type"] == "content_block_delta"
            and delta.get("type") == "input_json_delta"
            and delta["partial_json"]
        ):
            text = delta["partial_json"]
            out += [
                {**event, "delta": {"type": "input_json_delta", "partial_json": text[i : i + 5]}}
                for i in range(0, len(text), 5)
            ]
            continue
        out.append(event)
        if event["type"] in ("message_start", "content_block_stop"):
            out.append({"type": "ping"})
    return out


def equivalent(scenario: Scenario) -> Answer:
    """Same meaning, different noise: what a correct peer (or the real API on another day) answers."""
    headers = tuple((k, _fresh_id(v) if k == "request-id" else v) for k, v in scenario.headers)
    if scenario.is_sse:
        return scenario.status, headers, encode_events(_rechunk(_refresh(scenario.events)))
    body = json.loads(scenario.body)
    if isinstance(body, dict) and body.get("type") == "error":
        body["error"]["message"] += " (please retry later)"
        body["request_id"] = dict(headers)["request-id"]
    elif isinstance(body, dict) and "input_tokens" in body:
        body["input_tokens"] += 11
    elif isinstance(body, dict) and body.get("type") == "message":
        body = _refresh(body)
    return scenario.status, headers, json.dumps(body).encode()


def fresh_ids(scenario: Scenario) -> Answer:
    """Only the values that change on every call: ids, request ids, signatures, encrypted data."""
    headers = tuple((k, _fresh_id(v) if k == "request-id" else v) for k, v in scenario.headers)
    if scenario.is_sse:
        return scenario.status, headers, encode_events(_refresh(scenario.events, tokens=False))
    body = _refresh(json.loads(scenario.body), tokens=False)
    if isinstance(body, dict) and "request_id" in body:
        body["request_id"] = dict(headers)["request-id"]
    return scenario.status, headers, json.dumps(body).encode()
