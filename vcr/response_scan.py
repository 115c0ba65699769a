"""One read of a recorded response body for what saving it needs: the credential-shaped strings screening
looks for, and the body compressed as the store keeps it (with placeholders, when `--redact` replaces some).
Pure: for a large body a child process runs it (`proxy/offload.py`), because the secrets regexes over
megabytes are long calls into C that hold the interpreter lock the event loop needs (2.8 s for 6 MB), and
compressing megabytes at the store's level is most of a second of the one store thread's time."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from .compression import compressor
from .records import Recording
from .redact import response_secrets
from .secrets import Secret


class ResponseScan(NamedTuple):
    """What `scan_response` found in a response body, and its stored forms."""

    found: list[Secret]
    frame: bytes | None
    """The body compressed as `Store.save` would (None: it is kept as a frame already)."""
    redacted_frame: bytes | None
    """The body with its secrets as placeholders, compressed as `Store.save` would; None unless asked for
    and some were found."""
    redacted_length: int | None


def response_part(recording: Recording) -> Recording:
    """The recording with only what screening its response reads (the request stays where it is)."""
    return dataclasses.replace(recording, request_body=b"", request_headers=[], timings=[], fingerprints=None)


def scan_response(recording: Recording, redact: bool) -> ResponseScan:
    """The response's secrets and stored forms, as `redact.screen` and `Store.save` would work them out."""
    body, found = response_secrets(recording)
    packer = compressor()
    frame = packer.compress(recording.response_body) if recording.response_frame is None else None
    redacted = packer.compress(body) if redact and found else None
    return ResponseScan(found, frame, redacted, len(body) if redacted is not None else None)
