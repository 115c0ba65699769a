"""The proxy's decision once a request's recordings are read (`claude_vcr.proxy.decide`), as a table: mode,
fallback, exhausted and match settings against the request's ordinal and the key's recordings."""

from __future__ import annotations

import dataclasses

import pytest
from claude_vcr.config import ProxyConfig
from claude_vcr.proxy.decide import Forward, MatchConversation, Miss, Replay, decide

BASE = ProxyConfig()

# (mode, fallback, exhausted, match, ordinal, recordings, conversation tried) -> decision
TABLE = [
    ("replay", "strict", "miss", "exact", 0, 1, False, Replay(0, "hit")),
    ("replay", "strict", "miss", "exact", 1, 3, False, Replay(1, "hit")),
    ("auto", "strict", "miss", "exact", 0, 1, False, Replay(0, "hit")),
    ("replay", "strict", "miss", "exact", 0, 0, False, Miss(None)),
    ("replay", "strict", "miss", "exact", 2, 2, False, Miss(2)),
    ("replay", "strict", "repeat", "exact", 2, 2, False, Replay(1, "hit-repeat")),
    ("replay", "strict", "repeat", "exact", 0, 0, False, Miss(None)),
    ("replay", "fallback", "miss", "exact", 0, 0, False, Forward()),
    ("replay", "fallback", "miss", "exact", 1, 1, False, Forward()),
    ("replay", "fallback", "repeat", "exact", 1, 1, False, Replay(0, "hit-repeat")),
    ("auto", "strict", "miss", "exact", 0, 0, False, Forward()),
    ("auto", "strict", "repeat", "exact", 1, 1, False, Forward()),
    ("replay", "strict", "miss", "conversation", 0, 0, False, MatchConversation()),
    ("replay", "strict", "miss", "conversation", 0, 0, True, Miss(None)),
    ("auto", "strict", "miss", "conversation", 0, 0, True, Forward()),
    ("replay", "strict", "miss", "conversation", 1, 1, False, Miss(1)),
    ("replay", "strict", "miss", "conversation", 0, 1, False, Replay(0, "hit")),
]


@pytest.mark.parametrize(("mode", "fallback", "exhausted", "match", "ordinal", "count", "tried", "expected"), TABLE)
def test_decision(mode, fallback, exhausted, match, ordinal, count, tried, expected):
    settings = dataclasses.replace(BASE, mode=mode, fallback=fallback, exhausted=exhausted, match=match)
    assert decide(settings, ordinal, count, conversation_tried=tried) == expected
