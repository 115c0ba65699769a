"""A running proxy: start-up checks, the store and server opened and closed together, `serve` until a signal."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web

from ..adapters import open_upstream
from ..catalog import Catalog
from ..config import ProxyConfig
from ..errors import ListenError, cannot_listen
from ..names import some_names
from ..secrets import redact_query
from ..storable import not_stored_line
from ..store import StoreThread
from . import edge
from .edge import _Server
from .exchange import LINGER_SECONDS, Observer
from .handler import Proxy

log = logging.getLogger("claude_vcr.proxy")
"""One logger for the whole proxy package (tests and users filter on `claude_vcr.proxy`)."""


def cassette_counts(catalog: Catalog) -> dict[str, int]:
    """Recordings per cassette, for the start-up check."""
    return {row.name: row.recordings for row in catalog.cassettes()}


def shown_url(url: str) -> str:
    """A URL as printed: a password in it and credentials in its query replaced by `<REDACTED>`."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}:<REDACTED>@{host}" if ":" in user else f"<REDACTED>@{host}"
    return urlunsplit(parts._replace(netloc=netloc, query=redact_query(parts.query)))


def startup_warnings(config: ProxyConfig, counts: dict[str, int]) -> list[str]:
    """What a person should know before the first request: a default cassette with nothing to replay (what
    then happens to requests naming no cassette, in the words of the mode and fallback that decide it)."""
    if config.mode not in ("replay", "auto") or counts.get(config.cassette):
        return []
    others = [f"{name} ({count})" for name, count in sorted(counts.items()) if count]
    if config.mode == "auto" or config.fallback == "fallback":
        then = f"requests that name no cassette are forwarded to {shown_url(config.upstream)} and recorded"
    else:
        then = "requests that name no cassette will miss"
    there = f"cassettes in {config.db}: {some_names(others)}" if others else f"{config.db} has no recordings"
    return [
        f"claude-vcr: warning: cassette {config.cassette!r} has no recordings, so {then}; {there}. "
        "Pick one with --cassette NAME, or per request with the base URL http://HOST:PORT/c/NAME."
    ]


def creates_db(config: ProxyConfig) -> bool:
    """Strict replay only reads: a db that does not exist is a wrong --db, never a new empty file."""
    return not (config.mode == "replay" and config.fallback == "strict")


def listen_error(config: ProxyConfig, error: OSError) -> ListenError:
    """Cannot listen: in use (suggest --port 0), or not ours to bind."""
    return cannot_listen(config.host, config.port, error)


@dataclass
class RunningProxy:
    """A started proxy: where it listens and what it serves."""

    url: str
    config: ProxyConfig
    warnings: list[str] = field(default_factory=list)
    """Said once at start (see `startup_warnings`)."""
    store: StoreThread | None = None
    """Its counts of saves (`saved`, `failed`) are the summary `serve` prints when it stops."""
    proxy: Proxy | None = field(default=None, repr=False)
    """The request handler, for in-process callers that set per-cassette policies."""

    def not_stored(self) -> dict[str, int]:
        """Answers this run passed through without storing them, by why (transient errors...)."""
        return dict(self.proxy.recorder.not_stored) if self.proxy is not None else {}

    def banner(self) -> str:
        mode = self.config.mode + (f" ({self.config.fallback})" if self.config.mode == "replay" else "")
        return (
            f"claude-vcr listening on {self.url} mode={mode} cassette={self.config.cassette} "
            f"db={self.config.db} upstream={shown_url(self.config.upstream)}"
        )


class RequestLog:
    """The per-request lines on a stream, written once per event-loop turn: a logging record per request
    cost 15% of replay time in a profile."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        if not self.lines:
            asyncio.get_running_loop().call_soon(self.flush)
        self.lines.append(line)

    def flush(self) -> None:
        lines, self.lines = self.lines, []
        if lines:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()


OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class ResourceWarnings:
    """The event loop's exception handler while serving: running out of file descriptors is one log line a
    second at most (asyncio's accept loop reports every failed accept, with a traceback), the rest as usual."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.said_at: float | None = None
        self.unsaid = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if not (isinstance(error, OSError) and error.errno in OUT_OF_RESOURCES):
            loop.default_exception_handler(context)
            return
        now = self.clock()
        if self.said_at is not None and now - self.said_at < 1.0:
            self.unsaid += 1
            return
        more = f" ({self.unsaid} more since the last line)" if self.unsaid else ""
        log.error(
            "claude-vcr: out of resources (%s): new connections wait until some close; raise the limit "
            "(ulimit -n) or make fewer at once%s",
            error.strerror or error,
            more,
        )
        self.said_at, self.unsaid = now, 0


@asynccontextmanager
async def running(
    config: ProxyConfig, say: Callable[[str], None] | None = None, observer: Observer | None = None
) -> AsyncIterator[RunningProxy]:
    """Open the store, start listening, and on exit stop cleanly and leave the db as one file."""
    store = await StoreThread.open(config.db, create=creates_db(config))
    upstream = open_upstream(config)
    proxy = Proxy(config, store, upstream, say, observer)
    loop = asyncio.get_running_loop()
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(ResourceWarnings())

    def make_request(*args: Any) -> web.BaseRequest:
        return web.BaseRequest(*args, loop, client_max_size=edge.MAX_REQUEST_BYTES)

    # aiohttp's low-level server: every path goes to one handler, without routing or middlewares
    server = _Server(
        proxy.handle,
        request_factory=make_request,
        access_log=None,
        header_timeout=config.header_timeout,
        lingering_time=LINGER_SECONDS,
    )
    runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=5)
    try:
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port)
        try:
            await site.start()
        except OSError as error:
            raise listen_error(config, error) from error
        host, port = runner.addresses[0][:2]
        shown_host = f"[{host}]" if ":" in host else host
        warnings = startup_warnings(config, await store.read(cassette_counts))
        yield RunningProxy(
            url=f"http://{shown_host}:{port}", config=config, warnings=warnings, store=store, proxy=proxy
        )
    finally:
        await runner.cleanup()
        await proxy.offload.close()
        await upstream.close()
        await store.close()
        loop.set_exception_handler(previous_handler)


def serve(config: ProxyConfig, announce=print) -> int:
    """Run until Ctrl-C or SIGTERM, then shut down cleanly; returns how many recordings could not be
    stored (each was logged as `store-error` when it happened)."""
    failed = 0

    async def main() -> None:
        nonlocal failed
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        request_log = RequestLog(sys.stdout)
        async with running(config, request_log) as proxy:
            announce(proxy.banner())
            for warning in proxy.warnings:
                print(warning, file=sys.stderr, flush=True)
            await stop.wait()
            announce("claude-vcr: shutting down")
        assert proxy.store is not None
        failed = proxy.store.failed
        if proxy.store.saved or failed:
            announce(
                f"claude-vcr: {proxy.store.saved} recording(s) stored, {failed} could not be stored"
                + (" (see the store-error lines above)" if failed else "")
            )
        not_stored = proxy.not_stored()
        if not_stored:
            announce(not_stored_line(not_stored))

    asyncio.run(main())
    return failed
