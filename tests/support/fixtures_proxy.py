"""Fixtures for proxy tests: the loop thread, the scripted upstream, proxies on free ports, the test's db."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from claude_vcr.config import ProxyConfig
from claude_vcr.store import Store

from tests.support.loopback import LoopbackServer, LoopThread, serving
from tests.support.proxies import ProxyHandle
from tests.support.upstream import ScriptedUpstream


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    with LoopThread() as thread:
        yield thread


@pytest.fixture
def upstream(loop_thread: LoopThread) -> Iterator[LoopbackServer[ScriptedUpstream]]:
    """The scripted Anthropic upstream on 127.0.0.1; `stop()` makes it unreachable."""
    with serving(loop_thread, ScriptedUpstream()) as server:
        yield server


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "vcr.db"


@pytest.fixture
def proxy(
    loop_thread: LoopThread, db_path: Path, upstream: LoopbackServer[ScriptedUpstream]
) -> Iterator[Callable[..., ProxyHandle]]:
    """Start proxies on free ports: `proxy(mode="replay")`; defaults to the test's db and upstream."""
    started: list[ProxyHandle] = []

    def start(**overrides: Any) -> ProxyHandle:
        settings: dict[str, Any] = {"db": db_path, "upstream": upstream.url, "port": 0}
        settings.update(overrides)
        if settings.get("mode") == "replay" and not Path(settings["db"]).exists():
            Store(settings["db"]).close()  # strict replay opens no missing db: start from an empty one
        handle = ProxyHandle(loop_thread, ProxyConfig(**settings))
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.stop()
