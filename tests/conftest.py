"""Shared fixtures: a background event loop, the scripted upstream, proxies on free ports, temp dbs."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web
from claude_vcr.config import ProxyConfig
from claude_vcr.proxy import RunningProxy, running

from tests.scripted_upstream import ScriptedUpstream

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent
TEST_API_KEY = "sk-ant-api03-EXAMPLE-TESTKEY-do-not-store-0123456789abcdef"


class LoopThread:
    """An asyncio loop in a background thread, so synchronous clients (SDK, subprocesses) reach servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@dataclass
class UpstreamServer:
    """The scripted upstream listening on 127.0.0.1; `stop()` makes it unreachable."""

    script: ScriptedUpstream
    url: str
    runner: web.AppRunner
    loop_thread: LoopThread

    @property
    def calls(self):
        return self.script.calls

    def stop(self) -> None:
        self.loop_thread.run(self.runner.cleanup())


@pytest.fixture
def upstream(loop_thread: LoopThread) -> Iterator[UpstreamServer]:
    script = ScriptedUpstream()

    async def start() -> tuple[web.AppRunner, str]:
        script.loop = asyncio.get_running_loop()
        runner = web.AppRunner(script.app(), access_log=None, shutdown_timeout=1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"

    runner, url = loop_thread.run(start())
    server = UpstreamServer(script, url, runner, loop_thread)
    yield server
    script.release()
    loop_thread.run(runner.cleanup())


class ProxyHandle:
    """A proxy started by the `proxy` fixture; `stop()` shuts it down as Ctrl-C would."""

    def __init__(self, loop_thread: LoopThread, config: ProxyConfig) -> None:
        self.loop_thread = loop_thread
        self.config = config
        self._context: AbstractAsyncContextManager[RunningProxy] = running(config)
        self.running: RunningProxy = loop_thread.run(self._context.__aenter__())
        self.stopped = False

    @property
    def url(self) -> str:
        return self.running.url

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.loop_thread.run(self._context.__aexit__(None, None, None))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "vcr.db"


@pytest.fixture
def proxy(
    loop_thread: LoopThread, db_path: Path, upstream: UpstreamServer
) -> Iterator[Callable[..., ProxyHandle]]:
    """Start proxies on free ports: `proxy(mode="replay")`; defaults to the test's db and upstream."""
    started: list[ProxyHandle] = []

    def start(**overrides: Any) -> ProxyHandle:
        settings: dict[str, Any] = {"db": db_path, "upstream": upstream.url, "port": 0}
        settings.update(overrides)
        handle = ProxyHandle(loop_thread, ProxyConfig(**settings))
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()


def stored_json(value: str | bytes | None):
    """A JSON metadata column as the store writes it (text, or zstd when long), decoded."""
    import zstandard
    from claude_vcr.compression import decode_json

    return decode_json(value, zstandard.ZstdDecompressor())


def unreachable_url() -> str:
    """A loopback URL where nothing listens: an upstream that is down."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def claude() -> str:
    """The Claude Code CLI; missing, it fails the run in CI and skips elsewhere."""
    binary = claude_code_binary()
    if binary is None:
        message = "Claude Code CLI not found: run `npm ci --prefix tests/node` (or set VCR_CLAUDE)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


def claude_code_binary() -> str | None:
    """The npm-installed Claude Code CLI: VCR_CLAUDE, then tests/node's node_modules, then PATH."""
    candidates = [os.environ.get("VCR_CLAUDE"), str(REPO / "tests/node/node_modules/.bin/claude")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    return shutil.which("claude")
