"""The start of a worker process of the proxy or the ui (`proxy/offload.py`). A spawned child imports what it
is sent by name, so everything it runs lives outside `claude_vcr.proxy` (whose package imports aiohttp and
zstandard) and this module imports the standard library only: from the pyz, zstandard's native module loads
only once `start` has installed the pyz's finder, as the pyz's own start-up does."""

from __future__ import annotations

import signal


def start() -> None:
    """Ctrl-C reaches the whole process group, and the server stops its worker itself; from the pyz, make its
    native modules loadable."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from . import _bootstrap

    found = _bootstrap.load_manifest()
    if found is not None:
        _bootstrap.prepare(found)


def ready() -> bool:
    """A call that returns once the worker is up (so a deadline counts the work, not the start)."""
    return True
