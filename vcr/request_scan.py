"""One read of a request body for what saving it needs besides its key: the prompt excerpt listings show and
the credential-shaped strings screening looks for. Pure: for a large body a child process runs it
(`proxy/offload.py`), because both are long calls into C (a JSON parse, regexes over the whole body) that
hold the interpreter lock the event loop needs."""

from __future__ import annotations

from typing import NamedTuple

from .excerpts import Excerpt, prompt_excerpt
from .secrets import Secret, redact_bytes


class RequestScan(NamedTuple):
    """What `scan_request` found in a request body."""

    excerpt: Excerpt
    redacted: bytes | None
    """The body with its secrets as placeholders; None when it holds none."""
    found: list[Secret]


def scan_request(body: bytes) -> RequestScan:
    """The body's prompt excerpt and secrets, as `Store.save` and `redact.screen` would work them out."""
    redacted, found = redact_bytes(body)
    return RequestScan(Excerpt(prompt_excerpt(body)), redacted if found else None, found)
