"""Validators for Anthropic Messages API responses, so recordings and proxies can be checked against it.

Rule ids (F1, S4, B8, ...) and severities follow the protocol checklist, PROTOCOL.md "Validator rules".
Unknown event, block, delta and error types are tolerated (warning or info, never error), as the API docs
ask of clients. Rules that need the request or the headers run only when those are given. The error body
every local answer (proxy, adapters) sends is built here too, in the shape E3 checks. Stdlib only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from . import eventstream, providers
from .excerpts import excerpt, quote
from .sse import (
    FOLDED_DELTAS,
    SSE_MEDIA_TYPE,
    TOOL_INPUT_BLOCKS,
    BodyReader,
    MessageFold,
    SSEEvent,
    SSEParser,
    is_stream,
    iter_body_events,
    media_type,
)

__all__ = [
    "Finding",
    "error_body",
    "validate_count_tokens",
    "validate_error_response",
    "validate_forwarded_headers",
    "validate_headers",
    "validate_message",
    "validate_models",
    "validate_response",
    "validate_stream",
]

Severity = Literal["error", "warning", "info"]
HeadersLike = Mapping[str, str] | Iterable[tuple[str, str]]
SEVERITY_LETTER = {"error": "E", "warning": "W", "info": "I"}


@dataclass(frozen=True)
class Finding:
    """One rule broken (or noted) at one place, precise enough to act on without rereading the stream."""

    rule: str
    severity: Severity
    index: int | None
    """Position of the SSE event among all events of the stream, or None for the response as a whole."""
    message: str

    def __str__(self) -> str:
        """`E S4 @3 message`: severity letter, rule, event index, message; greppable in CI logs. The one
        rendering of a finding as text (lint, verify, JUnit, the ui and the proxy's log all use it)."""
        where = "" if self.index is None else f" @{self.index}"
        return f"{SEVERITY_LETTER.get(self.severity, '?')} {self.rule}{where} {self.message}"

    def to_json(self) -> dict[str, Any]:
        """A finding for `--json` output and JUnit."""
        return {"rule": self.rule, "severity": self.severity, "index": self.index, "message": self.message}


KNOWN_EVENTS = frozenset(
    {
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
    }
)
GA_BLOCK_TYPES = frozenset(
    {
        "text",
        "thinking",
        "redacted_thinking",
        "tool_use",
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "tool_search_tool_result",
        "container_upload",
    }
)
BETA_BLOCK_TYPES = frozenset(
    {"mcp_tool_use", "mcp_tool_result", "compaction", "fallback", "advisor_tool_result"}
)
KNOWN_BLOCK_TYPES = GA_BLOCK_TYPES | BETA_BLOCK_TYPES
DELTA_BLOCKS: dict[str, frozenset[str]] = {kind: blocks for kind, (_, _, blocks) in FOLDED_DELTAS.items()}
"""Which block types each delta type may extend; the SDKs silently drop a delta sent to any other."""
DELTA_FIELDS = {kind: (name, expected) for kind, (name, expected, _) in FOLDED_DELTAS.items()}
STOP_REASONS = frozenset(
    {
        "end_turn",
        "max_tokens",
        "stop_sequence",
        "tool_use",
        "pause_turn",
        "refusal",
        "model_context_window_exceeded",
    }
)
BETA_STOP_REASONS = frozenset({"compaction"})
TRUNCATING_STOP_REASONS = frozenset({"max_tokens", "model_context_window_exceeded"})
"""Stop reasons after which a block may be left open and tool JSON cut short."""
ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "conflict_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "timeout_error",
        "overloaded_error",
    }
)
STATUS_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
"""The error type the docs pair with each status; other statuses (422, 502, 503) carry no fixed type."""
SERVICE_TIERS = frozenset({"standard", "priority", "batch"})
USAGE_INT_FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
CUMULATIVE_DELTA_FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
FINE_GRAINED_BETA = "fine-grained-tool-streaming-2025-05-14"
FORWARDED_HEADERS = ("anthropic-beta", "anthropic-version")

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_DISGUISED_ERROR = re.compile(r"\s*\[[^\]\n]{0,80}\berror\b[^\]\n]{0,80}\]", re.IGNORECASE)
"""Text like `[OpenRouter Error] ...` that a translating proxy sends instead of an error event."""


def _is_int(value: Any) -> bool:
    """JSON integers only: bool is an int subclass in Python but not a number on the wire."""
    return isinstance(value, int) and not isinstance(value, bool)


def _lower_headers(headers: HeadersLike | None) -> dict[str, str]:
    """Header names lower-cased; repeated headers joined with ', ' as HTTP allows."""
    if headers is None:
        return {}
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    result: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        result[key] = f"{result[key]}, {value}" if key in result else value
    return result


def _json_body(body: Any) -> tuple[Any, bool]:
    """A body as JSON: (value, True), or (None, False) when it is not JSON."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        body = bytes(body).decode("utf-8", errors="replace")
    if isinstance(body, str):
        try:
            return json.loads(body), True
        except ValueError:
            return None, False
    return body, True


def _betas(request_headers: HeadersLike | None) -> set[str]:
    """The `anthropic-beta` values the client asked for."""
    value = _lower_headers(request_headers).get("anthropic-beta", "")
    return {part.strip() for part in value.split(",") if part.strip()}


def _request_tools(request: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Client tools of the request by exact name."""
    tools = (request or {}).get("tools") or []
    return {
        tool["name"]: tool for tool in tools if isinstance(tool, dict) and isinstance(tool.get("name"), str)
    }


class _Findings:
    """Collects findings; keeps rule code short."""

    def __init__(self) -> None:
        self.items: list[Finding] = []

    def add(self, rule: str, severity: Severity, index: int | None, message: str) -> None:
        """Record one finding."""
        self.items.append(Finding(rule, severity, index, message))

    def error(self, rule: str, index: int | None, message: str) -> None:
        """Record an error."""
        self.add(rule, "error", index, message)

    def warning(self, rule: str, index: int | None, message: str) -> None:
        """Record a warning."""
        self.add(rule, "warning", index, message)

    def info(self, rule: str, index: int | None, message: str) -> None:
        """Record an informational note."""
        self.add(rule, "info", index, message)


# ----------------------------------------------------------------------------------------------------------
# Checks shared by streams (on the folded message) and non-streaming responses


@dataclass
class _Context:
    """What the request tells about the response, for the rules marked ctx."""

    request: Mapping[str, Any] | None = None
    betas: set[str] = field(default_factory=set)
    translated: bool = False

    @property
    def tools(self) -> dict[str, dict[str, Any]]:
        """Client tools declared by the request."""
        return _request_tools(self.request)

    def fine_grained(self, tool_name: Any) -> bool:
        """Whether the client accepted partial or invalid tool JSON (beta header or eager_input_streaming)."""
        if FINE_GRAINED_BETA in self.betas:
            return True
        tool = self.tools.get(tool_name) if isinstance(tool_name, str) else None
        return bool(tool and tool.get("eager_input_streaming"))


def _check_usage_values(out: _Findings, index: int | None, usage: Mapping[str, Any], where: str) -> None:
    """M7: token counts are non-negative ints, cache_creation adds up, service_tier is known."""
    for key in USAGE_INT_FIELDS:
        value = usage.get(key)
        if value is not None and (not _is_int(value) or value < 0):
            out.warning("M7", index, f"{where}.{key} is {value!r}, not a non-negative integer")
    breakdown = usage.get("cache_creation")
    total = usage.get("cache_creation_input_tokens")
    if isinstance(breakdown, dict) and _is_int(total):
        parts = [
            breakdown.get("ephemeral_5m_input_tokens") or 0,
            breakdown.get("ephemeral_1h_input_tokens") or 0,
        ]
        if all(_is_int(part) for part in parts) and sum(parts) != total:
            out.warning(
                "M7",
                index,
                f"{where}.cache_creation sums to {sum(parts)}, cache_creation_input_tokens is {total}",
            )
    tier = usage.get("service_tier")
    if tier is not None and tier not in SERVICE_TIERS:
        out.warning("M7", index, f"{where}.service_tier {tier!r} is not one of standard, priority, batch")


def _check_stop_reason(
    out: _Findings, index: int | None, stop_reason: Any, ctx: _Context, where: str
) -> None:
    """M2 (and E2 for the invented `error` stop reason)."""
    if stop_reason == "error":
        out.error(
            "E2", index, f'{where} stop_reason "error" disguises a failure; send an error event instead'
        )
    elif stop_reason in BETA_STOP_REASONS:
        if not any("compact" in beta or "context-management" in beta for beta in ctx.betas):
            out.warning(
                "M2", index, f"{where} stop_reason {stop_reason!r} is beta-only and no beta was asked for"
            )
    elif stop_reason not in STOP_REASONS:
        out.error("M2", index, f"{where} stop_reason {stop_reason!r} is not a known stop reason")


def _check_stop_details(out: _Findings, index: int | None, stop_reason: Any, details: Any) -> None:
    """M9: refusal details are optional, but when present they should have the SDK's shape."""
    if details is None:
        return
    if not isinstance(details, dict) or not isinstance(details.get("type"), str):
        out.info("M9", index, f"stop_details {details!r} is not an object with a type")
    elif details["type"] == "refusal":
        missing = [key for key in ("category", "explanation") if key not in details]
        if missing:
            out.info("M9", index, f"refusal stop_details lacks {', '.join(missing)}")
        if stop_reason != "refusal":
            out.info("M9", index, f"refusal stop_details with stop_reason {stop_reason!r}")


def _check_final_message(
    out: _Findings,
    message: Mapping[str, Any],
    ctx: _Context,
    where: Callable[[int], int | None],
    input_complete: Callable[[int], bool] = lambda position: True,
    at: int | None = None,
) -> None:
    """Rules on the finished message: M5, M6, M8, E2, B5, B6.

    `where` maps a block position to the index its findings carry; `at` is the index for whole-message
    findings (a stream's last message_delta).
    """
    content = [block for block in message.get("content") or [] if isinstance(block, dict)]
    stop_reason = message.get("stop_reason")
    types = [block.get("type") for block in content]

    # M5: stop_reason tool_use needs a tool call; a client tool call needs stop_reason tool_use.
    if stop_reason == "tool_use" and not TOOL_INPUT_BLOCKS.intersection(types):
        out.error("M5", at, 'stop_reason "tool_use" but the message has no tool_use block')
    if "tool_use" in types and stop_reason not in {"tool_use"} | TRUNCATING_STOP_REASONS:
        out.warning("M5", at, f"message has a tool_use block but stop_reason is {stop_reason!r}")

    # M6: stop_sequence is set exactly when a stop sequence ended the turn.
    stop_sequence = message.get("stop_sequence")
    if (stop_sequence is not None) != (stop_reason == "stop_sequence"):
        out.warning("M6", at, f"stop_sequence {stop_sequence!r} with stop_reason {stop_reason!r}")

    # M8: placeholder usage breaks Claude Code's context meter and auto-compact.
    usage = message.get("usage")
    if isinstance(usage, dict):
        counts = [usage.get(key) for key in CUMULATIVE_DELTA_FIELDS]
        if all(value is None or _is_int(value) for value in counts) and sum(v or 0 for v in counts) == 0:
            out.warning("M8", at, "usage reports no input tokens at all (input and cache counts are 0)")
        if usage.get("input_tokens") == 100 and usage.get("output_tokens") == 1:
            out.warning("M8", at, "usage is the placeholder input_tokens=100, output_tokens=1")

    # E2: an upstream failure passed off as the assistant's text.
    if stop_reason == "end_turn":
        for position, block in enumerate(content):
            text = block.get("text")
            if block.get("type") == "text" and isinstance(text, str) and _DISGUISED_ERROR.match(text):
                out.error(
                    "E2", where(position), f"text {quote(text, 60)} looks like an error passed off as content"
                )

    # B5, B6: tool calls must fit the tools the request declared.
    if ctx.request is None:
        return
    tools = ctx.tools
    for position, block in enumerate(content):
        if block.get("type") != "tool_use":
            continue
        name = block.get("name")
        if name not in tools:
            out.warning("B6", where(position), f"tool {name!r} is not among the request's tools")
            continue
        schema = tools[name].get("input_schema") or {}
        required = schema.get("required") or []
        tool_input = block.get("input")
        if isinstance(tool_input, dict) and input_complete(position):
            missing = [key for key in required if key not in tool_input]
            if missing:
                out.warning(
                    "B5", where(position), f"{name} input lacks required {', '.join(map(str, missing))}"
                )


def _earlier_server_calls(request: Mapping[str, Any] | None) -> set[str]:
    """Server tool call ids in the request's assistant turns: after pause_turn their results may follow."""
    ids: set[str] = set()
    for message in (request or {}).get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") in TOOL_INPUT_BLOCKS - {"tool_use"}:
                ids.add(block.get("id"))
    return ids


class _ToolIds:
    """B7: tool call ids are unique, carry their prefix, and results point at an earlier server call."""

    PREFIXES = {"tool_use": "toolu_", "server_tool_use": "srvtoolu_"}

    def __init__(self, out: _Findings, request: Mapping[str, Any] | None) -> None:
        self.out = out
        self.seen: set[str] = set()
        self.server_calls: set[str] = _earlier_server_calls(request)
        self.know_history = request is not None

    def block(self, index: int | None, block: Mapping[str, Any]) -> None:
        """Check one block as it starts (stream) or as it appears in the content list (message)."""
        kind = block.get("type")
        if kind in TOOL_INPUT_BLOCKS:
            tool_id = block.get("id")
            if not isinstance(tool_id, str):
                return  # B3 reports the missing id
            if tool_id in self.seen:
                self.out.error("B7", index, f"{kind} id {tool_id!r} is used twice")
            self.seen.add(tool_id)
            prefix = self.PREFIXES.get(kind)
            if prefix and not tool_id.startswith(prefix):
                self.out.warning("B7", index, f"{kind} id {tool_id!r} does not start with {prefix!r}")
            if kind != "tool_use":
                self.server_calls.add(tool_id)
        elif isinstance(kind, str) and kind.endswith("_tool_result"):
            ref = block.get("tool_use_id")
            if ref not in self.server_calls:
                # A warning even with the request in hand: after pause_turn the API carries results of calls
                # made in an earlier turn that the client need not send back (the SDK's own fixture
                # server_tool_result_response.txt is such a stream, and the SDK folds it).
                where = "this response or the request" if self.know_history else "this response"
                self.out.warning(
                    "B7", index, f"{kind}.tool_use_id {ref!r} matches no server tool call in {where}"
                )


def _check_tool_start(out: _Findings, index: int | None, block: Mapping[str, Any], streamed: bool) -> None:
    """B3: a tool call block names its id and tool; streamed, its input starts as {} and arrives in deltas."""
    kind = block.get("type")
    for key in ("id", "name"):
        if not isinstance(block.get(key), str) or not block.get(key):
            out.error("B3", index, f"{kind} block has no {key}")
    if "input" not in block:
        out.warning("B3", index, f"{kind} block has no input")
    elif streamed and block["input"] != {}:
        out.error("B3", index, f"{kind} content_block_start input is {block['input']!r}, not {{}}")
    elif not streamed and not isinstance(block["input"], dict):
        out.error("B4", index, f"{kind} input is {type(block['input']).__name__}, not an object")


def _check_message_envelope(out: _Findings, index: int | None, message: Any, streamed: bool) -> None:
    """M1: the Message object's fixed fields, as message_start or a non-streaming body carries them."""
    where = "message_start.message" if streamed else "message"
    if not isinstance(message, dict):
        out.error("M1", index, f"{where} is not an object")
        return
    msg_id = message.get("id")
    if not isinstance(msg_id, str) or not msg_id:
        out.error("M1", index, f"{where}.id is missing")
    elif not msg_id.startswith("msg_"):
        out.warning("M1", index, f"{where}.id {msg_id!r} does not start with 'msg_'")
    if message.get("type") != "message":
        out.error("M1", index, f'{where}.type is {message.get("type")!r}, not "message"')
    if message.get("role") != "assistant":
        out.error("M1", index, f'{where}.role is {message.get("role")!r}, not "assistant"')
    if not isinstance(message.get("model"), str):
        out.error("M1", index, f"{where}.model is not a string")
    content = message.get("content")
    if streamed:
        if content != []:
            out.error("M1", index, f"{where}.content is {content!r}, not []")
        for key in ("stop_reason", "stop_sequence"):
            if message.get(key) is not None:
                out.error("M1", index, f"{where}.{key} is {message[key]!r}, not null")
    elif not isinstance(content, list):
        out.error("M1", index, f"{where}.content is not a list")
    usage = message.get("usage")
    if not isinstance(usage, dict):
        out.error("M1", index, f"{where}.usage is missing")
        return
    for key in ("input_tokens", "output_tokens"):
        if not _is_int(usage.get(key)):
            out.error("M1", index, f"{where}.usage.{key} is {usage.get(key)!r}, not an integer")
    _check_usage_values(out, index, usage, f"{where}.usage")


# ----------------------------------------------------------------------------------------------------------
# Streams


@dataclass
class _Block:
    """A content block as the stream builds it, with what the block rules need to know."""

    declared: Any
    event: int
    position: int
    """Where the block sits in the folded message's content."""
    block: dict[str, Any]
    deltas: int = 0
    """How many deltas it got: counted, never kept (a valid stream may bring a million)."""
    signatures: int = 0
    last_delta: str | None = None
    json_ok: bool = True
    stopped: bool = False

    @property
    def type(self) -> Any:
        """The block's type as announced in content_block_start."""
        return self.block.get("type")


class _StreamChecker:
    """Walks the events once, keeping the state the SDK accumulators keep, and records findings."""

    def __init__(self, ctx: _Context) -> None:
        self.ctx = ctx
        self.out = _Findings()
        self.ids = _ToolIds(self.out, ctx.request)
        self.fold = MessageFold(strict=False, trailing_strings=FINE_GRAINED_BETA in ctx.betas)
        """The message the final rules judge: the one fold, fed the events these checks let through (tool JSON
        read as the SDK reads it under the request's betas)."""
        self.start_usage: dict[str, Any] = {}
        self.blocks: list[_Block] = []
        self.open: _Block | None = None
        self.deltas: list[int] = []
        self.terminal: int | None = None
        self.terminal_kind: str | None = None
        self.out_of_order_reported = False
        self.after_terminal_reported = False
        self.late: list[tuple[int, str]] = []
        """(position, type) of each event after message_stop (S10)."""

    @property
    def message(self) -> dict[str, Any] | None:
        """The folded message, None until message_start."""
        return self.fold.envelope if self.fold.started else None  # block text is joined at finish

    # Framing ----------------------------------------------------------------------------------------------

    def frame(self, index: int, event: SSEEvent) -> str | None:
        """F1, F2, F4: the event's type if the SDKs would act on it, else None."""
        if not event.terminated:
            self.out.error(
                "F1", index, "stream ends inside an event with no blank line after it; SDKs drop it"
            )
            return None
        payload = event.parsed
        if event.event is None:
            if isinstance(payload, dict):
                self.out.error("F1", index, "event has no `event:` line; SDKs drop unnamed events")
            elif event.data is not None:
                self.out.warning(
                    "F2", index, f"unnamed non-JSON data {quote(event.data, 40)}; Anthropic never sends it"
                )
            return None
        if not event.data:
            self.out.error("F1", index, f"{event.event} event has no data")
            return None
        if not isinstance(payload, dict):
            if event.data.strip() == "[DONE]":
                self.out.warning(
                    "F2", index, f"{event.event} event carries [DONE], which Anthropic never sends"
                )
            else:
                self.out.error("F1", index, f"{event.event} event data is not a JSON object")
            return None
        kind = payload.get("type")
        if not isinstance(kind, str):
            self.out.error("F1", index, f"{event.event} event data has no type")
            return None
        if kind != event.event:
            if event.event in KNOWN_EVENTS or kind in KNOWN_EVENTS:
                self.out.error("F1", index, f"event name {event.event!r} but data.type {kind!r}")
            else:
                self.out.warning("F1", index, f"event name {event.event!r} but data.type {kind!r}")
        if kind not in KNOWN_EVENTS:
            self.out.warning("F4", index, f"unknown event type {kind!r} (tolerated)")
            return None
        return kind

    # Events -----------------------------------------------------------------------------------------------

    def after_stop(self, index: int, event: SSEEvent) -> bool:
        """S10 (reported by finish): whether a named event follows message_stop; of any type (ping, a late
        block, a type unknown today) it is an error: Claude Code reads on past the stop, so a recording must
        not hide what comes after. Unnamed events, which every SDK drops, are F1/F2's business."""
        if self.terminal_kind != "message_stop" or event.event is None:
            return False
        self.late.append((index, event.type or event.event or "unnamed"))
        return True

    def event(self, index: int, kind: str, payload: dict[str, Any]) -> None:
        """S1, S2, S9 and dispatch to the handler of each event type."""
        if self.terminal is not None:
            if not self.after_terminal_reported:
                self.out.error("S2", index, f"{kind} after {self.terminal_kind} (event {self.terminal})")
                self.after_terminal_reported = True
            return
        if kind == "ping":
            if self.message is None:
                self.out.warning("S9", index, "ping before message_start")
            return
        if kind == "error":
            self.error_event(index, payload)
            return
        if kind == "message_start":
            if self.message is not None:
                self.out.error("S1", index, "second message_start")
                return
            self.message_start(index, payload)
            return
        if self.message is None and not self.out_of_order_reported:
            self.out.error("S1", index, f"{kind} before message_start")
            self.out_of_order_reported = True
        getattr(self, kind)(index, payload)

    def message_start(self, index: int, payload: dict[str, Any]) -> None:
        """M1 on the initial snapshot; keeps it as the base of the folded message."""
        message = payload.get("message")
        _check_message_envelope(self.out, index, message, streamed=True)
        self.fold.start(message)
        usage = self.fold.message.get("usage")
        self.start_usage = dict(usage) if isinstance(usage, dict) else {}

    def _after_message_delta(self, index: int, kind: str) -> None:
        """S3: block events must come before the first message_delta."""
        if self.deltas:
            self.out.error("S3", index, f"{kind} after message_delta (event {self.deltas[0]})")

    def content_block_start(self, index: int, payload: dict[str, Any]) -> None:
        """S4, S5, B2, B3, B7."""
        self._after_message_delta(index, "content_block_start")
        declared = payload.get("index")
        if not _is_int(declared):
            self.out.error("S4", index, f"content_block_start index is {declared!r}")
        elif declared != len(self.blocks):
            self.out.error("S4", index, f"content_block_start index {declared}, expected {len(self.blocks)}")
        if self.open is not None:
            self.out.error("S5", index, f"block {self.open.declared} is still open")
        block = payload.get("content_block")
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            self.out.error("B2", index, "content_block_start has no typed content_block")
            block = {}
        elif block["type"] not in KNOWN_BLOCK_TYPES:
            self.out.warning("B2", index, f"unknown content block type {block['type']!r} (tolerated)")
        if block.get("type") in {"tool_use", "server_tool_use"}:
            _check_tool_start(self.out, index, block, streamed=True)
        self.ids.block(index, block)
        position = self.fold.start_block(block)
        state = _Block(declared, index, position, self.fold.content[position])
        self.blocks.append(state)
        self.open = state

    def content_block_delta(self, index: int, payload: dict[str, Any]) -> None:
        """S6, B1, B9, and folds the delta into its block."""
        self._after_message_delta(index, "content_block_delta")
        declared = payload.get("index")
        target = self.open
        if target is None:
            self.out.error("S6", index, f"content_block_delta for index {declared!r} but no block is open")
            target = next((b for b in self.blocks if b.declared == declared and _is_int(declared)), None)
        elif declared != target.declared:
            self.out.error(
                "S6", index, f"content_block_delta index {declared!r}, open block is {target.declared}"
            )
            target = next((b for b in self.blocks if b.declared == declared and _is_int(declared)), None)
        delta = payload.get("delta")
        if not isinstance(delta, dict) or not isinstance(delta.get("type"), str):
            self.out.error("B1", index, "content_block_delta has no typed delta")
            return
        delta_type = delta["type"]
        if delta_type not in DELTA_BLOCKS:
            self.out.warning("B1", index, f"unknown delta type {delta_type!r} (tolerated)")
            return  # the SDKs drop it: the block stays as it started
        if delta_type in DELTA_FIELDS:
            name, expected = DELTA_FIELDS[delta_type]
            if not isinstance(delta.get(name), expected):
                self.out.error("B1", index, f"{delta_type}.{name} is {delta.get(name)!r}")
                return
        if target is None:
            return
        block_type = target.type
        if block_type in KNOWN_BLOCK_TYPES and block_type not in DELTA_BLOCKS[delta_type]:
            self.out.error("B1", index, f"{delta_type} sent to a {block_type} block")
            return
        if delta_type == "thinking_delta" and target.signatures:
            self.out.warning(
                "B9", index, "thinking continues after signature_delta; start a new thinking block"
            )
        target.deltas += 1
        target.signatures += delta_type == "signature_delta"
        target.last_delta = delta_type
        self.fold.delta(target.position, delta)

    def content_block_stop(self, index: int, payload: dict[str, Any]) -> None:
        """S5, S8, B8; the open block is closed even when the index is wrong, as the TS SDK does."""
        self._after_message_delta(index, "content_block_stop")
        declared = payload.get("index")
        if self.open is None:
            self.out.error("S5", index, f"content_block_stop for index {declared!r} but no block is open")
            return
        block = self.open
        if declared != block.declared:
            self.out.error(
                "S5", index, f"content_block_stop index {declared!r}, open block is {block.declared}"
            )
        block.stopped = True
        self.open = None
        if not block.deltas and block.type in {"text", "thinking"} | TOOL_INPUT_BLOCKS:
            self.out.info("S8", block.event, f"{block.type} block {block.declared} has no deltas (allowed)")
        if block.type == "thinking":
            self._check_signature(index, block)

    def _check_signature(self, index: int, block: _Block) -> None:
        """B8: one non-empty signature_delta, right before the stop; replaying without it is a 400."""
        severity: Severity = "warning" if self.ctx.translated else "error"
        count = block.signatures
        if count != 1:
            problem = f"{count} signature_delta events, expected exactly 1"
        elif block.last_delta != "signature_delta":
            problem = f"last delta is {block.last_delta}, not signature_delta"
        elif not block.block.get("signature"):
            problem = "signature is empty"
        else:
            return
        self.out.add("B8", severity, index, f"thinking block {block.declared}: {problem}")

    def message_delta(self, index: int, payload: dict[str, Any]) -> None:
        """S7, M2, M3, M4, M7, M9; folds stop fields and cumulative usage into the message."""
        delta = payload.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        stop_reason = delta.get("stop_reason")
        if self.open is not None:
            severity: Severity = "warning" if stop_reason in TRUNCATING_STOP_REASONS else "error"
            self.out.add(
                "S7",
                severity,
                index,
                f"block {self.open.declared} never stopped (stop_reason {stop_reason!r})",
            )
            self.open = None
        if not isinstance(payload.get("delta"), dict):
            self.out.error("M2", index, "message_delta has no delta object")
        elif stop_reason is not None:
            _check_stop_reason(self.out, index, stop_reason, self.ctx, "message_delta")
        _check_stop_details(self.out, index, stop_reason, delta.get("stop_details"))
        usage = payload.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        if not _is_int(usage.get("output_tokens")):
            self.out.error(
                "M2", index, f"message_delta.usage.output_tokens is {usage.get('output_tokens')!r}"
            )
        self._check_delta_usage(index, usage)
        self.deltas.append(index)
        if self.message is not None:
            self.fold.message_delta(payload)

    def _check_delta_usage(self, index: int, usage: dict[str, Any]) -> None:
        """M3 (cumulative input counts are fine), M4 (counts never shrink), M7 (types)."""
        cumulative = [
            key for key in (*CUMULATIVE_DELTA_FIELDS, "server_tool_use") if usage.get(key) is not None
        ]
        if cumulative:
            self.out.info(
                "M3", index, f"message_delta.usage carries cumulative {', '.join(cumulative)} (valid)"
            )
        _check_usage_values(self.out, index, usage, "message_delta.usage")
        folded = self.message.get("usage") if self.message is not None else None
        previous = folded if isinstance(folded, dict) else self.start_usage
        output, before = usage.get("output_tokens"), previous.get("output_tokens")
        if _is_int(output) and _is_int(before) and output < before:
            self.out.warning(
                "M4", index, f"output_tokens fell from {before} to {output}; counts are cumulative"
            )
        server_tools = usage.get("server_tool_use") is not None or any(
            block.type in TOOL_INPUT_BLOCKS - {"tool_use"} for block in self.blocks
        )
        for key in CUMULATIVE_DELTA_FIELDS:
            value, start = usage.get(key), self.start_usage.get(key)
            if not (_is_int(value) and _is_int(start)) or value == start:
                continue
            # a translating proxy can only estimate input at message_start: its estimate may be high or low
            report = self.out.info if self.ctx.translated else self.out.warning
            if value < start:
                report("M4", index, f"{key} fell from {start} to {value}; counts are cumulative")
            elif not server_tools:
                report("M4", index, f"{key} grew from {start} to {value} with no server tool use")

    def message_stop(self, index: int, payload: dict[str, Any]) -> None:
        """S3: the stop needs a message_delta before it."""
        if not self.deltas:
            self.out.error("S3", index, "message_stop without a message_delta before it")
        self.terminal, self.terminal_kind = index, "message_stop"

    def error_event(self, index: int, payload: dict[str, Any]) -> None:
        """E1: the mid-stream error shape the SDKs turn into an APIError."""
        error = payload.get("error")
        if not isinstance(error, dict):
            self.out.error("E1", index, "error event has no error object")
        else:
            kind = error.get("type")
            if not isinstance(kind, str):
                self.out.error("E1", index, "error.type is missing")
            elif kind not in ERROR_TYPES:
                self.out.warning("E1", index, f"unknown error type {kind!r} (types grow over time)")
            if not isinstance(error.get("message"), str):
                self.out.error("E1", index, "error.message is missing")
        self.terminal, self.terminal_kind = index, "error"

    # End of stream ----------------------------------------------------------------------------------------

    def finish(self) -> None:
        """S1, S2, B4 and the rules on the folded message, once every event is seen."""
        if self.terminal is None:
            self.out.error("S2", None, "stream ends without message_stop or error")
        if self.late:
            (first, kind), more = self.late[0], len(self.late) - 1
            also = f" and {more} more event(s)" if more else ""
            self.out.error("S10", first, f"{kind} after message_stop (event {self.terminal}){also}")
        if self.message is None:
            if self.terminal_kind != "error" and not self.out_of_order_reported:
                self.out.error("S1", None, "stream has no message_start")
            return
        failed = self.terminal_kind == "error"
        self.fold.finish()
        stop_reason = self.message.get("stop_reason")
        if self.deltas and stop_reason is None:
            self.out.error("M2", self.deltas[-1], "the last message_delta has no stop_reason")
        for block in self.blocks:
            if block.type in TOOL_INPUT_BLOCKS and (block.stopped or (self.deltas and not failed)):
                self._check_tool_json(block, stop_reason)
        if self.deltas and not failed:
            _check_final_message(
                self.out, self.message, self.ctx, self._block_event, self._input_complete, self.deltas[-1]
            )

    def _input_complete(self, position: int) -> bool:
        """Whether a tool block's input is final: stopped and its JSON parsed (B5 ignores the others)."""
        block = self.blocks[position] if position < len(self.blocks) else None
        return block is not None and block.stopped and block.json_ok

    def _block_event(self, position: int) -> int | None:
        """Event index of the content_block_start of the block at this position."""
        return self.blocks[position].event if position < len(self.blocks) else None

    def _check_tool_json(self, block: _Block, stop_reason: Any) -> None:
        """B4: the partial_json fragments join into one JSON object, which becomes the block's input."""
        text = self.fold.json_text.get(block.position, "")
        if not text:
            return
        block.json_ok = False
        try:
            value = json.loads(text)
        except ValueError:
            problem = f"tool input JSON does not parse: {excerpt(text, len(text), 60)}"
        else:
            if isinstance(value, dict):
                block.json_ok = True
                return
            problem = f"tool input JSON is a {type(value).__name__}, not an object"
        lenient = stop_reason in TRUNCATING_STOP_REASONS or self.ctx.fine_grained(block.block.get("name"))
        self.out.add(
            "B4", "warning" if lenient else "error", block.event, f"{block.type} {block.declared}: {problem}"
        )


def validate_stream(
    body: bytes | BodyReader,
    request: Mapping[str, Any] | None = None,
    headers: HeadersLike | None = None,
    status: int = 200,
    *,
    request_headers: HeadersLike | None = None,
    translated: bool = False,
) -> list[Finding]:
    """Findings for a streamed /v1/messages response body (SSE bytes).

    `request` is the request body (B5, B6, fine-grained tool streaming); `headers` the response headers
    (F5, H1, H2); `request_headers` the client's (anthropic-beta); `translated` marks a stream made from
    another provider's output, where B8 is only a warning.
    """
    if not 200 <= status < 300:
        return validate_error_response(status, body, headers)
    ctx = _Context(request, _betas(request_headers), translated)
    parser = SSEParser()
    checker = _StreamChecker(ctx)
    out = checker.out
    if headers is not None:
        _check_stream_content_type(out, request, _lower_headers(headers))
        out.items.extend(validate_headers(headers, status))
    comments_at = len(out.items)
    body = body if hasattr(body, "read") else bytes(body)
    for index, event in enumerate(iter_body_events(body, parser)):  # never all held at once
        late = checker.after_stop(index, event)
        kind = checker.frame(index, event)
        if kind is not None and not late:
            checker.event(index, kind, event.parsed)
    if parser.comments:
        said = f"{len(parser.comments)} SSE comment line(s) (allowed; ignored by SDKs)"
        out.items.insert(comments_at, Finding("F3", "info", None, said))
    checker.finish()
    return out.items


def _check_stream_content_type(
    out: _Findings, request: Mapping[str, Any] | None, headers: dict[str, str]
) -> None:
    """F5: a streamed response must say text/event-stream, or clients parse it as JSON."""
    if request is not None and not request.get("stream"):
        return
    if media_type(headers) != SSE_MEDIA_TYPE:
        content_type = headers.get("content-type", "")
        out.error("F5", None, f"streamed response has Content-Type {content_type!r}, not text/event-stream")


# ----------------------------------------------------------------------------------------------------------
# Non-streaming bodies, errors, headers, other endpoints


def validate_message(
    json_body: Any,
    request: Mapping[str, Any] | None = None,
    *,
    request_headers: HeadersLike | None = None,
) -> list[Finding]:
    """Findings for a non-streaming /v1/messages 2xx body (bytes, str or parsed JSON)."""
    out = _Findings()
    message, ok = _json_body(json_body)
    if not ok:
        out.error("M1", None, "body is not JSON")
        return out.items
    ctx = _Context(request, _betas(request_headers))
    _check_message_envelope(out, None, message, streamed=False)
    if not isinstance(message, dict):
        return out.items
    _check_stop_reason(out, None, message.get("stop_reason"), ctx, "message")
    _check_stop_details(out, None, message.get("stop_reason"), message.get("stop_details"))
    content = message.get("content") if isinstance(message.get("content"), list) else []
    ids = _ToolIds(out, request)
    for position, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            out.error("B2", None, f"content[{position}] has no type")
            continue
        kind = block["type"]
        if kind not in KNOWN_BLOCK_TYPES:
            out.warning("B2", None, f"content[{position}] has unknown type {kind!r} (tolerated)")
        if kind in {"tool_use", "server_tool_use"}:
            _check_tool_start(out, None, block, streamed=False)
        ids.block(None, block)
        if kind == "thinking" and not block.get("signature"):
            out.error("B8", None, f"content[{position}] thinking block has no signature")
    _check_final_message(out, message, ctx, lambda position: None)
    return out.items


def error_body(error_type: str, message: str, request_id: str | None = None) -> bytes:
    """The error body Anthropic answers with (E3's shape), so SDKs and Claude Code show the message instead
    of a parse failure; `request_id` repeats the request-id header in the body, as the API does."""
    body: dict[str, Any] = {"type": "error", "error": {"type": error_type, "message": message}}
    if request_id:
        body["request_id"] = request_id
    return json.dumps(body, ensure_ascii=False).encode()


def validate_error_response(status: int, body: Any, headers: HeadersLike | None = None) -> list[Finding]:
    """E3, E4 and header rules for a non-2xx response."""
    out = _Findings()
    payload, ok = _json_body(body)
    if not ok or not isinstance(payload, dict):
        out.error("E3", None, f"HTTP {status} body is not a JSON object")
    else:
        error = payload.get("error")
        if payload.get("type") != "error":
            out.error("E3", None, f'HTTP {status} body type is {payload.get("type")!r}, not "error"')
        if not isinstance(error, dict) or not isinstance(error.get("type"), str):
            out.error("E3", None, f"HTTP {status} body has no error.type")
        else:
            kind = error["type"]
            if not isinstance(error.get("message"), str):
                out.error("E3", None, f"HTTP {status} body has no error.message")
            expected = STATUS_ERROR_TYPES.get(status)
            if kind not in ERROR_TYPES:
                out.warning("E3", None, f"unknown error type {kind!r} (types grow over time)")
            elif expected is not None and kind != expected:
                out.error("E3", None, f"HTTP {status} carries {kind!r}, the docs pair it with {expected!r}")
    if headers is not None:
        out.items.extend(validate_headers(headers, status))
    return out.items


def validate_headers(headers: HeadersLike, status: int = 200) -> list[Finding]:
    """H1, H2 and E4: what Anthropic's response headers promise clients and their retry logic."""
    out = _Findings()
    lowered = _lower_headers(headers)
    request_id = lowered.get("request-id")
    if request_id is None:
        out.warning("H1", None, "no request-id header")
    elif not request_id.startswith("req_"):
        out.warning("H1", None, f"request-id {request_id!r} does not start with 'req_'")
    for name, value in lowered.items():
        if (
            name.startswith("anthropic-ratelimit-")
            and name.endswith("-reset")
            and not _RFC3339.fullmatch(value)
        ):
            out.info("H2", None, f"{name} {value!r} is not an RFC 3339 time")
    if status in (429, 529) and "retry-after" not in lowered and "retry-after-ms" not in lowered:
        out.warning("E4", None, f"HTTP {status} without retry-after or retry-after-ms")
    should_retry = lowered.get("x-should-retry")
    if should_retry is not None and should_retry not in ("true", "false"):
        out.warning("E4", None, f"x-should-retry is {should_retry!r}; the SDKs only read 'true' or 'false'")
    return out.items


def validate_forwarded_headers(client_headers: HeadersLike, upstream_headers: HeadersLike) -> list[Finding]:
    """H3: a gateway passes anthropic-beta and anthropic-version upstream byte for byte."""
    out = _Findings()
    client, upstream = _lower_headers(client_headers), _lower_headers(upstream_headers)
    for name in FORWARDED_HEADERS:
        if client.get(name) != upstream.get(name):
            out.error("H3", None, f"{name} sent as {client.get(name)!r}, forwarded as {upstream.get(name)!r}")
    return out.items


def validate_count_tokens(body: Any) -> list[Finding]:
    """C1: count_tokens answers `{"input_tokens": int}`."""
    out = _Findings()
    payload, ok = _json_body(body)
    if not ok or not isinstance(payload, dict):
        out.error("C1", None, "count_tokens body is not a JSON object")
        return out.items
    value = payload.get("input_tokens")
    if not _is_int(value) or value < 0:
        out.error("C1", None, f"count_tokens input_tokens is {value!r}, not a non-negative integer")
    extra = sorted(set(payload) - {"input_tokens"})
    if extra:
        out.warning("C1", None, f"count_tokens body has extra keys {', '.join(extra)}")
    return out.items


def _check_model_info(out: _Findings, model: Any, where: str) -> None:
    """D1 for one ModelInfo."""
    if not isinstance(model, dict):
        out.error("D1", None, f"{where} is not an object")
        return
    if model.get("type") != "model":
        out.error("D1", None, f'{where}.type is {model.get("type")!r}, not "model"')
    for key in ("id", "display_name", "created_at"):
        if not isinstance(model.get(key), str):
            out.error("D1", None, f"{where}.{key} is not a string")
    created = model.get("created_at")
    if isinstance(created, str) and not _RFC3339.fullmatch(created):
        out.warning("D1", None, f"{where}.created_at {created!r} is not RFC 3339")


def validate_models(body: Any, single: bool | None = None) -> list[Finding]:
    """D1: /v1/models list envelope, or one ModelInfo from /v1/models/{id} (`single`, guessed when None)."""
    out = _Findings()
    payload, ok = _json_body(body)
    if not ok or not isinstance(payload, dict):
        out.error("D1", None, "models body is not a JSON object")
        return out.items
    if single is None:
        single = "data" not in payload and payload.get("type") == "model"
    if single:
        _check_model_info(out, payload, "model")
        return out.items
    data = payload.get("data")
    if not isinstance(data, list):
        out.error("D1", None, "models list has no data array")
        return out.items
    # the SDK's SyncPage types has_more, first_id and last_id Optional (default None): missing is a warning
    envelope = (
        ("has_more", bool, "a boolean"),
        ("first_id", str, "a string/null"),
        ("last_id", str, "a string/null"),
    )
    for key, kind, name in envelope:
        if key not in payload:
            out.warning("D1", None, f"models list has no {key}")
        elif not (isinstance(payload[key], kind) or (payload[key] is None and kind is str)):
            out.error("D1", None, f"models list {key} is not {name}")
    for position, model in enumerate(data):
        _check_model_info(out, model, f"data[{position}]")
    return out.items


def validate_response(
    path: str,
    status: int,
    headers: HeadersLike | None,
    body: Any,
    request_body: Any = None,
    *,
    request_headers: HeadersLike | None = None,
    translated: bool = False,
) -> list[Finding]:
    """Every rule that applies to one recorded exchange, chosen by path and Content-Type; [] elsewhere."""
    route = path.split("?", 1)[0].rstrip("/")
    request, ok = _json_body(request_body)
    request = request if ok and isinstance(request, dict) else None
    lowered = _lower_headers(headers)
    if providers.provider_of(route) != "anthropic":
        return _validate_cloud_response(route, status, lowered, body, request, request_headers)
    anthropic = route.endswith(("/v1/messages", "/v1/messages/count_tokens")) or "/v1/models" in route
    if not anthropic or status < 200 or 300 <= status < 400:
        return []
    if status >= 400:
        return validate_error_response(status, body, headers)
    header_findings = validate_headers(lowered, status) if headers is not None else []
    if route.endswith("/v1/messages/count_tokens"):
        return validate_count_tokens(body) + header_findings
    if "/v1/models" in route:
        single = route.rsplit("/v1/models", 1)[1] != ""
        return validate_models(body, single=single) + header_findings
    raw = body.encode() if isinstance(body, str) else body
    streamed = (request or {}).get("stream") is True
    reader = hasattr(raw, "read")  # a large stored stream, decompressed as it is read
    if reader or isinstance(raw, (bytes, bytearray, memoryview)) and is_stream(lowered, raw):
        return validate_stream(
            raw if reader else bytes(raw),
            request,
            headers,
            status,
            request_headers=request_headers,
            translated=translated,
        )
    findings = validate_message(body, request, request_headers=request_headers)
    if streamed and headers is not None:
        findings.append(
            Finding(
                "F5", "error", None, f"stream:true request answered with Content-Type {media_type(lowered)!r}"
            )
        )
    return findings + header_findings


def validate_event_stream(
    body: bytes, request: Mapping[str, Any] | None, request_headers: HeadersLike | None = None
) -> list[Finding]:
    """A1 on Bedrock's binary frames (whole, CRCs right, each a readable chunk), then every stream rule on
    the Anthropic events they carry."""
    sse_bytes, problem = eventstream.to_sse(body)
    findings = [Finding("A1", "error", None, problem)] if problem else []
    streamed_request = {**(request or {}), "stream": True}
    return findings + validate_stream(sse_bytes, streamed_request, None, 200, request_headers=request_headers)


def _validate_cloud_response(
    route: str,
    status: int,
    lowered: dict[str, str],
    body: Any,
    request: Mapping[str, Any] | None,
    request_headers: HeadersLike | None,
) -> list[Finding]:
    """Bedrock InvokeModel and Vertex rawPredict: the Messages rules on what they carry (the model is in
    the path, so the request body names none); their control-plane calls and errors get none."""
    if not 200 <= status < 300:
        return []
    stream = providers.wants_stream_from_path(route)
    if stream is None:
        if route.endswith("count-tokens:rawPredict"):
            return validate_count_tokens(body)
        return []
    raw = body.encode() if isinstance(body, str) else bytes(body or b"")
    if media_type(lowered) == eventstream.CONTENT_TYPE or (
        stream and providers.provider_of(route) == "bedrock"
    ):
        return validate_event_stream(raw, request, request_headers)
    if is_stream(lowered, raw):
        return validate_stream(
            raw, {**(request or {}), "stream": True}, None, status, request_headers=request_headers
        )
    return validate_message(body, request, request_headers=request_headers)
