"""The one way tests run servers on 127.0.0.1: an event loop in a thread, scripted aiohttp apps on free ports.

Synchronous clients (the SDK, urllib, subprocesses) reach servers on the loop thread; a scripted server is
any object with an `app()` method, and `serving()` runs it for the duration of a block.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from aiohttp import web

T = TypeVar("T")


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unreachable_url() -> str:
    """A loopback URL where nothing listens: an upstream that is down."""
    return f"http://127.0.0.1:{free_port()}"


def wait_listening(port: int, deadline: float, alive: Callable[[], bool] = lambda: True) -> bool:
    """Wait until something accepts connections on the port; False at the deadline or once `alive()` is not."""
    while time.monotonic() < deadline and alive():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class LoopThread:
    """An asyncio loop in a background thread, so synchronous clients reach servers on it; `close()` stops the
    loop, cancels what is left on it and closes it."""

    def __init__(self, name: str = "test-loop") -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
            left = asyncio.all_tasks(self.loop)
            for task in left:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def __enter__(self) -> LoopThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Gate:
    """Where a scripted stream holds until the test (from any thread) opens it; the app's shutdown opens it too,
    so a held stream never outlives its server."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, app: web.Application) -> None:
        app.on_startup.append(self._started)
        app.on_shutdown.append(self._shutdown)

    async def _started(self, app: web.Application) -> None:
        self._loop = asyncio.get_running_loop()

    async def _shutdown(self, app: web.Application) -> None:
        self._event.set()

    def open(self) -> None:
        assert self._loop is not None, "start the server first"
        self._loop.call_soon_threadsafe(self._event.set)

    async def wait(self) -> None:
        await self._event.wait()


class Scripted(Protocol):
    def app(self) -> web.Application: ...


S = TypeVar("S", bound=Scripted)


@dataclass
class LoopbackServer(Generic[S]):
    """A scripted server listening on 127.0.0.1; `stop()` makes it unreachable (safe to call again)."""

    script: S
    url: str
    port: int
    loop_thread: LoopThread
    runner: web.AppRunner = field(repr=False)
    stopped: bool = False

    @property
    def calls(self) -> Any:
        """The requests the script has seen (for scripts that keep them)."""
        return self.script.calls  # type: ignore[attr-defined]

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.loop_thread.run(self.runner.cleanup())


@contextmanager
def serving(loop_thread: LoopThread, script: S, *, path: str = "", port: int = 0) -> Iterator[LoopbackServer[S]]:
    """Run a scripted server on 127.0.0.1 (a free port unless told) for the block; `url` ends with `path`."""

    async def start() -> web.AppRunner:
        runner = web.AppRunner(script.app(), access_log=None, shutdown_timeout=1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner

    runner = loop_thread.run(start())
    bound = runner.addresses[0][1]
    server = LoopbackServer(script, f"http://127.0.0.1:{bound}{path}", bound, loop_thread, runner)
    try:
        yield server
    finally:
        server.stop()


@dataclass
class SilentUpstream:
    """A loopback port that takes connections and never answers: anything waiting on it waits for ever."""

    url: str
    listener: socket.socket

    def connections(self) -> int:
        """How many connections arrived (the backlog, taken without blocking)."""
        count = 0
        while True:
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1


@contextmanager
def silent_upstream() -> Iterator[SilentUpstream]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.setblocking(False)
        yield SilentUpstream(f"http://127.0.0.1:{listener.getsockname()[1]}", listener)
