"""What a recording says, for a person: the request in brief and the response decoded (`claude-vcr show`).

A stream is shown one SSE event per line, then the blocks the one fold (`sse.MessageFold`) builds from it,
tolerantly: a stream cut short or ending in an `error` event still shows what it carried. Stdlib only, so
`show` never imports aiohttp.

    from claude_vcr.catalog import Catalog
    from claude_vcr.describe import describe

    with Catalog.open("vcr.db") as catalog:
        print(describe(catalog.detail(catalog.resolve("3f2a9c")))["response"]["blocks"])
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from . import eventstream, providers
from .errors import BadRequestBody
from .excerpts import clip
from .headers import Headers, for_storage
from .matching import parse_json_body
from .sse import SSE_MEDIA_TYPE, BodyReader, MessageFold, SSEEvent, is_stream, iter_body_events, media_type

if TYPE_CHECKING:
    from .records import Recording

__all__ = ["describe", "describe_request", "describe_response"]

PREVIEW_CHARS = 160
EVENTS_SHOWN = 400
"""A stream's first events shown one per line; past them only its last `EVENTS_TAIL` (the count says how many
were left out): a valid stream of a million deltas is 120 MB, and `show` must stay small and quick."""
EVENTS_TAIL = 20


def _content_preview(content: Any) -> str:
    """A message's content in one line: its text, and the kinds of its other blocks."""
    if isinstance(content, str):
        return clip(content, PREVIEW_CHARS)
    if not isinstance(content, list):
        return clip(json.dumps(content), PREVIEW_CHARS)
    parts: list[str] = []
    for block in content:
        if not isinstance(block, dict):
            parts.append(clip(json.dumps(block), 40))
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            parts.append(
                f"[tool_use {block.get('name')} {json.dumps(block.get('input'), ensure_ascii=False)}]"
            )
        elif kind == "tool_result":
            inner = block.get("content")
            text = (
                inner
                if isinstance(inner, str)
                else " ".join(p.get("text", "") for p in inner or [] if isinstance(p, dict))
            )
            parts.append(f"[tool_result {block.get('tool_use_id')}: {text}]")
        else:
            parts.append(f"[{kind}]")
    return clip(" ".join(parts), PREVIEW_CHARS)


def describe_request(method: str, path: str, headers: Headers, body: bytes) -> dict[str, Any]:
    """Method, path, headers (secrets never reach the db) and a summary of a Messages-style body."""
    summary: dict[str, Any] = {
        "method": method,
        "path": path,
        "headers": for_storage(headers),
        "size": len(body),
    }
    try:
        parsed = parse_json_body(body)  # None for broken Unicode: shown as text
    except BadRequestBody:
        parsed = None
    if not isinstance(parsed, dict):
        if body:
            summary["text"] = clip(body.decode("utf-8", "replace"), 400)
        return summary
    fields: dict[str, Any] = {}
    for name, value in parsed.items():
        if name == "system":
            text = (
                value
                if isinstance(value, str)
                else " ".join(b.get("text", "") for b in value if isinstance(b, dict))
            )
            blocks = 1 if isinstance(value, str) else len(value)
            summary["system"] = {"blocks": blocks, "chars": len(text), "preview": clip(text, 100)}
        elif name == "tools" and isinstance(value, list):
            summary["tools"] = [t.get("name", t.get("type", "?")) for t in value if isinstance(t, dict)]
        elif name == "messages" and isinstance(value, list):
            summary["messages"] = [
                {"role": m.get("role"), "preview": _content_preview(m.get("content"))}
                for m in value
                if isinstance(m, dict)
            ]
        elif isinstance(value, (str, int, float, bool)) or value is None:
            fields[name] = value
        else:
            fields[name] = clip(json.dumps(value, ensure_ascii=False), 100)
    summary["fields"] = fields
    return summary


def _event_line(payload: Any, event: str | None) -> str:
    """One SSE event in one line: its type and what it adds (text, tool JSON, usage, stop reason)."""
    if not isinstance(payload, dict):
        return f"{event or '(no event)'} {clip(str(payload), 100)}"
    kind = payload.get("type", event)
    if kind == "message_start":
        message = payload.get("message") or {}
        usage = message.get("usage") or {}
        return f"message_start id={message.get('id')} model={message.get('model')} usage={json.dumps(usage)}"
    if kind == "content_block_start":
        block = payload.get("content_block") or {}
        extra = f" {block.get('name')} id={block.get('id')}" if "name" in block else ""
        return f"content_block_start [{payload.get('index')}] {block.get('type')}{extra}"
    if kind == "content_block_delta":
        delta = payload.get("delta") or {}
        dtype = delta.get("type")
        value = next(
            (delta[f] for f in ("text", "partial_json", "thinking", "signature") if f in delta), delta
        )
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else json.dumps(value)
        return f"content_block_delta [{payload.get('index')}] {dtype} {clip(shown, 120)}"
    if kind == "content_block_stop":
        return f"content_block_stop [{payload.get('index')}]"
    if kind == "message_delta":
        delta = payload.get("delta") or {}
        return (
            f"message_delta stop_reason={delta.get('stop_reason')} usage={json.dumps(payload.get('usage'))}"
        )
    if kind == "error":
        error = payload.get("error") or {}
        return f"error {error.get('type')}: {error.get('message')}"
    if kind in ("ping", "message_stop"):
        return str(kind)
    return f"{kind} {clip(json.dumps(payload), 120)}"


def _sse_line(event: SSEEvent) -> str:
    return _event_line(event.parsed if event.parsed is not None else event.data, event.event)


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Each content block with its text or tool input joined, as the SDKs hand it over."""
    shown: list[dict[str, Any]] = []
    for index, block in enumerate(message.get("content") or []):
        if not isinstance(block, dict):
            continue
        item: dict[str, Any] = {"index": index, "type": block.get("type")}
        for name in ("name", "id", "text", "thinking", "input"):
            if name in block:
                item[name] = block[name]
        shown.append(item)
    return shown


def _message_summary(message: dict[str, Any]) -> dict[str, Any]:
    """A Message's blocks and the fields a person looks for first, streamed (folded) or not."""
    return {
        "blocks": _blocks(message),
        "message": {
            k: message.get(k) for k in ("id", "model", "stop_reason", "usage") if message.get(k) is not None
        },
    }


def describe_response(
    status: int, headers: Headers, body: bytes | BodyReader, size: int | None = None
) -> dict[str, Any]:
    """Status, headers and the body decoded: SSE events one per line and the blocks they build, or JSON.
    `body` may be a reader of a large stored body (`size` bytes): an SSE stream is then read a piece at a
    time, never whole; any other body is read whole (bounded by the reader)."""
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    summary: dict[str, Any] = {
        "status": status,
        "headers": headers,
        "size": len(body) if isinstance(body, bytes) else size,
        "content_type": content_type,
    }
    framed = content_type.split(";")[0].strip().lower() == eventstream.CONTENT_TYPE
    if not isinstance(body, bytes) and (framed or media_type(headers) != SSE_MEDIA_TYPE):
        body = body.read()
    if framed:  # Bedrock's binary frames: shown as the Anthropic events they carry
        body, summary["frame_problem"] = eventstream.to_sse(body)
    if framed or not isinstance(body, bytes) or is_stream(headers, body):
        shown: list[str] = []
        tail: deque[SSEEvent] = deque(maxlen=EVENTS_TAIL)
        total = 0

        def counted(events: Iterator[SSEEvent]) -> Iterator[SSEEvent]:
            nonlocal total
            for event in events:  # one at a time: neither the events nor their lines are all kept
                total += 1
                if len(shown) < EVENTS_SHOWN:
                    shown.append(_sse_line(event))
                else:
                    tail.append(event)
                yield event

        fold = MessageFold(strict=False).feed(counted(iter_body_events(body)))
        message = fold.finish()
        summary["kind"] = "sse"
        summary["events"] = shown
        summary["events_total"] = total
        summary["events_tail"] = [_sse_line(event) for event in tail]
        summary["complete"] = not fold.faults  # cut short or ending in an error: shown as far as it goes
        summary.update(_message_summary(message))
        return summary
    try:
        parsed = json.loads(body) if body.strip() else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        parsed = None
    if parsed is not None:
        summary["kind"] = "json"
        summary["json"] = parsed
        if isinstance(parsed, dict) and parsed.get("type") == "message":
            summary.update(_message_summary(parsed))
        return summary
    try:
        summary["kind"] = "text"
        summary["text"] = clip(body.decode("utf-8"), 2000)
    except UnicodeDecodeError:
        summary["kind"] = "binary"
    return summary


def describe(detail: Recording) -> dict[str, Any]:
    """The whole of `show`: where the recording sits, its request and its response."""
    s = detail.row
    return {
        "cassette": s.cassette,
        "key": s.key,
        "short_key": s.short,
        "ordinal": s.ordinal,
        "key_scheme": detail.key_scheme,
        "created_at": s.created_at,
        "duration_ms": detail.duration_ms,
        "ttfb_ms": detail.ttfb_ms,
        "chunks": len(detail.timings),
        "provider": providers.provider_of(s.path),
        "model": s.model,
        "stream": s.stream,
        "stored_size": s.stored_size,
        "meta": detail.meta,
        "request": describe_request(s.method, s.path, detail.request_headers, detail.request_body),
        "response": describe_response(
            s.status, detail.response_headers, detail.response_source(), detail.response_bytes
        ),
    }
