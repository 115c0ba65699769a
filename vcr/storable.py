"""Which answers a record run keeps: deterministic API errors are answers like any other, transient ones are not.

A 400 for an unsupported option or a 404 for a missing model comes back the same every time, so a suite that
expects it must replay it (vcrpy records it too). A 429, a 5xx, a 529 or a stream that broke off with an
`overloaded_error` event says something about the moment, not the request: storing it would replay an outage
forever, so it is passed through and counted, unless the user asks for it (`--record-errors`). Pure: the proxy
and the importers call it with what they saw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .records import UnstoredAnswer

TRANSIENT_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
"""Statuses the API (or a gateway in front of it) uses for "try again": rate limits, timeouts, overload."""

TRANSIENT_ERROR_TYPES = frozenset({"rate_limit_error", "api_error", "overloaded_error", "timeout_error"})
"""The Anthropic error types that say the request could succeed if sent again."""

RECORD_ERRORS = "--record-errors"
"""The option of `serve`, `run` and `import` that stores transient errors too (the plugin's has a prefix)."""
RECORD_ERRORS_HINT = f"{RECORD_ERRORS} stores it"

NOT_STORED = "not stored: "
"""How a passed-through answer's note begins: the proxy writes it, the run's ledger counts it."""


@dataclass(frozen=True)
class Verdict:
    """Whether to store an answer, and for one not stored, why in a few words (for the summary's count)."""

    store: bool
    reason: str | None = None


def error_type(body: bytes) -> str | None:
    """The `error.type` of an Anthropic error body (JSON, or an SSE `error` event's data), else None."""
    text = body.strip()
    if text.startswith(b"event:") or b"\ndata:" in text[:200]:
        lines = [line for line in text.splitlines() if line.startswith(b"data:")]
        text = lines[-1][5:].strip() if lines else b""
    try:
        payload = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None
    error = payload.get("error") if isinstance(payload, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) else None


def is_transient(status: int, body: bytes = b"") -> bool:
    """Whether an error answer says "try again" rather than "this request is wrong"."""
    if status in TRANSIENT_STATUSES or status >= 500:
        return True
    return error_type(body) in TRANSIENT_ERROR_TYPES


def by_status(status: int, *, record_errors: bool) -> Verdict:
    """What the status alone decides, before the body has arrived (a stream is teed as it comes)."""
    if 200 <= status < 300 or record_errors:
        return Verdict(True)
    if is_transient(status):
        return Verdict(False, f"transient error {status} ({RECORD_ERRORS_HINT})")
    if status < 400:
        return Verdict(False, f"status {status} is not an answer ({RECORD_ERRORS_HINT})")
    return Verdict(True)


def verdict(status: int, body: bytes, *, streamed_error: bool, record_errors: bool) -> Verdict:
    """The whole decision once the answer is complete; `streamed_error`: a 2xx stream whose last event is
    `error` (it failed midway). Only the tail of a large body is needed."""
    first = by_status(status, record_errors=record_errors)
    if not first.store or record_errors:
        return first
    if 200 <= status < 300:
        if not streamed_error:
            return first
        kind = error_type(body[-8192:]) or "error"
        if kind in TRANSIENT_ERROR_TYPES or kind == "error":
            return Verdict(False, f"stream ended in a transient {kind} event ({RECORD_ERRORS_HINT})")
        return first
    if is_transient(status, body):
        return Verdict(False, f"transient error {status} ({RECORD_ERRORS_HINT})")
    return first


def not_stored_line(counts: dict[str, int]) -> str:
    """`claude-vcr: 2 answer(s) not stored: 1 transient error 429 (...); 1 ...`: nothing lost silently."""
    total = sum(counts.values())
    return f"claude-vcr: {total} answer(s) not stored: " + "; ".join(
        f"{count} {reason}" for reason, count in sorted(counts.items())
    )


def unstored_hint(note: UnstoredAnswer, option: str) -> str:
    """What a strict miss adds when a record run noted the key's answer as not stored: when, what it got, and
    the option that stores such answers (`option`: the words of the serve, run or pytest user)."""
    kind = f" ({note.error_type})" if note.error_type else ""
    got = (
        f"a stream that ended in an error event{kind}"
        if 200 <= note.status < 300
        else f"a {note.status}{kind}"
    )
    return (
        f"While recording on {note.noted_at[:10]}, this request got {got}, which was not stored: "
        f"record it again, or pass {option} to store such errors."
    )
