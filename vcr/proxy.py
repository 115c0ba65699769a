"""The aiohttp reverse proxy: picks a cassette, replays a recording or forwards, tees and records."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from vcr import headers as header_rules
from vcr.matching import KEY_SCHEME, describe_request, request_key, short_key
from vcr.store import Recording, StoreThread

log = logging.getLogger("vcr.proxy")

MODES = ("auto", "record", "replay")
FALLBACKS = ("strict", "fallback")
CASSETTE_HEADER = "X-VCR-Cassette"
MAX_REQUEST_BYTES = 64 * 1024 * 1024
"""Twice the API's own 32 MB limit on Messages bodies."""

_CASSETTE_PREFIX = re.compile(r"^/c/([^/]*)(/.*)?$")
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")
_UPSTREAM_FAILURES = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


@dataclass
class ProxyConfig:
    """Everything `serve` can be told; the CLI fills it from flags and VCR_* variables."""

    db: Path = Path("vcr.db")
    mode: str = "auto"
    fallback: str = "strict"
    cassette: str = "default"
    upstream: str = "https://api.anthropic.com"
    host: str = "127.0.0.1"
    port: int = 8000
    record_errors: bool = False
    upstream_read_timeout: float = 600.0


class BadRequest(Exception):
    """A request the proxy refuses before doing anything with it."""


def validate_cassette_name(name: str) -> str:
    """Cassette names become directory names on export: plain names only."""
    if not _PLAIN_NAME.match(name) or ".." in name:
        raise BadRequest(
            f"invalid cassette name {name!r}: use 1-128 letters, digits, '_', '-' or '.', "
            "not starting with '.' and without '/' or '..'"
        )
    return name


def is_local_only(method: str, path: str) -> bool:
    """Telemetry and connection probes: forwarded when online, never stored, answered locally in replay."""
    return path.startswith("/api/event_logging/") or (method == "HEAD" and path == "/api/hello")


def error_body(error_type: str, message: str) -> bytes:
    """An Anthropic-shaped error, so SDKs and Claude Code show the message instead of a parse failure."""
    return json.dumps({"type": "error", "error": {"type": error_type, "message": message}}).encode()


def error_response(status: int, error_type: str, message: str) -> web.Response:
    return web.Response(
        status=status,
        body=error_body(error_type, message),
        content_type="application/json",
        headers={"x-should-retry": "false"},
    )


@dataclass
class Exchange:
    """One client request, as the proxy sees it after picking the cassette."""

    request: web.Request
    cassette: str
    method: str
    path: str
    query: str
    body: bytes
    key: str

    @property
    def target(self) -> str:
        """Path and raw query, as forwarded upstream and stored."""
        return f"{self.path}?{self.query}" if self.query else self.path


class Proxy:
    """Request handling for one running proxy; state is the config, the store thread and the session."""

    def __init__(self, config: ProxyConfig, store: StoreThread, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.store = store
        self.session = session

    def _exchange(self, request: web.Request, body: bytes) -> Exchange:
        raw_path = request.rel_url.raw_path
        cassette = request.headers.get(CASSETTE_HEADER) or self.config.cassette
        prefixed = _CASSETTE_PREFIX.match(raw_path)
        if prefixed:
            cassette = unquote(prefixed.group(1))
            raw_path = prefixed.group(2) or "/"
        validate_cassette_name(cassette)
        query = request.rel_url.raw_query_string
        return Exchange(
            request=request,
            cassette=cassette,
            method=request.method,
            path=raw_path,
            query=query,
            body=body,
            key=request_key(request.method, raw_path, query, body),
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            body = await request.read()
            exchange = self._exchange(request, body)
        except BadRequest as error:
            response = error_response(400, "invalid_request_error", str(error))
            self._log("rejected", None, request.method, request.path_qs, 400, started)
            return response
        response, outcome = await self._dispatch(exchange)
        self._log(outcome, exchange, exchange.method, exchange.target, response.status, started)
        return response

    async def _dispatch(self, exchange: Exchange) -> tuple[web.StreamResponse, str]:
        mode = self.config.mode
        if is_local_only(exchange.method, exchange.path):
            if mode == "replay":
                return self._local_answer(exchange), "local"
            return await self._forward(exchange, record=False, local_on_failure=True)
        if mode != "record":
            recording = await self.store.lookup(exchange.cassette, exchange.key)
            if recording is not None:
                return self._replay(recording), "hit"
            if mode == "replay" and self.config.fallback == "strict":
                return self._strict_miss(exchange), "miss"
        return await self._forward(exchange, record=True)

    def _local_answer(self, exchange: Exchange) -> web.Response:
        if exchange.method == "HEAD":
            return web.Response(status=200)
        return web.Response(status=200, body=b"{}", content_type="application/json")

    def _strict_miss(self, exchange: Exchange) -> web.Response:
        message = (
            f"claude-vcr: no recording for {exchange.method} {exchange.target} in cassette "
            f"'{exchange.cassette}' (key {short_key(exchange.key)}); strict replay never calls the "
            "upstream. Record it with --mode record or auto, or allow --fallback fallback."
        )
        response = error_response(400, "invalid_request_error", message)
        response.headers["x-vcr-outcome"] = "miss"
        response.headers["x-vcr-key"] = exchange.key
        return response

    def _replay(self, recording: Recording) -> web.Response:
        headers = CIMultiDict(header_rules.for_client(recording.response_headers))
        headers["x-vcr-outcome"] = "hit"
        headers["x-vcr-key"] = recording.key
        return web.Response(status=recording.status, body=recording.response_body, headers=headers)

    async def _forward(
        self, exchange: Exchange, *, record: bool, local_on_failure: bool = False
    ) -> tuple[web.StreamResponse, str]:
        """Send upstream and stream the answer to the client chunk by chunk, keeping the bytes to store."""
        url = self.config.upstream.rstrip("/") + exchange.target
        sent_at = time.perf_counter()
        try:
            upstream = await self.session.request(
                exchange.method,
                url,
                headers=header_rules.for_upstream(exchange.request.headers.items()),
                data=exchange.body if exchange.body or exchange.method not in ("GET", "HEAD") else None,
                allow_redirects=False,
            )
        except _UPSTREAM_FAILURES as error:
            if local_on_failure:
                return self._local_answer(exchange), "local"
            message = f"claude-vcr could not reach the upstream {self.config.upstream}: {error!r}"
            return error_response(502, "api_error", message), "upstream-error"
        outcome = "passthrough"
        async with upstream:
            response = web.StreamResponse(
                status=upstream.status,
                reason=upstream.reason,
                headers=CIMultiDict(header_rules.for_client(upstream.headers.items())),
            )
            storable = 200 <= upstream.status < 300 or self.config.record_errors
            response.headers["x-vcr-outcome"] = "recorded" if record and storable else "passthrough"
            response.headers["x-vcr-key"] = exchange.key
            await response.prepare(exchange.request)
            parts: list[bytes] = []
            chunks: list[tuple[int, float]] = []
            try:
                async for chunk in upstream.content.iter_any():
                    chunks.append((len(chunk), (time.perf_counter() - sent_at) * 1000))
                    parts.append(chunk)
                    await response.write(chunk)
            except (ConnectionResetError, asyncio.CancelledError):
                log.warning("client went away during %s %s; nothing stored", exchange.method, exchange.target)
                raise
            except _UPSTREAM_FAILURES as error:
                log.warning(
                    "upstream broke off %s %s (%r); nothing stored", exchange.method, exchange.target, error
                )
                response.force_close()
                raise
            if record and storable:
                recording = self._recording(exchange, upstream, b"".join(parts), chunks, sent_at)
                try:
                    await self.store.save(recording)
                    outcome = "recorded"
                except Exception:
                    log.exception("could not store %s %s", exchange.method, exchange.target)
                    outcome = "store-error"
            await response.write_eof()
        return response, outcome

    def _recording(
        self,
        exchange: Exchange,
        upstream: aiohttp.ClientResponse,
        body: bytes,
        chunks: list[tuple[int, float]],
        sent_at: float,
    ) -> Recording:
        model, stream = describe_request(exchange.body)
        return Recording(
            cassette=exchange.cassette,
            key=exchange.key,
            key_scheme=KEY_SCHEME,
            method=exchange.method,
            path=exchange.target,
            status=upstream.status,
            request_headers=header_rules.for_storage(exchange.request.headers.items()),
            request_body=exchange.body,
            response_headers=header_rules.for_storage(upstream.headers.items()),
            response_body=body,
            chunks=chunks,
            model=model,
            stream=stream,
            duration_ms=(time.perf_counter() - sent_at) * 1000,
            ttfb_ms=chunks[0][1] if chunks else None,
        )

    def _log(
        self, outcome: str, exchange: Exchange | None, method: str, target: str, status: int, started: float
    ) -> None:
        key = short_key(exchange.key) if exchange else "-" * 12
        cassette = f" [{exchange.cassette}]" if exchange and exchange.cassette != self.config.cassette else ""
        elapsed = (time.perf_counter() - started) * 1000
        log.info("%-11s %s %s %s %d %.0fms%s", outcome, key, method, target, status, elapsed, cassette)


@dataclass
class RunningProxy:
    """A started proxy: where it listens and what it serves."""

    url: str
    config: ProxyConfig

    def banner(self) -> str:
        mode = self.config.mode + (f" ({self.config.fallback})" if self.config.mode == "replay" else "")
        return (
            f"claude-vcr listening on {self.url} mode={mode} cassette={self.config.cassette} "
            f"db={self.config.db} upstream={self.config.upstream}"
        )


@asynccontextmanager
async def running(config: ProxyConfig) -> AsyncIterator[RunningProxy]:
    """Open the store, start listening, and on exit stop cleanly and leave the db as one file."""
    store = await StoreThread.open(config.db)
    session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=config.upstream_read_timeout),
        connector=aiohttp.TCPConnector(limit=0),
    )
    proxy = Proxy(config, store, session)
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5)
    try:
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        shown_host = f"[{host}]" if ":" in host else host
        yield RunningProxy(url=f"http://{shown_host}:{port}", config=config)
    finally:
        await runner.cleanup()
        await session.close()
        await store.close()


def serve(config: ProxyConfig, announce=print) -> None:
    """Run until Ctrl-C or SIGTERM, then shut down cleanly."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with running(config) as proxy:
            announce(proxy.banner())
            await stop.wait()
            announce("claude-vcr: shutting down")

    asyncio.run(main())
