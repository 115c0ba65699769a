"""A claude-vcr proxy running in-process on the loop thread, as the `proxy` fixture and the benchmarks start it."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from claude_vcr.config import ProxyConfig
from claude_vcr.proxy import RunningProxy, running

from tests.support.loopback import LoopThread


class ProxyHandle:
    """A running proxy; `stop()` shuts it down as Ctrl-C would (safe to call again)."""

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
