"""Turn a request into the key its recording is stored under: pure functions, no I/O."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

KEY_SCHEME = "v1"
"""Stored with every recording, so keys can be recomputed when the scheme changes."""

SHORT_KEY_LENGTH = 12
IGNORED_TOP_LEVEL_FIELDS = frozenset({"metadata"})


def _canonical_value(value: Any) -> Any:
    """Integral floats become ints, so `1.0` and `1` make the same key."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _canonical_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical_value(v) for v in value]
    return value


def canonical_json(value: Any) -> bytes:
    """One byte form per JSON value: sorted keys, no whitespace, UTF-8."""
    return json.dumps(
        _canonical_value(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def parse_json_body(body: bytes) -> Any | None:
    """The parsed body, or None when it is empty or not JSON (such bodies are keyed by their bytes)."""
    stripped = body.lstrip()
    if not stripped or stripped[:1] not in (b"{", b"["):
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def canonical_query(query: str) -> str:
    """Query parameters in a stable order, so `?a=1&b=2` and `?b=2&a=1` match."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode(sorted(pairs))


def body_for_key(body: bytes) -> bytes:
    """What of the body counts: canonical JSON without `metadata`, or the raw bytes."""
    parsed = parse_json_body(body)
    if parsed is None:
        return b"raw:" + body
    if isinstance(parsed, dict):
        parsed = {k: v for k, v in parsed.items() if k not in IGNORED_TOP_LEVEL_FIELDS}
    return b"json:" + canonical_json(parsed)


def request_key(method: str, path: str, query: str, body: bytes) -> str:
    """The hex sha256 that identifies a request within a cassette."""
    digest = hashlib.sha256()
    digest.update(f"{KEY_SCHEME}\n{method.upper()}\n{path}\n{canonical_query(query)}\n".encode())
    digest.update(body_for_key(body))
    return digest.hexdigest()


def short_key(key: str) -> str:
    return key[:SHORT_KEY_LENGTH]


def describe_request(body: bytes) -> tuple[str | None, bool]:
    """The model and the stream flag of a Messages-style JSON body, for the metadata columns."""
    parsed = parse_json_body(body)
    if not isinstance(parsed, dict):
        return None, False
    model = parsed.get("model")
    return (model if isinstance(model, str) else None), parsed.get("stream") is True
