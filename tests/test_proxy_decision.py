"""The proxy's decision once a request's recordings are read (`claude_vcr.proxy.decide`), as a table: mode,
fallback, exhausted and match settings against the request's ordinal and the key's recordings."""

from __future__ import annotations

import dataclasses

import pytest
from claude_vcr.config import ProxyConfig
from claude_vcr.proxy.decide import (
    Forward,
    Local,
    MatchConversation,
    Miss,
    Read,
    Reject,
    Replay,
    decide,
    route,
    stores_answer,
)

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


# before reading: passthrough and record never read recordings; the rest read first (count None)
BEFORE_READING = [
    ("passthrough", False, Forward(record=False)),
    ("passthrough", True, Forward(record=False)),
    ("record", False, Forward(record=True, replace=False)),
    ("record", True, Forward(record=True, replace=True)),
    ("replay", True, Read()),
    ("auto", False, Read()),
]


@pytest.mark.parametrize(("mode", "replaces", "expected"), BEFORE_READING)
def test_decision_before_reading(mode, replaces, expected):
    settings = dataclasses.replace(BASE, mode=mode)
    assert decide(settings, 0, replaces=replaces) == expected


# (mode, method, path) -> route, before a request is keyed
ROUTES = [
    ("replay", "POST", "/v1/v1/messages", Reject),
    ("auto", "GET", "/v1/v1/models", Reject),
    ("replay", "HEAD", "/", Local()),
    ("replay", "POST", "/api/event_logging/batch", Local()),
    ("auto", "HEAD", "/api/hello", Forward(record=False, local_on_failure=True)),
    ("record", "POST", "/api/event_logging/batch", Forward(record=False, local_on_failure=True)),
    ("replay", "POST", "/v1/messages", Read()),
    ("passthrough", "GET", "/v1/models", Read()),
]


@pytest.mark.parametrize(("mode", "method", "path", "expected"), ROUTES)
def test_route(mode, method, path, expected):
    routed = route(dataclasses.replace(BASE, mode=mode), method, path)
    if expected is Reject:
        assert isinstance(routed, Reject) and "/v1 twice" in routed.reason
    else:
        assert routed == expected


@pytest.mark.parametrize(
    ("status", "record_errors", "stored"),
    [(200, False, True), (201, False, True), (400, False, False), (529, False, False), (400, True, True)],
)
def test_which_answers_are_stored(status, record_errors, stored):
    assert stores_answer(status, record_errors) is stored
