"""`claude-vcr run`: a proxy for the length of one command, which finds it through ANTHROPIC_BASE_URL.

No background process to start, wait for and stop: the proxy listens (on a free port unless told), the
command runs with ANTHROPIC_BASE_URL set, and when it exits the proxy shuts down and the db is whole again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable, Sequence

from .config import ProxyConfig
from .errors import InvalidInput
from .proxy import RequestLog, running


def run_command(config: ProxyConfig, command: Sequence[str], announce: Callable[[str], None]) -> int:
    """Serve `config` while `command` runs; the command's exit status (128 + N when signal N ended it)."""

    async def main() -> int:
        loop = asyncio.get_running_loop()
        async with running(config, RequestLog(sys.stderr)) as proxy:
            announce(proxy.banner())
            for warning in proxy.warnings:
                announce(warning)
            env = {**os.environ, "ANTHROPIC_BASE_URL": proxy.url}
            try:
                process = await asyncio.create_subprocess_exec(*command, env=env)
            except OSError as error:
                raise InvalidInput(f"cannot run {command[0]!r}: {error.strerror or error}") from error
            # Ctrl-C reaches the command from the terminal and it decides; a SIGTERM to us is passed on
            loop.add_signal_handler(signal.SIGINT, lambda: None)
            loop.add_signal_handler(signal.SIGTERM, lambda: process.send_signal(signal.SIGTERM))
            try:
                code = await process.wait()
            finally:
                loop.remove_signal_handler(signal.SIGINT)
                loop.remove_signal_handler(signal.SIGTERM)
        return 128 - code if code < 0 else code

    return asyncio.run(main())
