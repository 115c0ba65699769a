"""The CPU-heavy reads of a large request body (its key; its prompt excerpt and secrets when it is saved) in a
child process. Parsing, normalising, hashing and regex-scanning megabytes of JSON is pure Python and long
calls into C that hold the interpreter lock: in a thread they still stall the event loop, and so every other
client, for up to hundreds of milliseconds at a time. One worker process, started on the first large body and
stopped with the server; small bodies are read where they are (a few milliseconds)."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import BaseContext
from typing import Any, TypeVar

from ..matching import KeyedRequest, Rules, key_facts, key_request
from ..request_scan import RequestScan, scan_request

log = logging.getLogger("claude_vcr.proxy")

IN_PROCESS_BYTES = 64 * 1024
"""Bodies up to this size are read in the proxy's own process; larger ones in the child process."""

T = TypeVar("T")


def _ignore_interrupts() -> None:
    """The worker's start: Ctrl-C reaches the whole process group, and the server stops the worker itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Offload:
    """Reads large request bodies for one running proxy in a child process (spawned, not forked: the server
    has threads), or in a thread if no child process can be started here."""

    def __init__(self, in_process_bytes: int = IN_PROCESS_BYTES, context: BaseContext | None = None) -> None:
        self.in_process_bytes = in_process_bytes
        self._context = context or multiprocessing.get_context("spawn")
        self._pool: Executor | None = None
        self._broken = False

    async def key(self, method: str, path: str, query: str, body: bytes, rules: Rules) -> KeyedRequest:
        """The request's key, the same as `key_request` gives wherever it is computed (small bodies on the
        loop: keying them costs less than sending them elsewhere)."""
        if len(body) <= self.in_process_bytes:
            return key_request(method, path, query, body, rules)
        facts = await self._call(key_facts, method, path, query, body, rules)
        return KeyedRequest.from_facts(facts, body, rules, path)

    async def scan(self, body: bytes) -> RequestScan | None:
        """A large request body's excerpt and secrets (`request_scan`); None for a small one, which saving
        reads itself."""
        if len(body) <= self.in_process_bytes:
            return None
        return await self._call(scan_request, body)

    async def _call(self, func: Callable[..., T], *args: Any) -> T:
        if not self._broken:
            try:
                return await asyncio.get_running_loop().run_in_executor(self._started(), func, *args)
            except (BrokenProcessPool, OSError) as error:  # no child process here: a thread instead
                log.warning("claude-vcr: large request bodies are read in a thread: no worker process (%s)", error)
                self._broken = True
        return await asyncio.to_thread(func, *args)

    def _started(self) -> Executor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=self._context, initializer=_ignore_interrupts
            )
        return self._pool

    @property
    def started(self) -> bool:
        """Whether a worker process was asked for (by a large body)."""
        return self._pool is not None

    async def close(self) -> None:
        """Stop the worker process (waiting for it, off the loop), if one was started."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
