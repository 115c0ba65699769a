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


_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_.\-]")
_MAX_NAME = 128


def test_cassette_name(nodeid: str) -> str:
    """`tests/test_api.py::TestX::test_y[a-b]` -> `tests.test_api.TestX.test_y-a-b`: the pytest plugin's
    cassette for a test, and the name a pytest-recording cassette of that test is imported under. A name that
    had to be changed to fit the cassette-name rule (or cut to its length) gets a hash of the node id, so two
    tests never share a cassette by accident and the name is the same on every run."""
    import hashlib

    path, *names = nodeid.split("::")
    module = path[:-3] if path.endswith(".py") else path
    name = ".".join([module.replace("/", "."), *names])
    name = re.sub(r"\[(.*)\]$", lambda m: "-" + m.group(1), name)
    clean = _NOT_IN_NAME.sub("_", name).replace("..", "._")
    if clean.startswith((".", "-")):
        clean = "_" + clean
    if clean != name or len(clean) > _MAX_NAME:
        digest = hashlib.sha256(nodeid.encode()).hexdigest()[:10]
        clean = f"{clean[: _MAX_NAME - 11]}-{digest}"
    return clean


MAX_LISTED = 10
"""The most cassette names any message lists; the rest are counted ("and 74 more")."""


def some_names(names: list[str], limit: int = MAX_LISTED) -> str:
    """`a, b, c` or, past `limit`, `a, ..., j and 74 more`: a message stays a line, not a page."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def nearest(name: str, names: list[str]) -> str | None:
    """The existing cassette name a typo most likely meant (difflib's ratio at least 0.6), else None."""
    import difflib

    found = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    return found[0] if found and found[0] != name else None


def unknown_cassette(name: str, names: list[str]) -> str:
    """`no cassette named 'x' (did you mean 'y'?); cassettes: a, b and 3 more`."""
    if not names:
        return f"no cassette named {name!r}; the database has no cassettes"
    close = nearest(name, names)
    hint = f" (did you mean {close!r}?)" if close else ""
    return f"no cassette named {name!r}{hint}; cassettes: {some_names(names)}"
