"""What a recording means, without its noise: normalised fixtures and the semantic view `verify` compares.

Two recordings of the same exchange differ in ids, signatures, dates, chunk boundaries and pings; a
fixture and a view keep only what a client acts on (PROTOCOL.md "Fixture normalisation"):

- ids become numbered placeholders that keep their prefix and their cross-references: the first `toolu_...`
  seen is `toolu_1` wherever it appears (a tool_use in the history, the tool_result that answers it);
- signatures and encrypted data become `<SIGNATURE len=N>` / `<ENCRYPTED len=N>`;
- headers: secrets are never present (they are not stored either), volatile ones are dropped or shown as
  `<VOLATILE>`, `request-id` is an id like the others;
- streams are read the way the SDKs fold them: pings dropped, deltas joined per block, tool JSON parsed.

Stdlib only (plus vcr.sse and vcr.headers), so `claude-vcr fixture` never imports aiohttp.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from . import eventstream, providers
from .headers import is_secret
from .sse import TOOL_INPUT_BLOCKS, MessageFold, is_stream, parse_sse, sdk_payloads

if TYPE_CHECKING:
    from .records import Recording

__all__ = [
    "FIXTURE_VERSION",
    "IdMap",
    "build_fixture",
    "fixture_json",
    "normalise_headers",
    "normalise_json",
    "semantic_view",
]

FIXTURE_VERSION = 1
ID_KEYS = frozenset({"id", "tool_use_id", "request_id", "tool_call_id", "file_id"})
"""JSON keys whose string values are ids (when they look like one: `prefix_` then 4+ characters)."""
_ID = re.compile(r"^([a-z][a-z0-9]*_)[A-Za-z0-9_\-]{4,}$")
SIGNATURE_KEYS = frozenset({"signature"})
ENCRYPTED_KEYS = frozenset({"encrypted_content", "encrypted_index"})
USER_ID_PLACEHOLDER = "<USER_ID>"
VOLATILE = "<VOLATILE>"
REQUEST_HEADERS_KEPT = frozenset({"anthropic-beta", "anthropic-version", "content-type"})
"""Request headers that change the answer; the rest (user agent, SDK telemetry) are client noise."""
RESPONSE_HEADERS_KEPT = frozenset(
    {"content-type", "request-id", "retry-after", "retry-after-ms", "x-should-retry"}
)
"""Response headers a client acts on; anthropic-ratelimit-* are kept too (their counters as <VOLATILE>)."""
VOLATILE_HEADERS = frozenset({"retry-after", "retry-after-ms"})
MEANINGFUL_HEADERS = ("request-id", "retry-after", "retry-after-ms", "x-should-retry")
"""Headers whose presence `verify` compares (a peer that drops them breaks SDK retries and bug reports)."""
USAGE_COUNTS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def signature_placeholder(value: str) -> str:
    """A signature's length is all a fixture may say about it: the bytes are opaque and change every call."""
    return f"<SIGNATURE len={len(value)}>"


def encrypted_placeholder(value: str) -> str:
    """Encrypted search results, citation indexes and redacted thinking: opaque, length only."""
    return f"<ENCRYPTED len={len(value)}>"


class IdMap:
    """Ids to stable numbered placeholders per prefix (`toolu_1`, `toolu_2`, `msg_1`), in first-seen order."""

    def __init__(self) -> None:
        self.placeholders: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def get(self, value: str) -> str:
        """The placeholder of an id (assigned now if new); anything that does not look like an id is kept."""
        known = self.placeholders.get(value)
        if known is not None:
            return known
        match = _ID.match(value)
        if not match:
            return value
        prefix = match.group(1)
        self._counts[prefix] = self._counts.get(prefix, 0) + 1
        placeholder = f"{prefix}{self._counts[prefix]}"
        self.placeholders[value] = placeholder
        return placeholder

    def collect(self, value: Any) -> None:
        """Number every id in a JSON value, walking it in document order."""
        if isinstance(value, dict):
            for key, child in value.items():
                if key in ID_KEYS and isinstance(child, str):
                    self.get(child)
                else:
                    self.collect(child)
        elif isinstance(value, list):
            for child in value:
                self.collect(child)

    def rewrite(self, text: str) -> str:
        """Known ids inside free text (an error message quoting a request id) replaced too."""
        if text in self.placeholders:
            return self.placeholders[text]
        for original in sorted(self.placeholders, key=len, reverse=True):
            if original in text:
                text = text.replace(original, self.placeholders[original])
        return text


def normalise_json(value: Any, ids: IdMap, *, top: bool = True) -> Any:
    """A copy of a JSON value with ids, signatures, encrypted data and metadata.user_id normalised."""
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        redacted = value.get("type") == "redacted_thinking"
        for key, child in value.items():
            if isinstance(child, str) and child:
                if key in ID_KEYS:
                    result[key] = ids.get(child)
                    continue
                if key in SIGNATURE_KEYS:
                    result[key] = signature_placeholder(child)
                    continue
                if key in ENCRYPTED_KEYS or (redacted and key == "data"):
                    result[key] = encrypted_placeholder(child)
                    continue
            if top and key == "metadata" and isinstance(child, dict) and "user_id" in child:
                result[key] = {**normalise_json(child, ids, top=False), "user_id": USER_ID_PLACEHOLDER}
                continue
            result[key] = normalise_json(child, ids, top=False)
        return result
    if isinstance(value, list):
        return [normalise_json(child, ids, top=False) for child in value]
    if isinstance(value, str):
        return ids.rewrite(value)
    return value


def _pairs(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Header pairs from a mapping or a list."""
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)


def normalise_headers(
    headers: Mapping[str, str] | Iterable[tuple[str, str]], ids: IdMap, *, response: bool
) -> dict[str, str]:
    """The headers a fixture keeps, lower-cased: no secrets, no dates or edge-server noise, stable values."""
    kept = RESPONSE_HEADERS_KEPT if response else REQUEST_HEADERS_KEPT
    result: dict[str, str] = {}
    for name, value in _pairs(headers):
        lowered = name.lower()
        ratelimit = response and lowered.startswith("anthropic-ratelimit-")
        if is_secret(lowered) or not (lowered in kept or ratelimit):
            continue
        if lowered == "request-id":
            value = ids.get(value)
        elif lowered in VOLATILE_HEADERS or (ratelimit and lowered.endswith(("-remaining", "-reset"))):
            value = VOLATILE
        result[lowered] = value
    return dict(sorted(result.items()))


def _lower(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> dict[str, str]:
    """Lower-cased header names; the first value wins."""
    result: dict[str, str] = {}
    for name, value in _pairs(headers or []):
        result.setdefault(name.lower(), value)
    return result


def _json(body: bytes) -> tuple[Any, bool]:
    """A body as JSON, and whether it was JSON."""
    if not body.strip():
        return None, False
    try:
        return json.loads(body), True
    except (ValueError, UnicodeDecodeError):
        return None, False


# --- the semantic view ----------------------------------------------------------------------------------


def _block_view(
    index: int, block: dict[str, Any], ids: IdMap, *, input_complete: bool = True
) -> dict[str, Any]:
    """One content block as a client reads it: text joined, tool input parsed, opaque data by length."""
    kind = block.get("type")
    item: dict[str, Any] = {"index": index, "type": kind}
    if kind == "text":
        item["text"] = block.get("text") or ""
        if block.get("citations"):
            item["citations"] = normalise_json(block["citations"], ids, top=False)
    elif kind == "thinking":
        item["thinking"] = block.get("thinking") or ""
        signature = block.get("signature")
        item["signature"] = (
            signature_placeholder(signature) if isinstance(signature, str) and signature else None
        )
    elif kind == "redacted_thinking":
        data = block.get("data")
        item["data"] = encrypted_placeholder(data) if isinstance(data, str) else None
    elif kind in TOOL_INPUT_BLOCKS:
        item["id"] = ids.get(block["id"]) if isinstance(block.get("id"), str) else block.get("id")
        item["name"] = block.get("name")
        item["input"] = normalise_json(block.get("input"), ids, top=False)
        if not input_complete:
            item["input_complete"] = False  # cut short (max_tokens): what the SDKs showed of it
    else:
        rest = {key: value for key, value in block.items() if key != "type"}
        item.update(normalise_json(rest, ids, top=False))
    return item


def _usage_view(usage: Any) -> tuple[dict[str, Any], list[str]]:
    """Token counts (for sanity checks) and the names of every usage field present."""
    if not isinstance(usage, dict):
        return {}, []
    counts = {key: usage[key] for key in USAGE_COUNTS if key in usage}
    return counts, sorted(usage)


def _stream_view(body: bytes, ids: IdMap) -> dict[str, Any]:
    """A stream folded like the SDKs' accumulator, tolerantly: a broken stream still yields its blocks."""
    shape: list[str] = []
    event_types: list[str] = []
    pings = 0
    fold = MessageFold(strict=False)
    for payload in sdk_payloads(parse_sse(body)):
        fold.add(payload)
        kind = payload.get("type")
        if kind == "ping":
            pings += 1
            continue
        event_types.append(str(kind))
        index = payload.get("index")
        if kind in ("message_start", "message_delta"):
            shape.append(kind)
        elif kind == "content_block_start":
            block = payload.get("content_block")
            shape.append(f"start[{index}]:{block.get('type') if isinstance(block, dict) else None}")
        elif kind == "content_block_delta":
            delta = payload.get("delta") if isinstance(payload.get("delta"), dict) else {}
            entry = f"delta[{index}]:{delta.get('type')}"
            if not shape or shape[-1] != entry:
                shape.append(entry)
        elif kind == "content_block_stop":
            shape.append(f"stop[{index}]")
        elif kind == "error":
            shape.append(f"error:{(fold.error if isinstance(fold.error, dict) else {}).get('type')}")
        else:
            shape.append(str(kind))
    message = fold.finish()
    view: dict[str, Any] = {
        "kind": "sse",
        "shape": shape,
        "event_types": event_types,
        "pings": pings,
        **_message_view(message, ids, fold.incomplete_input),
    }
    if fold.error is not None:
        view["error"] = {"type": fold.error.get("type") if isinstance(fold.error, dict) else None}
    return view


def _message_view(
    message: dict[str, Any], ids: IdMap, incomplete_input: set[int] = frozenset()
) -> dict[str, Any]:
    """A Message, streamed (folded) or not, as a client reads it."""
    content = [block for block in message.get("content") or [] if isinstance(block, dict)]
    counts, fields = _usage_view(message.get("usage"))
    return {
        "id": ids.get(message["id"]) if isinstance(message.get("id"), str) else None,
        "blocks": [
            _block_view(i, block, ids, input_complete=i not in incomplete_input)
            for i, block in enumerate(content)
        ],
        "stop_reason": message.get("stop_reason"),
        "stop_sequence": message.get("stop_sequence"),
        "usage": counts,
        "usage_fields": fields,
    }


def semantic_view(
    path: str,
    status: int,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
    body: bytes,
    ids: IdMap | None = None,
) -> dict[str, Any]:
    """What a response means to a client: the same for two correct answers that differ only in noise.
    Bedrock's binary event stream is read as the Anthropic events its frames carry (`framing` says so), so
    two streams framed differently but carrying the same events mean the same."""
    ids = ids if ids is not None else IdMap()
    lowered = _lower(headers)
    view: dict[str, Any] = {
        "status": status,
        "headers": [name for name in MEANINGFUL_HEADERS if name in lowered],
    }
    if eventstream.is_framed(list(lowered.items())):
        events, _ = eventstream.to_sse(bytes(body))  # a damaged frame is the validators' finding (A1)
        view.update(_stream_view(events, ids), framing="eventstream")
        return view
    if is_stream(headers, body):
        view.update(_stream_view(body, ids))
        return view
    payload, ok = _json(body)
    if not ok:
        view.update({"kind": "raw", "size": len(body)})
        return view
    view["kind"] = "json"
    route = path.split("?", 1)[0].rstrip("/")
    if isinstance(payload, dict) and payload.get("type") == "error":
        err = payload.get("error") if isinstance(payload.get("error"), dict) else {}
        view["error"] = {"type": err.get("type")}
    elif isinstance(payload, dict) and payload.get("type") == "message":
        view.update(_message_view(payload, ids))
    elif providers.counts_tokens(route) and isinstance(payload, dict):
        view["json"] = {"input_tokens": payload.get("input_tokens")}
    else:
        view["json"] = normalise_json(payload, ids, top=False)
    return view


# --- fixtures -------------------------------------------------------------------------------------------

ASSERTION_KEYS = (
    "status",
    "kind",
    "event_types",
    "blocks",
    "stop_reason",
    "stop_sequence",
    "usage_fields",
    "error",
    "json",
    "headers",
)


def _normalised_events(body: bytes, ids: IdMap) -> list[Any]:
    """Every SSE event of a stream (pings included, as recorded), payloads normalised."""
    events: list[Any] = []
    for event in parse_sse(body):
        payload = event.parsed
        if isinstance(payload, dict) and event.event == payload.get("type") and event.terminated:
            events.append(normalise_json(payload, ids, top=False))
        else:
            data = normalise_json(payload, ids, top=False) if payload is not None else event.data
            events.append({"event": event.event, "data": data, "terminated": event.terminated})
    return events


def build_fixture(detail: Recording) -> dict[str, Any]:
    """A recording as a deterministic, secret-free fixture: the normalised exchange plus its assertions."""
    row = detail.row
    ids = IdMap()
    request_json, request_is_json = _json(detail.request_body)
    framed = eventstream.is_framed(list(detail.response_headers))
    body = eventstream.to_sse(detail.response_body)[0] if framed else detail.response_body
    stream = framed or is_stream(detail.response_headers, body)
    response_json, response_is_json = (None, False) if stream else _json(body)
    if request_is_json:
        ids.collect(request_json)
    for name, value in detail.response_headers:
        if name.lower() == "request-id":
            ids.get(value)
    if stream:
        for event in parse_sse(body):
            ids.collect(event.parsed)
    elif response_is_json:
        ids.collect(response_json)

    request: dict[str, Any] = {
        "method": row.method,
        "path": row.path,
        "headers": normalise_headers(detail.request_headers, ids, response=False),
    }
    if request_is_json:
        request["body"] = normalise_json(request_json, ids)
    elif detail.request_body:
        request["body_text"] = ids.rewrite(detail.request_body.decode("utf-8", "replace"))
    response: dict[str, Any] = {
        "status": row.status,
        "headers": normalise_headers(detail.response_headers, ids, response=True),
    }
    if framed:  # Bedrock's binary frames: the Anthropic events they carry
        response["framing"] = "eventstream"
    if stream:
        response["events"] = _normalised_events(body, ids)
    elif response_is_json:
        response["body"] = normalise_json(response_json, ids, top=False)
    elif detail.response_body:
        response["body_text"] = ids.rewrite(detail.response_body.decode("utf-8", "replace"))
    view = semantic_view(row.path, row.status, detail.response_headers, detail.response_body, ids)
    assertions = {key: view[key] for key in ASSERTION_KEYS if key in view}
    return {
        "fixture_version": FIXTURE_VERSION,
        "cassette": row.cassette,
        "key": row.key,
        "ordinal": row.ordinal,
        "model": row.model,
        "stream": row.stream,
        "request": request,
        "response": response,
        "assertions": assertions,
    }


def fixture_json(fixture: dict[str, Any]) -> str:
    """The one text form of a fixture: sorted keys, two-space indent, UTF-8 kept, a final newline."""
    return json.dumps(fixture, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
