"""The CPU-heavy work on a large request body (its key; its prompt excerpt, secrets and compressed chunks
when it is saved), and applying rules with regular expressions of their own (with a deadline), in child
processes. Parsing, normalising, hashing and regex-scanning megabytes of JSON is pure Python and long calls
into C that hold the interpreter lock: in a thread they still stall the event loop, and so every other client,
for up to hundreds of milliseconds at a time. A cassette's regular expressions may come from whoever wrote the
db and Python's `re` has no timeout, so they run where they can be killed.

Work is kept apart by who wrote the code that runs: one worker for large bodies without regular expressions
(our own code), and one per set of patterns (at most RULES_WORKERS alive, the least recently used stopped
first), so a pattern that backtracks for the whole deadline holds up only requests under the same patterns.
Workers start when first needed and stop with the server; small bodies under rules without regular
expressions of their own are keyed where they are."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import sys
import types
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from .. import worker
from ..errors import RulesError
from ..matching import KeyedRequest, Rules, key_facts, key_request
from ..records import Recording
from ..request_scan import RequestScan, scan_request
from ..response_scan import ResponseScan, response_part, scan_response

log = logging.getLogger("claude_vcr.proxy")

IN_PROCESS_BYTES = 64 * 1024
"""Bodies up to this size are read in the proxy's own process; larger ones in the bulk worker."""
RULES_SECONDS = 10.0
"""The longest applying rules with regular expressions of their own may take on one request (a cassette's
stored rules come from whoever wrote the db): such work runs in a worker process, whatever the body's size,
and past this the worker is stopped and the work refused. Python's `re` has no time limit of its own;
`matching.nested_repeat` refuses the usual catastrophic shapes at load, this bounds the rest."""
RULES_WORKERS = 4
"""Worker processes for regular expressions alive at once, one per set of patterns (least recently used
stopped first): a hostile cassette holds up only its own patterns' worker, without a process per cassette."""
ATTEMPTS = 3
"""How many workers one call is tried in when the one it ran in died under it (not by its own deadline)."""

T = TypeVar("T")


class NoWorker(Exception):
    """No worker process could be started here (the start itself failed)."""


class Stopped(Exception):
    """The worker was stopped under the call: its deadline, or the server stopping."""


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


class _Worker:
    """One child process (a one-process pool), started by its first call and stopped by a deadline or close."""

    def __init__(self, context: BaseContext) -> None:
        self.pool = ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=worker.start)
        self.ready = False
        """Whether the child has started (its spawn and imports are not counted against a deadline)."""
        self.starting = asyncio.Lock()
        self.turn = asyncio.Lock()
        """Calls under a deadline take turns, so each deadline counts its own call, not a queue."""
        self.users = 0
        """Calls waiting for or running in this worker: it is stopped to make room only when idle."""
        self.stopped = False

    async def start(self) -> None:
        """Start the child and wait until it answers; NoWorker if it cannot start."""
        async with self.starting:
            if self.ready:
                return
            if self.stopped:
                raise Stopped
            try:
                with _main_hidden():  # the pool starts its child in `submit`
                    started = asyncio.get_running_loop().run_in_executor(self.pool, worker.ready)
                await started
            except Exception as error:  # whatever Process.start raises, or a child that died starting
                if self.stopped:
                    raise Stopped from error
                raise NoWorker(str(error) or type(error).__name__) from error
            self.ready = True

    async def call(self, func: Callable[..., T], args: tuple[Any, ...], deadline: float | None) -> T:
        """`func(*args)` in the started child; TimeoutError past `deadline` (the caller stops the worker)."""
        try:
            with _main_hidden():
                future = asyncio.get_running_loop().run_in_executor(self.pool, func, *args)
        except (BrokenProcessPool, RuntimeError) as error:  # stopped (or died) since it started
            raise Stopped from error
        try:
            return await asyncio.wait_for(future, deadline)
        except BrokenProcessPool as error:
            raise Stopped from error

    def processes(self) -> list[BaseProcess]:
        return list((getattr(self.pool, "_processes", None) or {}).values())

    def stop(self, kill: bool) -> list[BaseProcess]:
        """Stop the child (killed if a call may be stuck in it: Python cannot interrupt a regex); returns its
        processes, for whoever waits for them to end."""
        self.stopped = True
        processes = self.processes()
        if kill:
            killer = getattr(self.pool, "kill_workers", None)  # Python 3.14; before it, the process table
            if killer is not None:
                killer()
            for process in processes:
                process.kill()
        self.pool.shutdown(wait=False, cancel_futures=True)
        return processes


class Offload:
    """Reads large request bodies in one worker process, and applies rules with regular expressions in
    another per set of patterns with a deadline, for one running proxy or viewer (spawned, not forked: the
    server has threads). Where no process can start here, large bodies are read in a thread, and rules with
    regular expressions are refused (nothing else could bound them)."""

    def __init__(self, in_process_bytes: int = IN_PROCESS_BYTES, context: BaseContext | None = None) -> None:
        self.in_process_bytes = in_process_bytes
        self._context = context or multiprocessing.get_context("spawn")
        self._bulk: _Worker | None = None
        self._rules: OrderedDict[tuple[str, ...], _Worker] = OrderedDict()
        """Workers for regular expressions by their patterns, least recently used first."""
        self._freed: asyncio.Condition | None = None
        """Said when a rules worker may have become idle (someone may be waiting for room)."""
        self._stopping: list[BaseProcess] = []
        """Children stopped but perhaps not yet ended: `close` waits for them."""
        self._no_process: str | None = None
        """Why no worker process could start here, once one failed to."""
        self._closed = False

    async def key(self, method: str, path: str, query: str, body: bytes, rules: Rules) -> KeyedRequest:
        """The request's key, the same as `key_request` gives wherever it is computed (small bodies on the
        loop: keying them costs less than sending them elsewhere)."""
        if rules.replace:  # patterns from elsewhere: in their worker, with a deadline
            facts = await self.under_rules(rules, "this request", key_facts, method, path, query, body, rules)
        elif len(body) <= self.in_process_bytes:
            return key_request(method, path, query, body, rules)
        else:
            facts = await self._bulk_call(key_facts, method, path, query, body, rules)
        return KeyedRequest.from_facts(facts, body, rules, path)

    async def under_rules(self, rules: Rules, what: str, func: Callable[..., T], *args: Any) -> T:
        """`func(*args)`, which applies rules with regular expressions of their own (they may come from
        elsewhere) to `what`, in the worker for those patterns with the RULES_SECONDS deadline; past it, or
        where no worker process can start, RulesError."""
        patterns = tuple(r.pattern for r in rules.replace)
        shown = ", ".join(repr(p) for p in patterns)
        try:
            return await self._rules_call(patterns, func, args)
        except asyncio.TimeoutError as error:
            raise RulesError(
                f"applying its regular expressions ({shown}) to {what} took over {RULES_SECONDS:g} s,"
                " so it was stopped: a pattern that backtracks catastrophically on this text?"
            ) from error
        except NoWorker as error:
            raise RulesError(
                f"no worker process could start to bound its regular expressions ({shown}) with a deadline"
                f" ({error}), so they were not applied to {what}"
            ) from error
        except Stopped as error:
            raise RulesError(
                f"applying its regular expressions ({shown}) to {what} was stopped: {error or 'the server is stopping'}"
            ) from error

    async def scan(self, body: bytes) -> RequestScan | None:
        """A large request body's excerpt, secrets and chunks (`request_scan`); None for a small one, which
        saving reads itself."""
        if len(body) <= self.in_process_bytes:
            return None
        return await self._bulk_call(scan_request, body)

    async def scan_response(self, recording: Recording, redact: bool) -> ResponseScan | None:
        """A large recorded response's secrets and stored forms (`response_scan`); None for a small one,
        which saving screens and compresses itself."""
        if recording.response_bytes <= self.in_process_bytes:
            return None
        return await self._bulk_call(scan_response, response_part(recording), redact)

    async def _bulk_call(self, func: Callable[..., T], *args: Any) -> T:
        """`func(*args)`, our own code on a large body, in the bulk worker; in a thread if no worker process
        can start here (no deadline is needed: nothing from elsewhere runs)."""
        for _ in range(ATTEMPTS):
            if self._no_process is not None or self._closed:
                break
            if self._bulk is None or self._bulk.stopped:
                self._bulk = _Worker(self._context)
            bulk = self._bulk
            try:
                await bulk.start()
                return await bulk.call(func, args, None)
            except NoWorker as error:
                self._failed_to_start(bulk, error)
            except Stopped:  # the child died under the call: again, in a new one
                self._retire(bulk, kill=True)
        return await asyncio.to_thread(func, *args)

    async def _rules_call(
        self, patterns: tuple[str, ...], func: Callable[..., T], args: tuple[Any, ...]
    ) -> T:
        """`func(*args)` in the worker for `patterns`, taking its turn there; TimeoutError past RULES_SECONDS
        of the call itself (the worker is then stopped: the next call starts another), NoWorker if no worker
        process can start, Stopped if the server stops under it or the call's worker keeps dying."""
        died = 0
        while True:
            if self._no_process is not None:
                raise NoWorker(self._no_process)
            found = await self._rules_worker(patterns)
            found.users += 1
            try:
                async with found.turn:
                    if found.stopped:  # stopped by the call before this one: take a turn in a new one
                        continue
                    try:
                        await found.start()
                    except NoWorker as error:
                        self._failed_to_start(found, error)
                        raise
                    try:
                        return await found.call(func, args, RULES_SECONDS)
                    except (asyncio.TimeoutError, asyncio.CancelledError):
                        self._retire(found, kill=True)  # it may be stuck: the next call's turn starts afresh
                        raise
                    except Stopped as error:
                        if self._closed:
                            raise Stopped("the server is stopping") from error
                        self._retire(found, kill=True)  # the child died under the call: again, in a new one
                        died += 1
                        if died == ATTEMPTS:
                            raise Stopped(f"its worker process ended under it {died} times") from error
            finally:
                found.users -= 1
                await self._say_freed()

    async def _rules_worker(self, patterns: tuple[str, ...]) -> _Worker:
        """The worker for these patterns; a new one once there is room (the least recently used idle one is
        stopped to make it; when all are busy, until one is idle: each call is bounded by its deadline)."""
        while True:
            if self._closed:
                raise Stopped("the server is stopping")
            found = self._rules.get(patterns)
            if found is not None and not found.stopped:
                self._rules.move_to_end(patterns)
                return found
            self._rules.pop(patterns, None)
            if len(self._rules) < RULES_WORKERS:
                self._rules[patterns] = made = _Worker(self._context)
                return made
            idle = next((p for p, w in self._rules.items() if w.users == 0), None)
            if idle is not None:
                self._retire(self._rules[idle], kill=False)
                continue
            if self._freed is None:
                self._freed = asyncio.Condition()
            async with self._freed:
                await self._freed.wait()

    async def _say_freed(self) -> None:
        if self._freed is not None:
            async with self._freed:
                self._freed.notify_all()

    def _retire(self, stopping: _Worker, kill: bool) -> None:
        """Stop a worker and forget it (its processes are awaited at `close`)."""
        for patterns, held in list(self._rules.items()):
            if held is stopping:
                del self._rules[patterns]
        if self._bulk is stopping:
            self._bulk = None
        self._stopping = [p for p in self._stopping if p.is_alive()] + stopping.stop(kill)

    def _failed_to_start(self, failed: _Worker, error: NoWorker) -> None:
        log.warning(
            "claude-vcr: no worker process could start here (%s): large request bodies are read in a thread,"
            " and rules with regular expressions of their own are refused",
            error,
        )
        self._no_process = str(error)
        self._retire(failed, kill=True)

    @property
    def started(self) -> bool:
        """Whether a worker process is running or starting (asked for by a large body or a rule's regex)."""
        return self._bulk is not None or bool(self._rules)

    @property
    def alive(self) -> int:
        """How many worker processes are alive now (stopped ones that have not yet ended included)."""
        workers = [w for w in (self._bulk, *self._rules.values()) if w is not None]
        processes = [p for w in workers for p in w.processes()] + self._stopping
        return sum(1 for p in processes if p.is_alive())

    async def close(self) -> None:
        """Stop every worker process (killing one still in a call: it may be stuck in a regex) and wait for
        them to end, off the loop. Calls made afterwards are refused (rules) or run in a thread (bulk)."""
        self._closed = True
        workers = [w for w in (self._bulk, *self._rules.values()) if w is not None]
        self._bulk = None
        self._rules.clear()
        idle = []
        for held in workers:
            if held.users > 0:
                self._stopping += held.stop(kill=True)
            else:
                held.stopped = True
                idle.append(held.pool)
        stopping, self._stopping = self._stopping, []
        await asyncio.to_thread(_wait_for, idle, stopping)
        await self._say_freed()


def _wait_for(pools: list[ProcessPoolExecutor], processes: list[BaseProcess]) -> None:
    """Wait for stopped pools and their children to end; a child that does not end in time is killed."""
    for pool in pools:
        pool.shutdown(wait=True, cancel_futures=True)
    for process in processes:
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join(5)
