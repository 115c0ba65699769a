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
