"""What a value read from a db may be before it is used: a vcr.db travels through git, so its paths, methods,
statuses, headers and text are someone else's data. Pure checks, shared by every reader (the proxy's replay,
`verify`, `export`, the terminal and the ui), each raising one clear error instead of acting on the value."""

from __future__ import annotations

import re

from .errors import DatabaseError


class StoredValueError(DatabaseError, ValueError):
    """A stored value claude-vcr never writes (a path that names another host, text in a status, a header
    with CR/LF): the db is damaged or was edited to make a reader misbehave."""


_PATH = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*")
"""A request target in origin form: starts with one '/', then URL characters only (no space, control
character, backslash or '#')."""
_METHOD = re.compile(r"[A-Z]{1,16}")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}")
"""An HTTP header name (RFC 9110 token)."""
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\U0010ffff]*")
"""A header value: visible characters, spaces and tabs; never CR, LF, NUL or another control character."""
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
"""What a terminal acts on instead of printing (ESC starts OSC 52 clipboard writes and cursor moves, CR
overwrites a line) and the bidirectional overrides that hide or reorder text; tab and newline are kept."""


def request_path(path: object) -> str:
    """A stored path that can only be appended to a base URL: `//host/...` or `@host:port/...` could move
    a request (and its API key) to a host the db's author picks."""
    if not isinstance(path, str) or not _PATH.fullmatch(path) or path.startswith("//") or len(path) > 65536:
        raise StoredValueError(f"stored path {shown(path)} is not a plain request path; refused")
    return path


def method(value: object) -> str:
    """A stored HTTP method: upper-case letters only."""
    if not isinstance(value, str) or not _METHOD.fullmatch(value):
        raise StoredValueError(f"stored method {shown(value)} is not an HTTP method; refused")
    return value


def status(value: object) -> int:
    """A stored status: an integer from 100 to 599 (SQLite keeps text in an INTEGER column as text)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
        raise StoredValueError(f"stored status {shown(value)} is not an HTTP status (100-599); refused")
    return value


def headers(pairs: object) -> list[tuple[str, str]]:
    """Stored headers as (name, value) pairs of strings, a token name and a value without CR, LF or NUL
    (which would split one header into two, or end the head early, on the way to a client)."""
    if not isinstance(pairs, list):
        raise StoredValueError(f"stored headers {shown(pairs)} are not a list of pairs; refused")
    checked: list[tuple[str, str]] = []
    for pair in pairs:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
            raise StoredValueError(f"stored header {shown(pair)} is not a (name, value) pair; refused")
        name, value = pair
        if not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            raise StoredValueError(f"stored header {shown(name)}: {shown(value)} has characters HTTP forbids; refused")
        checked.append((name, value))
    return checked


def printable(text: str) -> str:
    """Text for a terminal: control characters (ESC, CR, BEL, C1) and bidirectional overrides shown as
    `\\u001b`-style escapes (valid inside JSON strings too), so a db's text can never write to the clipboard,
    move the cursor or hide itself."""
    return _CONTROL.sub(_escape, text)


def printable_line(text: str) -> str:
    """`printable`, and newlines and tabs escaped too: for one line of a listing."""
    return printable(text).replace("\n", "\\n").replace("\t", "\\t")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def shown(value: object, limit: int = 80) -> str:
    """A value for an error message: repr'd (so control characters show as escapes), cut at `limit`."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
