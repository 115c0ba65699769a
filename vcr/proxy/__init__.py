"""The claude-vcr proxy: an aiohttp server that replays recorded answers and records new ones.

Modules, one concern each: `edge` (HTTP hardening, refusals, errors), `exchange` (one request's types),
`handler` (mode policy, replay, record, misses), `replay` (the replay cache), `running` (start, serve, stop).
"""

from __future__ import annotations

from .edge import MAX_REQUEST_BYTES, BodyRefused, error_response, read_body, refusal
from .exchange import (
    CASSETTE_HEADER,
    HELD_BYTES,
    CassetteState,
    Exchange,
    Observer,
    is_local_only,
)
from .handler import Proxy
from .replay import ReplayCache
from .running import RequestLog, RunningProxy, running, serve, startup_warnings

__all__ = [
    "CASSETTE_HEADER",
    "HELD_BYTES",
    "MAX_REQUEST_BYTES",
    "BodyRefused",
    "CassetteState",
    "Exchange",
    "Observer",
    "Proxy",
    "ReplayCache",
    "RequestLog",
    "RunningProxy",
    "error_response",
    "is_local_only",
    "read_body",
    "refusal",
    "running",
    "serve",
    "startup_warnings",
]
