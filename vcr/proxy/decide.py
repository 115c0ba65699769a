"""What to do with a request once its recordings are read: a pure decision from the cassette's settings, the
request's place in its repeats and how many recordings its key has (no I/O; table-tested)."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ProxyConfig


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
    """Send upstream and record the answer."""


@dataclass(frozen=True)
class Miss:
    """A strict miss; `exhausted` is how many recordings the key has when its repeats ran out."""

    exhausted: int | None


Decision = Replay | MatchConversation | Forward | Miss


def decide(settings: ProxyConfig, ordinal: int, count: int, conversation_tried: bool = False) -> Decision:
    """Replay the ordinal-th recording when there is one; else, by mode and settings, look for the same
    conversation, record, repeat the last recording, or miss."""
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
