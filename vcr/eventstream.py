"""AWS event-stream frames (`application/vnd.amazon.eventstream`), as Bedrock streams Claude's events.

A frame: total length and headers length (4 bytes each, big-endian), the CRC32 of those 8 bytes, the
headers, the payload, and the CRC32 of everything before it. Bedrock's `chunk` events carry
`{"bytes": base64(one Anthropic stream event as JSON)}`. Decoding never raises on bad bytes: what it
could not read is described in `Decoded.problem`.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from dataclasses import dataclass, field
from typing import Any

CONTENT_TYPE = "application/vnd.amazon.eventstream"
PRELUDE = 12
MAX_FRAME = 16 * 1024 * 1024
"""The largest frame AWS sends (16 MiB); a longer length field means the bytes are not a frame."""

HeaderValue = str | bytes | int | bool


@dataclass
class Frame:
    """One decoded message: its headers and its payload."""

    headers: dict[str, HeaderValue]
    payload: bytes
    offset: int = 0
    """Where the frame starts in the bytes it was decoded from."""

    @property
    def message_type(self) -> str:
        return str(self.headers.get(":message-type", ""))

    @property
    def event_type(self) -> str:
        return str(self.headers.get(":event-type") or self.headers.get(":exception-type") or "")


@dataclass
class Decoded:
    """The frames read from some bytes, and what stopped the reading if it did not reach the end."""

    frames: list[Frame] = field(default_factory=list)
    problem: str | None = None
    """One line: `bad prelude CRC at byte 0`, `truncated frame at byte 140 (needs 200, has 60)`..."""


def _read_headers(data: bytes, at: int) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    end = len(data)
    while at < end:
        size = data[at]
        name = data[at + 1 : at + 1 + size].decode("utf-8")
        at += 1 + size
        kind = data[at]
        at += 1
        value: HeaderValue
        if kind in (0, 1):
            value = kind == 0
        elif kind == 2:
            value = struct.unpack_from(">b", data, at)[0]
            at += 1
        elif kind == 3:
            value = struct.unpack_from(">h", data, at)[0]
            at += 2
        elif kind == 4:
            value = struct.unpack_from(">i", data, at)[0]
            at += 4
        elif kind in (5, 8):
            value = struct.unpack_from(">q", data, at)[0]
            at += 8
        elif kind in (6, 7):
            (length,) = struct.unpack_from(">H", data, at)
            raw = data[at + 2 : at + 2 + length]
            if len(raw) != length:
                raise ValueError("header value runs past the headers")
            value = raw.decode("utf-8") if kind == 7 else raw
            at += 2 + length
        elif kind == 9:
            value = data[at : at + 16]
            at += 16
        else:
            raise ValueError(f"unknown header type {kind}")
        if at > end:
            raise ValueError("header runs past the headers")
        headers[name] = value
    return headers


def decode(data: bytes) -> Decoded:
    """Every whole frame in `data`, CRCs checked; stops at the first bad or cut-off frame and says why."""
    out = Decoded()
    at = 0
    while at < len(data):
        if len(data) - at < PRELUDE:
            out.problem = f"truncated frame at byte {at} ({len(data) - at} bytes, shorter than a prelude)"
            return out
        total, headers_length, prelude_crc = struct.unpack_from(">III", data, at)
        if binascii.crc32(data[at : at + 8]) != prelude_crc:
            out.problem = f"bad prelude CRC at byte {at}"
            return out
        if total < PRELUDE + 4 + headers_length or total > MAX_FRAME:
            out.problem = f"impossible frame length {total} at byte {at}"
            return out
        if len(data) - at < total:
            out.problem = f"truncated frame at byte {at} (needs {total} bytes, has {len(data) - at})"
            return out
        (message_crc,) = struct.unpack_from(">I", data, at + total - 4)
        if binascii.crc32(data[at : at + total - 4]) != message_crc:
            out.problem = f"bad message CRC in the frame at byte {at}"
            return out
        try:
            headers = _read_headers(data[at + PRELUDE : at + PRELUDE + headers_length], 0)
        except (ValueError, IndexError, struct.error, UnicodeDecodeError) as error:
            out.problem = f"unreadable headers in the frame at byte {at}: {error}"
            return out
        payload = data[at + PRELUDE + headers_length : at + total - 4]
        out.frames.append(Frame(headers, payload, at))
        at += total
    return out


def frame_lengths(data: bytes) -> list[int]:
    """The byte length of each whole frame at the start of `data` (prelude-checked only), for splitting a stream."""
    lengths = []
    at = 0
    while len(data) - at >= PRELUDE:
        total, _, prelude_crc = struct.unpack_from(">III", data, at)
        if binascii.crc32(data[at : at + 8]) != prelude_crc or total < PRELUDE + 4 or len(data) - at < total:
            break
        lengths.append(total)
        at += total
    return lengths


def _encode_header(name: str, value: HeaderValue) -> bytes:
    raw_name = name.encode("utf-8")
    head = struct.pack(">B", len(raw_name)) + raw_name
    if isinstance(value, bool):
        return head + struct.pack(">B", 0 if value else 1)
    if isinstance(value, int):
        return head + struct.pack(">Bi", 4, value)
    if isinstance(value, bytes):
        return head + struct.pack(">BH", 6, len(value)) + value
    raw = value.encode("utf-8")
    return head + struct.pack(">BH", 7, len(raw)) + raw


def encode(headers: dict[str, HeaderValue], payload: bytes) -> bytes:
    """One frame with both CRCs."""
    raw_headers = b"".join(_encode_header(name, value) for name, value in headers.items())
    total = PRELUDE + len(raw_headers) + len(payload) + 4
    prelude = struct.pack(">II", total, len(raw_headers))
    prelude += struct.pack(">I", binascii.crc32(prelude))
    body = prelude + raw_headers + payload
    return body + struct.pack(">I", binascii.crc32(body))


def chunk_frame(event: dict[str, Any]) -> bytes:
    """A Bedrock `chunk` frame carrying one Anthropic stream event."""
    raw = json.dumps(event, separators=(",", ":")).encode()
    payload = json.dumps({"bytes": base64.b64encode(raw).decode()}, separators=(",", ":")).encode()
    return encode(
        {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}, payload
    )


def exception_frame(kind: str, message: str) -> bytes:
    """A Bedrock exception frame (`throttlingException`, `modelStreamErrorException`...)."""
    payload = json.dumps({"message": message}).encode()
    return encode(
        {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}, payload
    )


def chunk_event(frame: Frame) -> dict[str, Any] | None:
    """The Anthropic event a `chunk` frame carries, or None when the frame is something else or unreadable."""
    if frame.message_type != "event" or frame.event_type != "chunk":
        return None
    try:
        outer = json.loads(frame.payload)
        event = json.loads(base64.b64decode(outer["bytes"], validate=True))
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    return event if isinstance(event, dict) else None


def to_sse(data: bytes) -> tuple[bytes, str | None]:
    """The Anthropic SSE a recorded event stream carries (events in order), and any decoding problem."""
    decoded = decode(data)
    lines = []
    problem = decoded.problem
    for frame in decoded.frames:
        event = chunk_event(frame)
        if event is None:
            if frame.message_type == "exception":
                error = {
                    "type": "error",
                    "error": {"type": frame.event_type, "message": _message(frame.payload)},
                }
                lines.append(f"event: error\ndata: {json.dumps(error)}\n\n")
                continue
            problem = problem or f"frame at byte {frame.offset} is not a readable chunk"
            continue
        lines.append(
            f"event: {event.get('type', 'message')}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"
        )
    return "".join(lines).encode(), problem


def _message(payload: bytes) -> str:
    try:
        found = json.loads(payload)
    except ValueError:
        return payload.decode("utf-8", "replace")
    return str(found.get("message", "")) if isinstance(found, dict) else str(found)


_EXCEPTION_HEADER = _encode_header(":message-type", "exception")


def ends_with_exception(tail: bytes) -> bool:
    """Whether a stream's last bytes hold an exception frame: Bedrock ends a stream that failed midway
    (`throttlingException`, `modelStreamErrorException`...) with one, after a 200."""
    return _EXCEPTION_HEADER in tail


def is_framed(headers: list[tuple[str, str]]) -> bool:
    """Whether response headers announce an event stream."""
    return any(
        name.lower() == "content-type" and value.split(";")[0].strip().lower() == CONTENT_TYPE
        for name, value in headers
    )


def from_sse(sse: bytes) -> bytes:
    """Frames again for SSE made by `to_sse` (after redaction): events as chunks, error events as exceptions."""
    frames = []
    for line in sse.decode("utf-8", "replace").split("\n"):
        if not line.startswith("data: "):
            continue
        event = json.loads(line[6:])
        if event.get("type") == "error" and isinstance(event.get("error"), dict):
            frames.append(
                exception_frame(str(event["error"].get("type")), str(event["error"].get("message")))
            )
        else:
            frames.append(chunk_frame(event))
    return b"".join(frames)


def from_events(events: list[dict[str, Any]]) -> bytes:
    """An event stream carrying these Anthropic events, one chunk frame each."""
    return b"".join(chunk_frame(event) for event in events)
