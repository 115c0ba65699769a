"""Hostile edits of a real db, as someone who sends a vcr.db through git could make them: sqlite3 on the file,
no claude-vcr code. Each returns what the test needs to check the safe outcome."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import zstandard

GIB = 1024 * 1024 * 1024


def execute(db: Path, *statements: str, params: tuple = ()) -> None:
    conn = sqlite3.connect(db)
    try:
        for statement in statements:
            conn.execute(statement, params) if params else conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


def plant_body_thief(db: Path) -> None:
    """A trigger that copies every request body we write (or redact) into a table of its own."""
    execute(
        db,
        "CREATE TABLE stolen (body BLOB)",
        "CREATE TRIGGER steal AFTER UPDATE ON recordings BEGIN INSERT INTO stolen VALUES (OLD.request_body); END",
    )


def plant_recursive_view(db: Path) -> None:
    """`recording_totals` (what `cassettes` and `list` read) replaced by a view that never ends."""
    execute(
        db,
        "DROP TABLE recording_totals",
        "CREATE VIEW recording_totals AS WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) "
        "SELECT 1 AS cassette_id, '' AS model, 0 AS stream, x AS recordings, 0 AS request_size, "
        "0 AS response_size, 0 AS stored_size FROM n",
    )


def bomb_frame(size: int, *, declared: bool) -> bytes:
    """A zstd frame of `size` zero bytes (a few KB per GiB), with or without its size in the header; made a MB
    at a time so the test itself never holds the inflated bytes."""
    compressor = zstandard.ZstdCompressor(level=3, write_content_size=declared)
    stream = compressor.compressobj(size=size if declared else -1)
    piece = bytes(1024 * 1024)
    parts = [stream.compress(piece) for _ in range(size // len(piece))]
    parts.append(stream.flush())
    return b"".join(parts)


def plant_response_bomb(db: Path, frame: bytes, *, stated_size: int | None = None) -> None:
    """Every recording's response body becomes `frame`; its row's recorded size is left or set."""
    if stated_size is None:
        execute(db, "UPDATE recordings SET response_body = ?", params=(frame,))
    else:
        execute(db, "UPDATE recordings SET response_body = ?, response_size = ?", params=(frame, stated_size))


def run(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """claude-vcr as a separate process (a hang is a timeout, not a stuck suite)."""
    return subprocess.run(
        [sys.executable, "-m", "claude_vcr", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class Canary:
    """A listener on 127.0.0.1 that counts the connections made to it: where an attacker's db would send a key."""

    def __init__(self) -> None:
        import socket
        import threading

        self.connections = 0
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self._socket.settimeout(0.2)
        self.port = self._socket.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()


def bomb_mitm_dump(path: Path, coding: str, size: int = GIB) -> int:
    """A mitmproxy dump of one Messages flow whose response body, encoded with `coding`, inflates to `size`
    zero bytes (tens of KB on disk), after one ordinary flow; returns the file's size."""
    import zlib

    from tests.support.mitm import flow_state, tnetstring

    if coding == "zstd":
        encoded = bomb_frame(size, declared=False)
    else:
        deflater = zlib.compressobj(
            9, zlib.DEFLATED, 16 + zlib.MAX_WBITS if coding == "gzip" else zlib.MAX_WBITS
        )
        piece = bytes(1024 * 1024)
        encoded = b"".join([*(deflater.compress(piece) for _ in range(size // len(piece))), deflater.flush()])
    ordinary = flow_state()
    bomb = flow_state(b'{"model":"claude-haiku-4-5","messages":[]}')
    bomb["response"]["content"] = encoded
    bomb["response"]["headers"] = [
        [b"content-type", b"application/json"],
        [b"content-encoding", coding.encode()],
    ]
    path.write_bytes(tnetstring(ordinary) + tnetstring(bomb))
    return path.stat().st_size


def long_stream(deltas: int) -> bytes:
    """A valid Messages stream of one text block told in `deltas` deltas (1M of them: 120 MB)."""
    import json

    def event(payload: dict) -> str:
        return f"event: {payload['type']}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n"

    start = {
        "type": "message_start",
        "message": {
            "id": "msg_long",
            "type": "message",
            "role": "assistant",
            "model": "claude-haiku-4-5",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 1},
        },
    }
    delta = event(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "word "}}
    )
    return "".join(
        [
            event(start),
            event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            delta * deltas,
            event({"type": "content_block_stop", "index": 0}),
            event(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": deltas},
                }
            ),
            event({"type": "message_stop"}),
        ]
    ).encode()


def plant_long_stream(db: Path, deltas: int) -> None:
    """The streamed recording's response becomes a valid stream of `deltas` deltas (sizes kept consistent)."""
    body = long_stream(deltas)
    frame = zstandard.ZstdCompressor().compress(body)
    execute(
        db,
        "UPDATE recordings SET response_body = ?, response_size = ?, timings = ? WHERE stream = 1",
        params=(frame, len(body), f"[[{len(body)},1.0]]"),
    )


_PEAK = (
    "import atexit, runpy, sys\n"
    "def peak():\n"
    "    hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
    "    sys.stderr.write(f'\\nVMHWM {hwm}\\n')\n"
    "atexit.register(peak)\n"
    "sys.argv = ['claude-vcr', *sys.argv[1:]]\n"
    "runpy.run_module('claude_vcr', run_name='__main__')\n"
)
"""claude-vcr run with its own peak memory (VmHWM, per address space: not inherited across exec) printed last."""


def peak_mb(*args: str | Path, timeout: float = 300) -> tuple[subprocess.CompletedProcess[bytes], float]:
    """(the finished claude-vcr process, its peak resident memory in MB); stdout is kept as bytes."""
    done = subprocess.run(
        [sys.executable, "-c", _PEAK, *map(str, args)], capture_output=True, timeout=timeout
    )
    line = done.stderr.decode(errors="replace").strip().splitlines()[-1]
    assert line.startswith("VMHWM "), done.stderr[-2000:]
    return done, int(line.split()[1]) / 1024
