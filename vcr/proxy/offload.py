"""The CPU-heavy work on a large request body (its key; its prompt excerpt, secrets and compressed chunks
when it is saved), and keying under rules with regular expressions of their own (with a deadline), in a
child process. Parsing, normalising, hashing and regex-scanning megabytes of JSON is pure Python and long
calls into C that hold the interpreter lock: in a thread they still stall the event loop, and so every other
client, for up to hundreds of milliseconds at a time. One worker process, started when first needed and
stopped with the server; small bodies under rules without regexes of their own are keyed where they are."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import sys
import types
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing.context import BaseContext
from typing import Any, TypeVar

from .. import worker
from ..errors import RulesError
from ..matching import KeyedRequest, Rules, key_facts, key_request
from ..records import Recording
from ..request_scan import RequestScan, scan_request
from ..response_scan import ResponseScan, response_part, scan_response

log = logging.getLogger("claude_vcr.proxy")

IN_PROCESS_BYTES = 64 * 1024
"""Bodies up to this size are read in the proxy's own process; larger ones in the child process."""
RULES_SECONDS = 10.0
"""The longest keying a request may take under rules with regular expressions of their own (a cassette's
stored rules come from whoever wrote the db): such requests are keyed in the child process, whatever their
size, and past this the child is stopped and the request refused. Python's `re` has no time limit of its
own; `matching.nested_repeat` refuses the usual catastrophic shapes at load, this bounds the rest."""

T = TypeVar("T")


@contextmanager
def _main_hidden() -> Iterator[None]:
    """A spawned child runs the parent's main script again (as `__mp_main__`) to find what it was sent: a
    user's script with no `if __name__ == "__main__"` guard would run twice. The worker needs nothing from
    it, so the child is started while `__main__` is an empty module."""
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


class Offload:
    """Reads large request bodies, and keys requests under rules with regular expressions, for one running
    proxy in a child process (spawned, not forked: the server has threads), or in a thread if no child process
    can be started here."""

    def __init__(self, in_process_bytes: int = IN_PROCESS_BYTES, context: BaseContext | None = None) -> None:
        self.in_process_bytes = in_process_bytes
        self._context = context or multiprocessing.get_context("spawn")
        self._pool: Executor | None = None
        self._ready: set[Executor] = set()
        """The pool whose child has started (the spawn and imports are not counted against a deadline)."""
        self._broken = False

    async def key(self, method: str, path: str, query: str, body: bytes, rules: Rules) -> KeyedRequest:
        """The request's key, the same as `key_request` gives wherever it is computed (small bodies on the
        loop: keying them costs less than sending them elsewhere)."""
        if rules.replace:  # patterns from elsewhere: in the child, with a deadline
            facts = await self.under_rules(rules, "this request", key_facts, method, path, query, body, rules)
        elif len(body) <= self.in_process_bytes:
            return key_request(method, path, query, body, rules)
        else:
            facts = await self._call(key_facts, method, path, query, body, rules)
        return KeyedRequest.from_facts(facts, body, rules, path)

    async def under_rules(self, rules: Rules, what: str, func: Callable[..., T], *args: Any) -> T:
        """`func(*args)`, which applies rules with regular expressions of their own (they may come from
        elsewhere) to `what`, in the child with the RULES_SECONDS deadline; past it, RulesError."""
        try:
            return await self._call(func, *args, deadline=RULES_SECONDS)
        except asyncio.TimeoutError as error:
            patterns = ", ".join(repr(r.pattern) for r in rules.replace)
            raise RulesError(
                f"applying its regular expressions ({patterns}) to {what} took over {RULES_SECONDS:g} s,"
                " so it was stopped: a pattern that backtracks catastrophically on this text?"
            ) from error

    async def scan(self, body: bytes) -> RequestScan | None:
        """A large request body's excerpt, secrets and chunks (`request_scan`); None for a small one, which
        saving reads itself."""
        if len(body) <= self.in_process_bytes:
            return None
        return await self._call(scan_request, body)

    async def scan_response(self, recording: Recording, redact: bool) -> ResponseScan | None:
        """A large recorded response's secrets and stored forms (`response_scan`); None for a small one,
        which saving screens and compresses itself."""
        if recording.response_bytes <= self.in_process_bytes:
            return None
        return await self._call(scan_response, response_part(recording), redact)

    async def _call(self, func: Callable[..., T], *args: Any, deadline: float | None = None) -> T:
        """`func(*args)` in the child process; past `deadline` seconds the child is stopped (the next call
        starts another) and TimeoutError raised. A call the stopped child held is made again in a new one."""
        for _ in range(3):
            if self._broken:
                break
            pool = self._started()
            loop = asyncio.get_running_loop()
            if (
                deadline is not None and pool not in self._ready
            ):  # the deadline is for the call, not the start
                with _main_hidden():
                    started = loop.run_in_executor(pool, worker.ready)
                await started
                self._ready = {pool}
            with _main_hidden():  # the pool starts its child in `submit`
                future = loop.run_in_executor(pool, func, *args)
            try:
                return await asyncio.wait_for(future, deadline)
            except asyncio.TimeoutError:
                self._stop(pool)
                raise
            except (BrokenProcessPool, OSError) as error:
                if self._pool is not pool:  # another call's deadline stopped this child: again, in a new one
                    continue
                log.warning(
                    "claude-vcr: large request bodies are read in a thread: no worker process (%s)", error
                )
                self._broken = True
        return await asyncio.to_thread(func, *args)  # no deadline there: only `nested_repeat` guards it

    def _stop(self, pool: Executor) -> None:
        """Kill a child stuck in a call (Python cannot interrupt a regex) and forget its pool."""
        if self._pool is pool:
            self._pool = None
        kill = getattr(pool, "kill_workers", None)  # Python 3.14; before it, the pool's own process table
        if kill is not None:
            kill()
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def _started(self) -> Executor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=self._context, initializer=worker.start
            )
        return self._pool

    @property
    def started(self) -> bool:
        """Whether a worker process is running or starting (asked for by a large body or a rule's regex)."""
        return self._pool is not None

    async def close(self) -> None:
        """Stop the worker process (waiting for it, off the loop), if one was started."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
