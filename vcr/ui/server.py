"""The viewer's aiohttp server: routes, security headers, one reading thread over a read-only connection.

Every page is built in one worker thread that owns the `Catalog` (sqlite3 calls block), so the event loop
only moves bytes; a cassette's own regular expressions (the misses page applies its stored rules) run in a
worker process with a deadline instead (`misses.py`), where a backtracking one can be stopped. The db is opened read-only (`catalog.connect_readonly`): the viewer never changes a byte
of it. Bound to loopback, it also refuses requests whose Host is not a loopback name (DNS rebinding would
otherwise let a web page read recorded prompts).
"""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from ..catalog import Catalog
from ..errors import ClaudeVCRError, NotFound, cannot_listen
from ..lint import lint, lint_detail
from ..loopback import is_loopback
from ..proxy.offload import Offload
from . import pages
from .misses import Misses

PAGE_SIZE = 100
"""Recordings per cassette page."""
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
"""No inline script or style, nothing from elsewhere: a payload that slipped past escaping still cannot run."""
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
STATIC = {"ui.css": "text/css", "ui.js": "text/javascript"}
LOOPBACK_ONLY = web.AppKey("loopback_only", bool)
"""Whether the viewer is bound to loopback, and so answers loopback Host names only."""


@dataclass
class Viewer:
    """What the pages are built from: the open catalog, lint results of this session (the misses page has its
    own builder, `misses.Misses`)."""

    catalog: Catalog
    lint_status: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    """Per cassette checked in this session: (recordings, errors, warnings)."""

    def index(self) -> str:
        return pages.index_page(str(self.catalog.path), self.catalog.stats(), self.lint_status)

    def cassette(self, name: str, text: str, offset: int) -> str:
        rows, total = self.catalog.page(name, text=text, offset=offset, limit=PAGE_SIZE)
        return pages.cassette_page(name, rows, total, text=text, offset=offset, limit=PAGE_SIZE)

    def lint(self, name: str) -> str:
        self.catalog.cassette_info(name)  # an unknown cassette is a 404 before anything is read
        results = lint(self.catalog, name)
        self.lint_status[name] = (
            len(results),
            sum(r.errors for r in results),
            sum(r.warnings for r in results),
        )
        return pages.lint_page(name, results)

    def recording(self, recording_id: int, events_from: int = 0) -> str:
        detail = self.catalog.detail(recording_id)
        return pages.recording_page(detail, lint_detail(detail), events_from)


OFFSET = re.compile(r"[0-9]{1,15}")
"""A page offset as the viewer's own links write it."""


@web.middleware
async def guard(request: web.Request, handler: Callable) -> web.StreamResponse:
    """Security headers on every answer; errors as a short HTML page, never a traceback; on a loopback
    bind, only loopback Host names."""
    if request.app[LOOPBACK_ONLY] and not is_loopback(request.url.host or ""):
        response: web.StreamResponse = _html(
            pages.error_page(403, "this viewer answers loopback names only"), 403
        )
    else:
        try:
            response = await handler(request)
        except web.HTTPException as error:
            response = _html(pages.error_page(error.status, error.reason), error.status)
        except NotFound as error:
            response = _html(pages.error_page(404, str(error)), 404)
        except ClaudeVCRError as error:
            response = _html(pages.error_page(400, str(error)), 400)
        except sqlite3.Error as error:  # the file changed under the viewer (replaced, truncated): say so
            response = _html(pages.error_page(503, f"the database could not be read: {error}"), 503)
    response.headers.update(SECURITY_HEADERS)
    return response


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8")


def make_app(catalog: Catalog, *, misses: Path | None = None, loopback: bool = True) -> web.Application:
    """The viewer as an aiohttp application over an open (read-only) catalog."""
    viewer = Viewer(catalog)
    executor = ThreadPoolExecutor(1, thread_name_prefix="claude-vcr-ui")
    offload = Offload()  # a cassette's own regular expressions, with a deadline (never on the reading thread)
    static = {name: (resources.files(__package__) / name).read_bytes() for name in STATIC}

    async def read(func: Callable[..., Any], *args: Any) -> Any:
        """`func(catalog, *args)` on the reading thread."""
        return await asyncio.get_running_loop().run_in_executor(executor, func, catalog, *args)

    saved_misses = Misses(misses, read, offload)

    async def page(build: Callable[..., str], *args: Any) -> web.Response:
        return _html(await asyncio.get_running_loop().run_in_executor(executor, build, *args))

    async def index(request: web.Request) -> web.Response:
        return await page(viewer.index)

    async def cassette(request: web.Request) -> web.Response:
        raw = request.query.get("offset", "0")
        if not OFFSET.fullmatch(raw):  # 1e23, -1 or 10**23 (past SQLite's integers) are all refused
            raise web.HTTPBadRequest(reason="offset must be a whole number below 10^15")
        offset = int(raw)
        return await page(viewer.cassette, request.match_info["name"], request.query.get("q", ""), offset)

    async def cassette_lint(request: web.Request) -> web.Response:
        return await page(viewer.lint, request.match_info["name"])

    async def recording(request: web.Request) -> web.Response:
        recording_id = int(request.match_info["id"])
        if recording_id >= 2**63:  # beyond SQLite's integers: no such row
            raise NotFound(f"no recording with id {recording_id}")
        events_from = request.query.get("events", "0")
        if not OFFSET.fullmatch(events_from):
            raise web.HTTPBadRequest(reason="events must be a whole number below 10^15")
        return await page(viewer.recording, recording_id, int(events_from))

    async def missed(request: web.Request) -> web.Response:
        return _html(await saved_misses.page())

    async def asset(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in static:
            raise web.HTTPNotFound(reason=f"no file {name}")
        return web.Response(body=static[name], content_type=STATIC[name], charset="utf-8")

    async def stop_workers(app: web.Application) -> None:
        """Before waiting for pages still being built: a worker stuck in a regex is killed, not awaited."""
        await offload.close()

    async def shutdown(app: web.Application) -> None:
        executor.shutdown(wait=True)

    app = web.Application(middlewares=[guard])
    app[LOOPBACK_ONLY] = loopback
    app.router.add_get("/", index)
    app.router.add_get("/c/{name}", cassette)
    app.router.add_get("/c/{name}/lint", cassette_lint)
    app.router.add_get(r"/r/{id:\d+}", recording)
    app.router.add_get("/misses", missed)
    app.router.add_get("/static/{name}", asset)
    app.on_shutdown.append(stop_workers)
    app.on_cleanup.append(shutdown)
    return app


@asynccontextmanager
async def running(
    db: Path, host: str = "127.0.0.1", port: int = 8100, misses: Path | None = None
) -> AsyncIterator[str]:
    """The viewer listening; yields its URL. The db is opened read-only first, so a bad one fails here."""
    catalog = Catalog.open(db)
    runner = web.AppRunner(make_app(catalog, misses=misses, loopback=is_loopback(host)), access_log=None)
    try:
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as error:
            raise cannot_listen(host, port, error) from error
        bound, bound_port = runner.addresses[0][:2]
        yield f"http://{f'[{bound}]' if ':' in bound else bound}:{bound_port}/"
    finally:
        await runner.cleanup()
        catalog.close()


def serve(
    db: Path,
    host: str = "127.0.0.1",
    port: int = 8100,
    misses: Path | None = None,
    open_browser: bool = False,
    announce: Callable[[str], None] = print,
) -> None:
    """Run the viewer until Ctrl-C or SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with running(db, host, port, misses) as url:
            announce(f"claude-vcr ui on {url} (read only: {db}); Ctrl-C stops it")
            if open_browser:
                import webbrowser

                await loop.run_in_executor(None, webbrowser.open, url)
            await stop.wait()

    asyncio.run(main())
