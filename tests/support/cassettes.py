"""Recordings as the store keeps them: plausible ones built without the proxy, rows read back, JSON columns."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from claude_vcr.compression import decode_json, decompressor
from claude_vcr.matching import KEY_SCHEME, key_request
from claude_vcr.records import Recording
from claude_vcr.store import Store

from tests.support.client import params


def recording(
    index: int,
    cassette: str = "bulk",
    *,
    model: str = "claude-haiku-4-5",
    stream: bool = False,
    ordinal: int = 0,
    created_at: str | None = None,
    size: int = 200,
) -> Recording:
    """A plausible recording without the proxy, for bulk and ordering cases; its key is the real key."""
    body = json.dumps(params(f"bulk question {index}", model=model, stream=stream)).encode()
    keyed = key_request("POST", "/v1/messages", "", body)
    text = f"answer {index} " + "x" * size
    if stream:
        events = [
            {"type": "message_start", "message": {"id": f"msg_{index}", "content": []}},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
            {"type": "message_stop"},
        ]
        response = b"".join(
            f"event: {e['type']}\ndata: {json.dumps(e, separators=(',', ':'))}\n\n".encode() for e in events
        )
        content_type = "text/event-stream"
    else:
        response = json.dumps({"type": "message", "content": [{"type": "text", "text": text}]}).encode()
        content_type = "application/json"
    extra = {"created_at": created_at} if created_at else {}
    return Recording(
        cassette=cassette,
        key=keyed.key,
        key_scheme=KEY_SCHEME,
        method="POST",
        path="/v1/messages",
        status=200,
        request_headers=[("anthropic-version", "2023-06-01"), ("content-type", "application/json")],
        request_body=body,
        response_headers=[("content-type", content_type), ("request-id", f"req_{index}")],
        response_body=response,
        timings=[(len(response) // 2, 10.5), (len(response) - len(response) // 2, 20.25)],
        model=model,
        stream=stream,
        ordinal=ordinal,
        duration_ms=21.5,
        ttfb_ms=10.5,
        fingerprints=keyed.fingerprints,
        **extra,
    )


def save_all(db: Path, recordings: list[Recording]) -> None:
    with Store(db) as store:
        for item in recordings:
            store.save(item)


def rows(db: Path) -> list[dict[str, Any]]:
    """Every recording as stored, cassette by name and without ids: what must survive a round trip."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        found = conn.execute(
            "SELECT c.name AS cassette, r.* FROM recordings r JOIN cassettes c ON c.id = r.cassette_id "
            "ORDER BY c.name, r.key, r.ordinal"
        ).fetchall()
    finally:
        conn.close()
    return [{k: row[k] for k in row.keys() if k not in ("id", "cassette_id")} for row in found]


def cassette_rows(db: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        found = conn.execute("SELECT * FROM cassettes ORDER BY name").fetchall()
    finally:
        conn.close()
    return [{k: row[k] for k in row.keys() if k != "id"} for row in found]


def stored_json(value: str | bytes | None):
    """A JSON metadata column as the store writes it (text, or zstd when long), decoded."""
    return decode_json(value, decompressor())


def unstored_notes(db: Path) -> list[tuple[str, str, int, str | None, str]]:
    """The notes of answers a record run did not store, as stored: (cassette, key, status, error type, date)."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT cassette, key, status, error_type, noted_at FROM unstored_answers ORDER BY cassette, key"
        ).fetchall()
    finally:
        conn.close()
