"""Helpers shared by the cassette-management tests: record through the proxy, build bulk rows, run the CLI."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import anthropic
from claude_vcr.cli import main
from claude_vcr.matching import KEY_SCHEME, key_request
from claude_vcr.records import Recording
from claude_vcr.store import Store
from click.testing import CliRunner, Result

from tests.conftest import TEST_API_KEY

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def params(text: str, model: str = "claude-opus-5-5", **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": text}], **extra}


def client(base_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base_url, api_key=TEST_API_KEY, max_retries=0)


def call(base_url: str, **request: Any) -> bytes:
    """One Messages call through the proxy; returns the response bytes exactly as the client got them."""
    if request.get("stream"):
        request = {k: v for k, v in request.items() if k != "stream"}
        with client(base_url).messages.with_streaming_response.create(stream=True, **request) as response:
            return response.read()
    return client(base_url).messages.with_raw_response.create(**request).http_response.content


def cli(*args: str | Path, input: str | None = None) -> Result:
    """Run a claude-vcr command in-process; errors are results (exit code, message), not exceptions."""
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


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


# --- synthetic mitmproxy dumps, for sizes no real capture in a test should take ----------------------


def tnetstring(value: Any) -> bytes:
    """mitmproxy's typed netstring encoding (`;` for text, `,` for bytes), enough to write flows."""
    if value is None:
        tag, data = b"~", b""
    elif isinstance(value, bool):
        tag, data = b"!", b"true" if value else b"false"
    elif isinstance(value, int):
        tag, data = b"#", str(value).encode()
    elif isinstance(value, float):
        tag, data = b"^", repr(value).encode()
    elif isinstance(value, bytes):
        tag, data = b",", value
    elif isinstance(value, str):
        tag, data = b";", value.encode()
    elif isinstance(value, list):
        tag, data = b"]", b"".join(tnetstring(item) for item in value)
    elif isinstance(value, dict):
        tag, data = b"}", b"".join(tnetstring(k) + tnetstring(v) for k, v in value.items())
    else:
        raise TypeError(type(value))
    return str(len(data)).encode() + b":" + data + tag


def synthetic_flow(index: int, response_bytes: int = 20_000, *, started: float = 1_760_000_000.0) -> bytes:
    """One HTTP flow in the format `mitmdump -w` writes (version 21): a streamed Messages exchange."""
    body = json.dumps(params(f"synthetic question {index}", stream=True)).encode()
    filler = "y" * max(0, response_bytes - 400)
    events = [
        {
            "type": "message_start",
            "message": {"id": f"msg_{index}", "content": [], "model": "claude-opus-5-5"},
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": filler}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_stop"},
    ]
    sse = b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)
    at = started + index
    state = {
        "version": 21,
        "type": "http",
        "id": f"00000000-0000-0000-0000-{index:012d}",
        "error": None,
        "timestamp_created": at,
        "request": {
            "host": "api.anthropic.com",
            "port": 443,
            "method": b"POST",
            "scheme": b"https",
            "authority": b"",
            "path": b"/v1/messages",
            "http_version": b"HTTP/1.1",
            "headers": [
                [b"x-api-key", TEST_API_KEY.encode()],
                [b"content-type", b"application/json"],
                [b"anthropic-version", b"2023-06-01"],
            ],
            "content": body,
            "trailers": None,
            "timestamp_start": at,
            "timestamp_end": at + 0.01,
        },
        "response": {
            "http_version": b"HTTP/1.1",
            "status_code": 200,
            "reason": b"OK",
            "headers": [[b"content-type", b"text/event-stream"], [b"request-id", f"req_{index}".encode()]],
            "content": sse,
            "trailers": None,
            "timestamp_start": at + 0.2,
            "timestamp_end": at + 1.5,
        },
        "websocket": None,
    }
    return tnetstring(state)


def write_synthetic_dump(path: Path, flows: int, response_bytes: int = 20_000) -> int:
    """A dump of `flows` distinct exchanges, written flow by flow; returns its size in bytes."""
    with path.open("wb") as out:
        for index in range(flows):
            out.write(synthetic_flow(index, response_bytes))
    return path.stat().st_size
