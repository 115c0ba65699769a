"""The claude-vcr proxy: an aiohttp server that replays recorded answers and records new ones.

Modules, one concern each: `edge` (HTTP hardening, body reading, refusals, errors: the only module touching
aiohttp's internals), `decide` (the pure decisions: route, replay, record or miss), `handler` (carries a
request through those decisions: cassette, key, strict-miss text), `replay` (the cache and sending a
recording), `record` (send, relay, save), `monitor` (`--check`), `exchange` (one request's types),
`running` (start, serve, stop).
"""

from __future__ import annotations

from .decide import is_local_only
from .edge import MAX_REQUEST_BYTES, BodyRefused, error_response, read_body, refusal
from .exchange import (
    CASSETTE_HEADER,
    HELD_BYTES,
    CassetteState,
    Exchange,
    Observer,
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
