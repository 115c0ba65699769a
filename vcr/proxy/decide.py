"""What the proxy does with a request: pure decisions from the cassette's settings, the request's method and
path, its place in its repeats and how many recordings its key has (no I/O; table-tested). A new mode or
upstream dialect is a settings field plus rows here."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ProxyConfig


@dataclass(frozen=True)
class Reject:
    """Answer 404 with `reason` (a path no client should send, such as a doubled /v1)."""

    reason: str


@dataclass(frozen=True)
class Local:
    """Answer here without a recording (telemetry and connection probes in replay)."""


@dataclass(frozen=True)
class Read:
    """Key the request and read its recordings, then `decide` again with their count."""


@dataclass(frozen=True)
class Replay:
    """Send recording number `index` of the key's recordings."""

    index: int
    outcome: str


@dataclass(frozen=True)
class MatchConversation:
    """No recording of this key: look for one of the same conversation (`--match conversation`), then decide
    again with `conversation_tried`."""


@dataclass(frozen=True)
class Forward:
    """Send upstream; `record` keeps the answer, `replace` drops the key's older recordings first (once per
    record run), `local_on_failure` answers locally when the upstream cannot be reached."""

    record: bool = True
    replace: bool = False
    local_on_failure: bool = False


@dataclass(frozen=True)
class Miss:
    """A strict miss; `exhausted` is how many recordings the key has when its repeats ran out."""

    exhausted: int | None


Route = Reject | Local | Forward | Read
Decision = Replay | MatchConversation | Forward | Miss | Read


def doubled_v1(path: str) -> str | None:
    """A client whose base URL ends in /v1 asks for /v1/v1/messages: say so, rather than miss or 404."""
    if not path.startswith("/v1/v1/"):
        return None
    return (
        f"claude-vcr: the path {path} has /v1 twice: the client's base URL ends in an extra /v1. "
        "Use the proxy's address without it, e.g. ANTHROPIC_BASE_URL=http://127.0.0.1:8000 "
        "(the SDKs and Claude Code add /v1 themselves)."
    )


def is_local_only(method: str, path: str) -> bool:
    """Telemetry and connection probes (`HEAD` on any path: Claude Code probes `/api/hello` and `/`): forwarded
    when online, never stored, answered locally in replay."""
    return method == "HEAD" or path.startswith("/api/event_logging/")


def route(settings: ProxyConfig, method: str, path: str) -> Route:
    """Before keying: refuse what no client should send, answer or pass on probes, key the rest."""
    doubled = doubled_v1(path)
    if doubled is not None:
        return Reject(doubled)
    if is_local_only(method, path):
        return Local() if settings.mode == "replay" else Forward(record=False, local_on_failure=True)
    return Read()


def decide(
    settings: ProxyConfig,
    ordinal: int,
    count: int | None = None,
    conversation_tried: bool = False,
    replaces: bool = False,
) -> Decision:
    """Once keyed: passthrough and record never read recordings (`replaces`: this record run's first request
    of the key); otherwise, with `count` recordings read (None: not yet, so `Read`), replay the ordinal-th, or
    by settings look for the same conversation, record, repeat the last recording, or miss."""
    if settings.mode == "passthrough":
        return Forward(record=False)
    if settings.mode == "record":
        return Forward(replace=replaces)
    if count is None:
        return Read()
    if ordinal < count:
        return Replay(ordinal, "hit")
    if not count and settings.match == "conversation" and not conversation_tried:
        return MatchConversation()
    if settings.mode == "auto":
        return Forward()
    if count and settings.exhausted == "repeat":
        return Replay(count - 1, "hit-repeat")
    if settings.fallback == "fallback":
        return Forward()
    return Miss(count or None)


def stores_answer(status: int, record_errors: bool) -> bool:
    """Whether an upstream answer of this status is kept when recording."""
    return 200 <= status < 300 or record_errors
