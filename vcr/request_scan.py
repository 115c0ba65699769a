"""One read of a request body for what saving it needs besides its key: the prompt excerpt listings show, the
credential-shaped strings screening looks for, and its chunks compressed as the store keeps them. Pure: for a
large body a child process runs it (`proxy/offload.py`), because the first two are long calls into C (a JSON
parse, regexes over the whole body) that hold the interpreter lock the event loop needs, and the last is
seconds of the one store thread's time."""

from __future__ import annotations

from typing import NamedTuple

from .compression import PackedChunks, pack_chunks
from .excerpts import Excerpt, prompt_excerpt
from .secrets import Secret, redact_bytes


class RequestScan(NamedTuple):
    """What `scan_request` found in a request body."""

    excerpt: Excerpt
    redacted: bytes | None
    """The body with its secrets as placeholders; None when it holds none."""
    found: list[Secret]
    chunks: PackedChunks | None
    """The body cut into chunks and compressed, as the store keeps it (None: stored whole)."""


def scan_request(body: bytes) -> RequestScan:
    """The body's prompt excerpt, secrets and chunks, as `Store.save` and `redact.screen` would work them out."""
    redacted, found = redact_bytes(body)
    return RequestScan(Excerpt(prompt_excerpt(body)), redacted if found else None, found, pack_chunks(body))
