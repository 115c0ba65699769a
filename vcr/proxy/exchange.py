"""What one request is while the proxy handles it (`Exchange`), who hears of it (`Observer`), and the
proxy's shared names and limits."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from ..compression import LARGE_BODY
from ..matching import KeyedRequest
from ..record_run import CassetteRun
from ..secrets import redact_target

log = logging.getLogger("claude_vcr.proxy")
"""One logger for the whole proxy package (tests and users filter on `claude_vcr.proxy`)."""


CASSETTE_HEADER = "X-VCR-Cassette"
CONTROL_PREFIX = "/__vcr__/"
SEEN_BYTES_PER_CASSETTE = 64 * 1024 * 1024
SEEN_STRIDE = 64
"""A request seen before is found by every 64th byte of its body (and its length), then compared whole:
hashing all 49 KB of a Claude Code request cost a tenth of a replay's CPU."""
REPLAY_PIECE = 64 * 1024
"""How much of a large (streamed-from-disk) recording is decompressed and written at a time."""

LINGER_SECONDS = 1.0
"""After a body refused unread (408, 413), how long the rest is read and dropped before closing (aiohttp: 10 s)."""
HELD_BYTES = LARGE_BODY
"""A recorded answer that is not a stream is sent once saved, so `x-vcr-outcome` is the result; past this
size it is streamed on (`recording`) instead of held in memory."""
_CASSETTE_PREFIX = re.compile(r"^/c/([^/]*)(/.*)?$")


class Observer(Protocol):
    """Who hears about every request (the in-process harness): called on the proxy's event loop."""

    def began(self) -> None: ...

    def ended(self) -> None: ...

    def outcome(
        self, outcome: str, exchange: Exchange | None, method: str, target: str, status: int
    ) -> None: ...


@dataclass
class CassetteState:
    """What one proxy run knows of a cassette: its record-run state, and the requests it has keyed."""

    run: CassetteRun
    seen: dict[tuple[str, str, int, bytes], tuple[bytes, str, bool]] = field(default_factory=dict)
    """(method, target, body length, every `SEEN_STRIDE`th body byte) -> (exact body, key, stream flag) for
    requests seen in this run: the fast path (a different body with the same sample takes the slot)."""
    seen_bytes: int = 0
    conversations: dict[int, str | None] = field(default_factory=dict)
    """Recording id -> its conversation digest, for `--match conversation`."""
    rules_stalled: str | None = None
    """Why this run no longer applies the cassette's rules to its stored requests (a regex of its own ran past
    its deadline on them once): misses are then answered without diagnosis or conversation match."""
    drift_said: bool = False
    """Whether this run has said how the cassette's Claude Code harness drifted (once per cassette)."""
    drift_checked: set[tuple[str, int]] = field(default_factory=set)
    """(key, ordinal) of the recordings this run has compared with a request's harness: each is read and
    compared once, not on every replay of it (a whole stored request read and two bodies parsed a hit)."""


@dataclass
class Exchange:
    """One client request, as the proxy sees it after picking the cassette."""

    request: web.BaseRequest
    cassette: str
    method: str
    path: str
    query: str
    body: bytes
    keyed: KeyedRequest | None = None
    ordinal: int = 0
    raw_hash: str | None = None
    note: str | None = None
    """Said in the log under the request's line (why a replay missed)."""
    rules_changed: bool = False
    """The cassette's stored rules changed while this request was recorded (it was saved under them)."""

    @property
    def key(self) -> str:
        return self.keyed.key if self.keyed else ""

    @property
    def target(self) -> str:
        """Path and raw query, as forwarded upstream."""
        return f"{self.path}?{self.query}" if self.query else self.path

    @property
    def stored_target(self) -> str:
        """The target as stored and logged: credentials in the query replaced (`secrets.redact_target`)."""
        return redact_target(self.target)
