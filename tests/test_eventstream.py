"""The AWS event-stream codec, checked against botocore's own decoder; damage is a problem, never a crash."""

from __future__ import annotations

import random
import struct

import pytest
from botocore.eventstream import EventStreamBuffer

from vcr import eventstream

EVENTS = [
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": "claude",
            "stop_reason": None,
            "usage": {"input_tokens": 3, "output_tokens": 1},
        },
    },
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "héllo \u2603"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 5}},
    {"type": "message_stop", "amazon-bedrock-invocationMetrics": {"inputTokenCount": 3}},
]


def _botocore_frames(data: bytes) -> list[tuple[dict, bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return [(message.headers, message.payload) for message in buffer]


def test_encoded_frames_read_by_botocore_and_back() -> None:
    data = eventstream.from_events(EVENTS)
    theirs = _botocore_frames(data)
    ours = eventstream.decode(data)
    assert ours.problem is None
    assert [(f.headers, f.payload) for f in ours.frames] == theirs
    assert [eventstream.chunk_event(f) for f in ours.frames] == EVENTS


def test_all_header_types_agree_with_botocore() -> None:
    rng = random.Random(7)
    for _ in range(50):
        raw = b""
        for index in range(rng.randint(0, 6)):
            name = f"h{index}".encode()
            kind = rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
            value = {
                0: b"",
                1: b"",
                2: struct.pack(">b", rng.randint(-128, 127)),
                3: struct.pack(">h", rng.randint(-999, 999)),
                4: struct.pack(">i", rng.randint(-(2**31), 2**31 - 1)),
                5: struct.pack(">q", rng.randint(-(2**40), 2**40)),
                6: struct.pack(">H", 3) + b"\x00\x01\x02",
                7: struct.pack(">H", 4) + "é☃".encode()[:4],
                8: struct.pack(">q", 1_700_000_000_000),
                9: bytes(range(16)),
            }[kind]
            if kind == 7:
                value = struct.pack(">H", 5) + "é☃".encode()
            raw += bytes([len(name)]) + name + bytes([kind]) + value
        payload = rng.randbytes(rng.randint(0, 64))
        total = 12 + len(raw) + len(payload) + 4
        prelude = struct.pack(">II", total, len(raw))
        prelude += struct.pack(">I", __import__("binascii").crc32(prelude))
        body = prelude + raw + payload
        frame = body + struct.pack(">I", __import__("binascii").crc32(body))
        (theirs,) = _botocore_frames(frame)
        ours = eventstream.decode(frame)
        assert ours.problem is None
        got = ours.frames[0].headers
        assert set(got) == set(theirs[0])
        for name, value in theirs[0].items():
            if hasattr(value, "bytes"):  # uuid
                assert got[name] == value.bytes
            elif hasattr(value, "timestamp"):
                continue
            else:
                assert got[name] == value
        assert ours.frames[0].payload == theirs[1]


@pytest.mark.parametrize("cut", [1, 5, 11, 12, 30, -1])
def test_truncated_stream_is_a_problem(cut: int) -> None:
    data = eventstream.from_events(EVENTS[:2])
    first = eventstream.frame_lengths(data)[0]
    damaged = data[: first + cut] if cut > 0 else data[:cut]
    decoded = eventstream.decode(damaged)
    assert decoded.problem is not None and decoded.problem.startswith("truncated frame")
    assert "\n" not in decoded.problem
    assert len(decoded.frames) == 1


@pytest.mark.parametrize("where", ["prelude", "length", "header", "payload", "crc"])
def test_flipped_byte_is_a_problem(where: str) -> None:
    data = bytearray(eventstream.from_events(EVENTS[:3]))
    second = eventstream.frame_lengths(bytes(data))[0]
    offset = {
        "prelude": 9,
        "length": 1,
        "header": 14,
        "payload": 60,
        "crc": eventstream.frame_lengths(bytes(data))[1] - 1,
    }[where]
    data[second + offset] ^= 0x40
    decoded = eventstream.decode(bytes(data))
    assert decoded.problem is not None and "\n" not in decoded.problem
    assert "CRC" in decoded.problem or "length" in decoded.problem
    assert len(decoded.frames) == 1


def test_random_garbage_never_raises() -> None:
    rng = random.Random(1)
    good = eventstream.from_events(EVENTS)
    for _ in range(500):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        decoded = eventstream.decode(bytes(data[: rng.randint(0, len(data))]))
        assert decoded.problem is None or "\n" not in decoded.problem
    assert eventstream.decode(b"").frames == []


def test_to_sse_carries_events_and_exceptions() -> None:
    data = eventstream.from_events(EVENTS[:2]) + eventstream.exception_frame(
        "throttlingException", "slow down"
    )
    sse, problem = eventstream.to_sse(data)
    assert problem is None
    text = sse.decode()
    assert text.startswith("event: message_start\ndata: ")
    assert "event: error" in text and "throttlingException" in text and "slow down" in text


def test_exception_at_the_end_is_seen_in_the_tail() -> None:
    good = eventstream.from_events(EVENTS)
    failed = eventstream.from_events(EVENTS[:3]) + eventstream.exception_frame("modelStreamErrorException", "boom")
    assert not eventstream.ends_with_exception(good[-8192:])
    assert eventstream.ends_with_exception(failed[-8192:])
