"""Server-Sent Events as the Anthropic Messages API streams them: parse, write, fold into a Message, unfold.

The one fold (`MessageFold`, behind `accumulate`) and the one "is this a stream?" test (`is_stream`) serve
replay conversion, `show`, `fixture`, `lint`, `verify` and the validators. Stdlib only, so the proxy, the
validators and the CLI can import it without aiohttp.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import ClaudeVCRError

__all__ = [
    "MessageFold",
    "SSEEvent",
    "SSEParser",
    "StreamError",
    "accumulate",
    "encode_event",
    "encode_events",
    "is_stream",
    "iter_sse",
    "media_type",
    "message_to_events",
    "message_to_sse",
    "parse_partial_json",
    "parse_sse",
    "sdk_payloads",
]

TOOL_INPUT_BLOCKS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})
"""Block types whose `input` the SDKs rebuild from `input_json_delta` fragments."""

_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched SSE event; `parsed` is the decoded `data` so callers need not re-parse it."""

    event: str | None
    """The `event:` field, None when the event had none (SDKs drop such events)."""
    data: str | None
    """The `data:` lines joined with `\\n`; None when there was no `data:` line at all."""
    parsed: Any = None
    """`data` decoded as JSON, or None when it is absent or not JSON."""
    id: str | None = None
    retry: int | None = None
    terminated: bool = True
    """False for an event cut off at end of input without its blank line: the SDKs never see it."""

    @property
    def type(self) -> str | None:
        """The payload's `type`, which is what the SDKs dispatch on once the event is named."""
        if isinstance(self.parsed, dict) and isinstance(self.parsed.get("type"), str):
            return self.parsed["type"]
        return None


class SSEParser:
    """Incremental SSE parser: feed bytes as they arrive, get every event completed so far.

    Follows the WHATWG event-stream rules (lines end in CRLF, LF or CR; `:` starts a comment; one leading
    space after the colon is dropped) but, like the Anthropic SDKs, also dispatches events that have an
    `event:` field and no `data:`, so validators can see them.
    """

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        """Bytes of the current line not yet terminated, kept as pieces so long lines cost O(n)."""
        self._skip_lf = False
        self._started = False
        self._event: str | None = None
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None
        self._has_fields = False
        self.comments: list[str] = []
        """Comment lines seen so far, without the leading colon."""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume one chunk; an incomplete trailing line waits in the buffer for the next chunk."""
        if not chunk:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        if b"\n" not in chunk and b"\r" not in chunk:
            if chunk:
                self._pieces.append(chunk)
            return []
        buffer = b"".join([*self._pieces, chunk])
        events: list[SSEEvent] = []
        start = 0
        for match in _LINE_END.finditer(buffer):
            if match.group() == b"\r" and match.end() == len(buffer):
                self._skip_lf = True  # a CRLF may be split across chunks
            event = self._line(buffer[start : match.start()])
            if event is not None:
                events.append(event)
            start = match.end()
        self._pieces = [buffer[start:]] if start < len(buffer) else []
        return events

    def close(self) -> list[SSEEvent]:
        """End of input: an unterminated last line and event are dispatched, marked `terminated=False`."""
        events: list[SSEEvent] = []
        if self._pieces:
            line, self._pieces = b"".join(self._pieces), []
            self._line(line)
        if self._has_fields:
            events.append(self._dispatch(terminated=False))
        return events

    @property
    def pending(self) -> bool:
        """True while bytes or fields of an unfinished event are held back."""
        return bool(self._pieces) or self._has_fields

    def _line(self, raw: bytes) -> SSEEvent | None:
        """Apply one line; a blank line completes the event being built."""
        if not self._started:
            self._started = True
            if raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
        line = raw.decode("utf-8", errors="replace")
        if not line:
            return self._dispatch(terminated=True) if self._has_fields else None
        if line.startswith(":"):
            self.comments.append(line[1:].removeprefix(" "))
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                self._retry = int(value)
        else:
            return None  # unknown fields are ignored and do not start an event
        self._has_fields = True
        return None

    def _dispatch(self, *, terminated: bool) -> SSEEvent:
        """Build the event from the fields collected and reset for the next one (the id persists)."""
        data = "\n".join(self._data) if self._data else None
        parsed = None
        if data:
            try:
                parsed = json.loads(data)
            except ValueError:
                parsed = None
        event = SSEEvent(self._event, data, parsed, self._id, self._retry, terminated)
        self._event, self._data, self._retry, self._has_fields = None, [], None, False
        return event


def parse_sse(body: bytes) -> list[SSEEvent]:
    """Every event of a complete SSE body, including a last one that lacks its blank line."""
    parser = SSEParser()
    return parser.feed(body) + parser.close()


def iter_sse(chunks: Iterable[bytes]) -> Iterator[SSEEvent]:
    """Events from an iterable of byte chunks, as soon as each is complete."""
    parser = SSEParser()
    for chunk in chunks:
        yield from parser.feed(chunk)
    yield from parser.close()


BODY_SLICE = 1024 * 1024
"""How much of a stored body `iter_body_events` hands the parser at a time."""


def iter_body_events(body: bytes | BodyReader, parser: SSEParser | None = None) -> Iterator[SSEEvent]:
    """The events of a complete SSE body one at a time, parsed a slice at a time: a stream of a million
    events is never held as a million event objects (`parse_sse` is for bodies known to be small). `body`
    may be a reader (a large stored body decompressed as it is read): then not even the body is held whole.
    Pass `parser` to read what it gathers on the way (its comments)."""
    parser = parser or SSEParser()
    if isinstance(body, (bytes, bytearray, memoryview)):
        for start in range(0, len(body), BODY_SLICE):
            yield from parser.feed(bytes(body[start : start + BODY_SLICE]))
    else:
        while piece := body.read(BODY_SLICE):
            yield from parser.feed(piece)
    yield from parser.close()


class BodyReader(Protocol):
    """A body read a piece at a time (`Recording.response_reader()`: bounded by the row's recorded size)."""

    def read(self, size: int = -1, /) -> bytes: ...


def _dumps(value: Any) -> str:
    """JSON as Anthropic writes it on the wire: no spaces, UTF-8 left unescaped."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def encode_event(payload: dict[str, Any] | SSEEvent, event: str | None = None) -> bytes:
    """One event in Anthropic's framing, `event: X\\ndata: {json}\\n\\n`; an SSEEvent keeps its data text."""
    if isinstance(payload, SSEEvent):
        name = payload.event if event is None else event
        lines = [] if name is None else [f"event: {name}"]
        if payload.data is not None:
            lines.extend(f"data: {part}" for part in payload.data.split("\n"))
        return ("\n".join(lines) + "\n\n").encode()
    name = payload.get("type") if event is None else event
    return f"event: {name}\ndata: {_dumps(payload)}\n\n".encode()


def encode_events(events: Iterable[dict[str, Any] | SSEEvent]) -> bytes:
    """A whole SSE body from payload dicts or parsed events."""
    return b"".join(encode_event(event) for event in events)


class StreamError(ClaudeVCRError, ValueError):
    """The stream carried an `error` event; the SDKs raise an API error at that point too."""

    def __init__(self, error: Any) -> None:
        self.error = error
        super().__init__(f"stream error event: {_dumps(error)}")


def sdk_payloads(events: Iterable[dict[str, Any] | SSEEvent]) -> Iterator[dict[str, Any]]:
    """Payload dicts of the events the SDKs act on: named, terminated, with a JSON object as data."""
    for event in events:
        if isinstance(event, SSEEvent):
            if event.event is None or not event.terminated or not isinstance(event.parsed, dict):
                continue
            yield event.parsed
        else:
            yield event


_MESSAGE_EVENTS = frozenset(
    {"message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta"}
)
FOLDED_DELTAS: dict[str, tuple[str, type | tuple[type, ...], frozenset[str]]] = {
    "text_delta": ("text", str, frozenset({"text"})),
    "citations_delta": ("citation", dict, frozenset({"text"})),
    "input_json_delta": ("partial_json", str, TOOL_INPUT_BLOCKS),
    "thinking_delta": ("thinking", str, frozenset({"thinking"})),
    "signature_delta": ("signature", str, frozenset({"thinking"})),
    "compaction_delta": ("content", (str, type(None)), frozenset({"compaction"})),
}
"""Delta types the SDKs fold: the field each carries, its JSON type, and the block types it may extend.
Any other delta type is dropped, as the SDKs drop it (the block stays as it started)."""
DELTA_USAGE_FIELDS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "server_tool_use",
    "output_tokens_details",
    "iterations",
    "fallback_credit",
)
"""The optional cumulative usage fields a message_delta overwrites when not null (the beta SDK's list)."""
DELTA_MESSAGE_FIELDS = ("context_management", "input_transformations")
"""Top-level message_delta fields that replace the message's own when not null."""


PIECES_JOINED = 4096
"""Deltas a fold keeps as separate strings before joining them: a million one-word deltas would otherwise be
a million string objects (50 MB) until the fold is read."""


class _Pieces:
    """A block's text as its deltas bring it: joined every `PIECES_JOINED` deltas (memory), whole only when
    the fold is read (time: never a join per delta)."""

    __slots__ = ("joined", "fresh")

    def __init__(self) -> None:
        self.joined: list[str] = []
        self.fresh: list[str] = []

    def add(self, value: str) -> None:
        self.fresh.append(value)
        if len(self.fresh) == PIECES_JOINED:
            self.joined.append("".join(self.fresh))
            self.fresh = []

    def text(self) -> str:
        return "".join(self.joined) + "".join(self.fresh)


def _pieces_of(where: dict[Any, _Pieces], key: Any) -> _Pieces:
    found = where.get(key)
    if found is None:
        found = where[key] = _Pieces()
    return found


class MessageFold:
    """A stream folded into the Message it stands for, event by event, equal to the official Python SDK's beta
    `accumulate_event` (tests/test_fold_sdk.py checks it against the installed SDK, field for field).

    The one fold behind replay conversion, `show`, `fixture`, `lint`, `verify` and the validators. Strict (the
    default) raises where the SDKs raise: StreamError on an `error` event, ValueError on an event before
    `message_start`, a delta for a block that never started, or tool JSON that is invalid (not just cut
    short). Not strict, it records each of those in `faults` and folds what is there, so a broken stream
    still shows its blocks. As in the SDK: unknown events and unknown delta types change nothing, unknown
    block types and unknown message fields are carried through as they arrived, a `fallback` block relabels
    the message's `model` to the model it fell back to. `trailing_strings` is the SDK's reading of tool JSON
    under the `fine-grained-tool-streaming-2025-05-14` beta: a string cut short is kept, not dropped.
    """

    def __init__(self, *, strict: bool = True, trailing_strings: bool = False) -> None:
        self.strict = strict
        self.trailing_strings = trailing_strings
        self.started = False
        """Whether `message_start` has arrived."""
        self._message: dict[str, Any] = {"content": []}
        self._json_text: dict[int, str] = {}
        self._pieces: dict[tuple[int, str], _Pieces] = {}
        """Text and thinking deltas not yet joined into their block, by (position, field): joined once when
        the fold is read, so a stream of a million deltas folds in linear time (appending to a string a dict
        holds copies it every time)."""
        self._json_pieces: dict[int, _Pieces] = {}
        self.incomplete_input: set[int] = set()
        """Positions of tool blocks whose joined JSON is not a whole value (cut short or invalid)."""
        self.error: Any = None
        """The `error` event's error object, when the stream carried one."""
        self.faults: list[str] = []
        """What strict mode would have raised for, in order."""
        self._fault_set: set[str] = set()

    @property
    def message(self) -> dict[str, Any]:
        """The message folded so far (deltas joined into their blocks)."""
        self._join()
        return self._message

    @property
    def content(self) -> list[Any]:
        return self.message["content"]

    @property
    def envelope(self) -> dict[str, Any]:
        """The message folded so far without joining pending deltas into block text: for per-event checks
        of its fields (usage, stop reason), which must not cost a join per event."""
        return self._message

    @property
    def json_text(self) -> dict[int, str]:
        """The joined `partial_json` of each tool block, by its position in the content."""
        for index, pieces in self._json_pieces.items():
            self._json_text[index] = self._json_text.get(index, "") + pieces.text()
        self._json_pieces = {}
        return self._json_text

    def _join(self) -> None:
        if not self._pieces:
            return
        content = self._message["content"]
        for (index, name), pieces in self._pieces.items():
            block = content[index]
            block[name] = (block.get(name) or "") + pieces.text()
        self._pieces = {}

    def feed(self, events: Iterable[dict[str, Any] | SSEEvent]) -> MessageFold:
        """Fold every event the SDKs act on (parsed SSE events or payload dicts); returns the fold."""
        for payload in sdk_payloads(events):
            self.add(payload)
        return self

    def add(self, payload: dict[str, Any]) -> None:
        """Fold one event payload; pings and unknown events change nothing."""
        kind = payload.get("type")
        if kind == "error":
            self.error = payload.get("error")
            if self.strict:
                raise StreamError(self.error)
            self.faults.append(f"stream error event: {_dumps(self.error)}")
            return
        if kind not in _MESSAGE_EVENTS:
            return
        if kind == "message_start":
            if not self.started:
                self.start(payload.get("message"))
            return
        if not self.started:
            self._fault(f'Unexpected event order, got {kind} before "message_start"')
        if kind == "content_block_start":
            self.start_block(payload.get("content_block"))
        elif kind == "content_block_delta":
            self.delta(payload.get("index"), payload.get("delta"))
        elif kind == "message_delta":
            self.message_delta(payload)

    def start(self, message: Any) -> None:
        """The message_start snapshot becomes the message; blocks a broken stream started before it stay."""
        snapshot = copy.deepcopy(message) if isinstance(message, dict) else {}
        content = snapshot.get("content")
        snapshot["content"] = [*(content if isinstance(content, list) else []), *self.content]
        self._message = snapshot
        self.started = True

    def start_block(self, block: Any) -> int:
        """Append a content_block_start's block (a copy, as started); returns its position. A `fallback`
        block names the model that served the rest of the answer: the message takes its name, as in the SDK."""
        content = self._message["content"]
        content.append(copy.deepcopy(block) if isinstance(block, dict) else {})
        if isinstance(block, dict) and block.get("type") == "fallback":
            target = block.get("to")
            if isinstance(target, dict) and "model" in target:
                self._message["model"] = target["model"]
        return len(content) - 1

    def delta(self, index: Any, delta: Any) -> None:
        """Fold one content_block_delta into the block at `index`; an unknown delta, or a known one that does
        not fit the block (or lacks its field), is ignored, as the SDKs ignore it."""
        content = self._message["content"]
        if type(index) is not int or not 0 <= index < len(content) or not isinstance(content[index], dict):
            self._fault(f"content_block_delta for block {index!r}, which never started")
            return
        if not isinstance(delta, dict):
            return
        block = content[index]
        delta_type = delta.get("type")
        if delta_type not in FOLDED_DELTAS:
            return
        name, expected, block_types = FOLDED_DELTAS[delta_type]
        value = delta.get(name)
        if block.get("type") not in block_types or not isinstance(value, expected):
            return
        if delta_type == "input_json_delta":
            _pieces_of(self._json_pieces, index).add(value)
        elif delta_type == "citations_delta":
            citations = block.get("citations")
            if not isinstance(citations, list):
                citations = block["citations"] = list(citations or [])
            citations.append(copy.deepcopy(value))
        elif delta_type == "signature_delta":
            block["signature"] = value
        elif delta_type == "compaction_delta":
            block["content"] = value  # the SDK replaces both, each None when the delta lacks it
            block["encrypted_content"] = copy.deepcopy(delta.get("encrypted_content"))
        else:
            _pieces_of(self._pieces, (index, name)).add(value)

    def message_delta(self, payload: dict[str, Any]) -> None:
        """Stop fields and usage from a message_delta, as the SDK sets them: stop_reason, stop_sequence and
        stop_details always (null when absent), container, context_management and input_transformations when
        not null; usage values are cumulative, so they replace, never add: output_tokens always, the fields
        of DELTA_USAGE_FIELDS when not null, nothing else."""
        message = self.message
        delta = payload.get("delta") if isinstance(payload.get("delta"), dict) else {}
        message["stop_reason"] = delta.get("stop_reason")
        message["stop_sequence"] = delta.get("stop_sequence")
        message["stop_details"] = copy.deepcopy(delta.get("stop_details"))
        if delta.get("container") is not None:
            message["container"] = copy.deepcopy(delta["container"])
        for key in DELTA_MESSAGE_FIELDS:
            if payload.get(key) is not None:
                message[key] = copy.deepcopy(payload[key])
        usage = payload.get("usage") if isinstance(payload.get("usage"), dict) else {}
        target = message.get("usage")
        if not isinstance(target, dict):
            target = message["usage"] = {}
        target["output_tokens"] = usage.get("output_tokens")
        for key in DELTA_USAGE_FIELDS:
            if usage.get(key) is not None:
                target[key] = copy.deepcopy(usage[key])

    def finish(self) -> dict[str, Any]:
        """The Message: tool input parsed from its joined JSON, partially when cut short (as the SDKs show a
        call still streaming); not strict, JSON that does not parse at all is kept as its text."""
        if not self.started:
            self._fault("stream ended without a message_start event")
        for index, text in self.json_text.items():
            if not text:
                continue
            block = self.content[index]
            try:
                block["input"] = json.loads(text)
                self.incomplete_input.discard(index)
                continue
            except ValueError:
                self.incomplete_input.add(index)
            try:
                block["input"] = parse_partial_json(text, trailing_strings=self.trailing_strings)
            except ValueError as exc:
                self._fault(f"Unable to parse tool parameter JSON: {exc}. JSON: {text}")
                block["input"] = text
        return self.message

    def _fault(self, problem: str) -> None:
        """Strict: raise where the SDKs raise. Not strict: note it and carry on."""
        if self.strict:
            raise ValueError(problem)
        if problem not in self._fault_set:  # a set beside the list: a million faults stay linear
            self._fault_set.add(problem)
            self.faults.append(problem)


FINE_GRAINED_TOOL_STREAMING = "fine-grained-tool-streaming-2025-05-14"


def accumulate(
    events: Iterable[dict[str, Any] | SSEEvent], request_headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The final Message a complete stream stands for, folded strictly (see MessageFold); the request's
    `anthropic-beta` header decides how cut-short tool JSON reads, as it does in the SDK."""
    beta = next((v for k, v in (request_headers or {}).items() if k.lower() == "anthropic-beta"), "")
    return MessageFold(trailing_strings=FINE_GRAINED_TOOL_STREAMING in beta).feed(events).finish()


SSE_MEDIA_TYPE = "text/event-stream"


def media_type(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> str:
    """The Content-Type without its parameters, lower-cased; '' when there is none."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers or []
    value = next((v for k, v in pairs if k.lower() == "content-type"), "")
    return value.split(";")[0].strip().lower()


def is_stream(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None, body: bytes) -> bool:
    """Whether a response body is SSE: by its Content-Type, or by its first bytes when it has none."""
    kind = media_type(headers)
    if kind:
        return kind == SSE_MEDIA_TYPE
    return bytes(body).lstrip().startswith((b"event:", b"data:", b":"))


def message_to_events(message: dict[str, Any], *, ping: bool = True) -> list[dict[str, Any]]:
    """The event payloads a streaming response would have carried for a non-streaming Message.

    `accumulate(message_to_events(m)) == m` (and the SDK accumulates them to `m` too); tool input travels
    as one `input_json_delta` of its JSON text, thinking as one `thinking_delta` then its `signature_delta`,
    a compaction as one `compaction_delta`, other blocks whole in their start.
    """
    start = copy.deepcopy(message)
    start["content"] = []
    start["stop_reason"] = None
    start["stop_sequence"] = None
    if "stop_details" in start:
        start["stop_details"] = None
    fallback = next(
        (b for b in message.get("content") or [] if isinstance(b, dict) and b.get("type") == "fallback"), None
    )
    if fallback is not None and isinstance(fallback.get("from"), dict) and "model" in fallback["from"]:
        start["model"] = fallback["from"]["model"]  # the stream starts on the model it later falls back from
    usage = copy.deepcopy(message.get("usage") or {})
    final_output = usage.get("output_tokens", 0)
    if isinstance(final_output, int):
        usage["output_tokens"] = min(final_output, 1)
    start["usage"] = usage

    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    if ping:
        events.append({"type": "ping"})
    for index, block in enumerate(message.get("content") or []):
        events.extend(_block_events(index, block))

    delta: dict[str, Any] = {
        "stop_reason": message.get("stop_reason"),
        "stop_sequence": message.get("stop_sequence"),
    }
    if "stop_details" in message:
        delta["stop_details"] = copy.deepcopy(message["stop_details"])
    if message.get("container") is not None:
        delta["container"] = copy.deepcopy(message["container"])
    final_usage = message.get("usage") or {}
    delta_usage: dict[str, Any] = {"output_tokens": final_output}
    for key in DELTA_USAGE_FIELDS:
        if final_usage.get(key) is not None:
            delta_usage[key] = copy.deepcopy(final_usage[key])
    message_delta: dict[str, Any] = {"type": "message_delta", "delta": delta, "usage": delta_usage}
    for key in DELTA_MESSAGE_FIELDS:
        if message.get(key) is not None:
            message_delta[key] = copy.deepcopy(message[key])
    events.append(message_delta)
    events.append({"type": "message_stop"})
    return events


def _block_events(index: int, block: dict[str, Any]) -> list[dict[str, Any]]:
    """content_block_start, its deltas and content_block_stop for one finished block."""
    block_type = block.get("type")
    start = copy.deepcopy(block)
    deltas: list[dict[str, Any]] = []
    if block_type == "text":
        start["text"] = ""
        citations = block.get("citations")
        if citations:
            start["citations"] = []
            deltas.extend({"type": "citations_delta", "citation": copy.deepcopy(c)} for c in citations)
        if block.get("text"):
            deltas.append({"type": "text_delta", "text": block["text"]})
    elif block_type == "thinking":
        start["thinking"] = ""
        if "signature" in block:
            start["signature"] = ""
        if block.get("thinking"):
            deltas.append({"type": "thinking_delta", "thinking": block["thinking"]})
        if "signature" in block:
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif block_type == "compaction" and ("content" in block or "encrypted_content" in block):
        start["content"] = start["encrypted_content"] = None
        deltas.append(
            {
                "type": "compaction_delta",
                "content": block.get("content"),
                "encrypted_content": block.get("encrypted_content"),
            }
        )
    elif block_type in TOOL_INPUT_BLOCKS and "input" in block:
        start["input"] = {}
        deltas.append({"type": "input_json_delta", "partial_json": _dumps(block["input"])})
    events: list[dict[str, Any]] = [{"type": "content_block_start", "index": index, "content_block": start}]
    events.extend({"type": "content_block_delta", "index": index, "delta": d} for d in deltas)
    events.append({"type": "content_block_stop", "index": index})
    return events


def message_to_sse(message: dict[str, Any], *, ping: bool = True) -> bytes:
    """A non-streaming Message as the SSE body a streaming request would have received."""
    return encode_events(message_to_events(message, ping=ping))


# Partial JSON, as the SDKs read tool input while it streams (jiter's partial mode): containers cut short are
# closed, a trailing incomplete string, literal, number or key is dropped, text after a complete value is
# ignored, and anything else invalid is an error.

_NUMBER_PREFIX = re.compile(r"-?\d*(?:\.\d*)?(?:[eE][+-]?\d*)?")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_LITERALS = {"true": True, "false": False, "null": None}


class _Incomplete(Exception):
    """The text ended inside a value that cannot be shown partially (string, literal, number)."""


def parse_partial_json(text: str, *, trailing_strings: bool = False) -> Any:
    """Parse JSON that may be cut off, the way the SDKs expose tool input mid-stream (jiter's partial mode;
    `trailing_strings` is its "trailing-strings" mode: a value string cut short is kept as far as it goes)."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    pos = _WHITESPACE.match(text, 0).end()
    if pos == len(text):
        raise ValueError("no JSON value")
    try:
        value, _, _ = _partial_value(text, pos, trailing_strings)
    except _Incomplete:
        raise ValueError("JSON ended inside its only value") from None
    return value  # like jiter's partial mode, text after a complete value is ignored


def _partial_value(text: str, pos: int, trailing: bool = False) -> tuple[Any, int, bool]:
    """One value from `pos`: (value, end, complete); raises _Incomplete or ValueError. `trailing`: a string
    value cut short is returned as far as it goes, incomplete."""
    char = text[pos]
    if char == "{":
        return _partial_object(text, pos + 1, trailing)
    if char == "[":
        return _partial_array(text, pos + 1, trailing)
    if char == '"':
        try:
            return _partial_string(text, pos)
        except _Incomplete:
            if not trailing:
                raise
            return _string_prefix(text[pos + 1 :]), len(text), False
    for word, value in _LITERALS.items():
        if text.startswith(word, pos):
            return value, pos + len(word), True
        if len(text) - pos < len(word) and word.startswith(text[pos:]):
            raise _Incomplete
    prefix = _NUMBER_PREFIX.match(text, pos)
    if prefix.end() > pos:
        number = _NUMBER.fullmatch(text, pos, prefix.end())
        if number is None:
            if prefix.end() == len(text):
                raise _Incomplete
            raise ValueError(f"invalid number at offset {pos}")
        return json.loads(number.group()), prefix.end(), True
    raise ValueError(f"unexpected {char!r} at offset {pos}")


def _partial_string(text: str, pos: int) -> tuple[str, int, bool]:
    """A string from its opening quote; one with no closing quote yet is _Incomplete."""
    end = pos + 1
    while True:
        end = text.find('"', end)
        if end < 0:
            raise _Incomplete
        backslashes = 0
        while text[end - 1 - backslashes] == "\\":
            backslashes += 1
        if backslashes % 2 == 0:
            break
        end += 1
    value, after = json.decoder.scanstring(text, pos + 1)
    return value, after, True


def _string_prefix(content: str) -> str:
    """The text of a string cut short, an escape cut in half left out."""
    for cut in range(min(len(content), 6) + 1):
        try:
            return json.loads(f'"{content[: len(content) - cut]}"')
        except ValueError:
            continue
    raise ValueError("invalid string escape")


def _skip(text: str, pos: int) -> int:
    """Position after any JSON whitespace."""
    return _WHITESPACE.match(text, pos).end()


def _partial_items(
    text: str, pos: int, close: str, item: Callable[[str, int], tuple[Any, int, bool]]
) -> tuple[list[Any], int, bool]:
    """The items of an array or object after its opening bracket, up to `close`; stops, incomplete, at the end
    of the text, where an item that has not begun its value is dropped."""
    items: list[Any] = []
    pos = _skip(text, pos)
    if pos < len(text) and text[pos] == close:
        return items, pos + 1, True
    while True:
        if pos == len(text):
            return items, pos, False
        try:
            value, pos, complete = item(text, pos)
        except _Incomplete:
            return items, len(text), False
        items.append(value)
        if not complete:
            return items, pos, False
        pos = _skip(text, pos)
        if pos == len(text):
            return items, pos, False
        if text[pos] == close:
            return items, pos + 1, True
        if text[pos] != ",":
            raise ValueError(f"expected ',' or '{close}' at offset {pos}")
        pos = _skip(text, pos + 1)


def _member(text: str, pos: int, trailing: bool = False) -> tuple[tuple[str, Any], int, bool]:
    """One `"key": value` of an object; _Incomplete when the text ends before its value begins."""
    if text[pos] != '"':
        raise ValueError(f"expected a key at offset {pos}")
    key, pos, _ = _partial_string(text, pos)
    pos = _skip(text, pos)
    if pos == len(text):
        raise _Incomplete
    if text[pos] != ":":
        raise ValueError(f"expected ':' at offset {pos}")
    pos = _skip(text, pos + 1)
    if pos == len(text):
        raise _Incomplete
    value, pos, complete = _partial_value(text, pos, trailing)
    return (key, value), pos, complete


def _partial_array(text: str, pos: int, trailing: bool = False) -> tuple[list[Any], int, bool]:
    """Array items after `[`."""
    return _partial_items(text, pos, "]", lambda t, p: _partial_value(t, p, trailing))


def _partial_object(text: str, pos: int, trailing: bool = False) -> tuple[dict[str, Any], int, bool]:
    """Object members after `{`; a member without a complete value is dropped at the end of the text."""
    members, pos, complete = _partial_items(text, pos, "}", lambda t, p: _member(t, p, trailing))
    return dict(members), pos, complete


def ends_with_error(body: bytes) -> bool:
    """Whether a stream's last event is `error`: a 200 that failed midway, never a complete answer."""
    tail = body[-8192:].rstrip()
    start = max(tail.rfind(b"\nevent:"), tail.rfind(b"\revent:"))
    last = tail[start + 1 :] if start >= 0 else tail
    return last.startswith(b"event:") and last[6:].lstrip(b" ").startswith(b"error")
