"""Which HTTP headers are forwarded, stored and replayed: secrets never reach the db."""

from __future__ import annotations

from collections.abc import Iterable

from .secrets import is_credential_header, is_credential_value

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
"""Meaningful for one connection only (RFC 9110 7.6.1); never forwarded or stored."""

RECOMPUTED = frozenset({"content-length", "content-encoding", "host"})
"""Set by whoever sends the bytes: the stored body is decoded, so its length and encoding are recomputed."""

VCR_CONTROL_HEADERS = frozenset({"x-vcr-cassette"})
"""Addressed to the proxy itself; never forwarded upstream."""

Headers = list[tuple[str, str]]

_NEVER_PASSED_ON = HOP_BY_HOP | RECOMPUTED | VCR_CONTROL_HEADERS
_NOT_FOR_CLIENT = HOP_BY_HOP | RECOMPUTED


def is_secret(name: str, value: str = "") -> bool:
    """A credential by name (fail safe: `secrets.CREDENTIAL_WORDS` anywhere in it, bar a short allow-list)
    or by value (an auth scheme or a credential shape under any name)."""
    return is_credential_header(name) or bool(value) and is_credential_value(value)


def for_upstream(headers: Iterable[tuple[str, str]]) -> Headers:
    """The client's headers as sent upstream: credentials kept, plain bytes asked for."""
    kept = [
        (name, value)
        for name, value in headers
        if name.lower() not in _NEVER_PASSED_ON and name.lower() != "accept-encoding"
    ]
    kept.append(("Accept-Encoding", "identity"))
    return kept


def for_storage(headers: Iterable[tuple[str, str]]) -> Headers:
    """Headers as written to the db: no secrets, nothing that belongs to one connection."""
    return [
        (name, value)
        for name, value in headers
        if not is_secret(name, value) and name.lower() not in _NEVER_PASSED_ON
    ]


def for_client(headers: Iterable[tuple[str, str]], replaced: frozenset[str] = frozenset()) -> Headers:
    """Upstream or stored response headers as sent to the client (without the lower-case names in `replaced`,
    which the caller sets); lengths are recomputed by aiohttp."""
    dropped = _NOT_FOR_CLIENT | replaced if replaced else _NOT_FOR_CLIENT
    return [(name, value) for name, value in headers if name.lower() not in dropped]


NEVER_REPLAYED = frozenset(
    {"set-cookie", "set-cookie2", "location", "content-location", "refresh", "alt-svc"}
)
"""A stored answer must not send the client elsewhere or plant state in it: never replayed from a db."""

_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def replay_problem(status: object, headers: Iterable[tuple[object, object]]) -> str | None:
    """Why a stored status and headers cannot be replayed (a db from elsewhere is data): a status that is not
    an int in 200-599 (1xx are interim), a redirect (3xx with a Location), a header that is not a token name with a one-line
    latin-1 value; None when they can."""
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        return f"its stored status {str(status)[:40]!r} is not an HTTP status"
    if status < 200:  # an interim answer sent as the final one would desynchronise the connection
        return f"its stored status {status} is an interim answer, never a final one"
    for name, value in headers:
        if not isinstance(name, str) or not name or not set(name) <= _TOKEN:
            return f"a stored header name {str(name)[:40]!r} is not an HTTP token"
        if not isinstance(value, str) or any(ord(c) < 32 and c != "\t" or c == "\x7f" for c in value):
            return f"stored header {name} has control characters"
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            return f"stored header {name} is not latin-1 text"
        if 300 <= status <= 399 and name.lower() == "location":
            return f"it is a redirect ({status} to {value[:80]!r}), and claude-vcr never replays redirects"
    return None


def for_replay(headers: Iterable[tuple[str, str]], replaced: frozenset[str] = frozenset()) -> Headers:
    """Stored response headers as replayed: `for_client`, less what redirects, sets cookies or frames."""
    return for_client(headers, NEVER_REPLAYED | replaced)
