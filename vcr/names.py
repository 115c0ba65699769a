"""What a cassette may be called: names become directory names on export, so plain names only.

Kept apart so that the read-only commands can check a name without importing the proxy (and aiohttp).
"""

from __future__ import annotations

import re

from .errors import BadCassetteName

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
"""Matched whole (`fullmatch`): `$` would also match before a trailing newline."""


def validate_cassette_name(name: str) -> str:
    """The name itself when it is plain; a clear error otherwise."""
    if not _PLAIN_NAME.fullmatch(name) or ".." in name:
        raise BadCassetteName(
            f"invalid cassette name {name!r}: use 1-128 letters, digits, '_', '-' or '.', "
            "not starting with '.' and without '/' or '..'"
        )
    return name
