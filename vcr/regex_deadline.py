"""A time bound for a cassette's own regular expressions in a command's main thread. Python's `re` has no
timeout, but it checks for signals while it backtracks: an interval timer's SIGALRM, raised as an exception by
its handler, stops a match. The proxy and the ui run them in worker processes instead (`proxy/offload.py`); elsewhere
(a thread, a platform without `setitimer`, a timer someone else armed) this bounds nothing."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SECONDS = 10.0
"""The longest a command may apply a cassette's regular expressions to one request (the proxy's deadline)."""


class RegexTimeout(Exception):
    """The interval timer went off while the regular expressions ran."""


def _expired(signum: int, frame: FrameType | None) -> None:
    raise RegexTimeout


@contextmanager
def bounded(seconds: float | None = None) -> Iterator[None]:
    """Raise `RegexTimeout` in the block once `seconds` (default SECONDS) have passed, where that can be done:
    in the main thread, with SIGALRM free."""
    setitimer = getattr(signal, "setitimer", None)
    if (
        setitimer is None
        or threading.current_thread() is not threading.main_thread()
        or signal.getitimer(signal.ITIMER_REAL)[0] > 0  # armed by someone else (pytest-timeout, say): theirs
    ):
        yield
        return
    previous = signal.signal(signal.SIGALRM, _expired)
    setitimer(signal.ITIMER_REAL, SECONDS if seconds is None else seconds)
    try:
        yield
    finally:
        setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
