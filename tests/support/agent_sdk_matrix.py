"""The Agent SDK's release matrix: which `claude-agent-sdk` releases, the Python each runs in, and one `query()`
run with `run_claude`'s signature, so the Claude Code matrix's sessions, recording and replay serve it too.

Every `claude-agent-sdk` wheel bundles the Claude Code CLI it drives (`claude_agent_sdk/_bundled/claude`, the
npm release's binary byte for byte) and names it in `_cli_version.py`; a user's `query()` runs that one."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

from tests.support.claude_code import claude_env, faketime_env
from tests.support.venvs import WHEELS, Venv

RELEASES = {
    "0.2.137": "2.1.229",  # 2026-08-12
    "0.2.171": "2.1.307",  # 2026-10-21
    "0.2.190": "2.1.337",  # 2026-12-04, the newest
}
"""`claude-agent-sdk` release -> the Claude Code it bundles; oldest first. tests/install.sh downloads the wheels
of the ones the suite's own Python does not have into .cache/wheels (100-190 MB each)."""

DRIVER = Path(__file__).with_name("agent_sdk_session.py")


def later(version: str) -> list[str]:
    names = list(RELEASES)
    return names[names.index(version) + 1 :]


def installed_here() -> str | None:
    """The `claude-agent-sdk` release the suite's own Python has, if any."""
    try:
        return importlib.metadata.version("claude-agent-sdk")
    except importlib.metadata.PackageNotFoundError:
        return None


def downloaded(version: str) -> bool:
    return installed_here() == version or any(WHEELS.glob(f"claude_agent_sdk-{version}-*.whl"))


def to_download() -> list[str]:
    """Requirements for the releases neither the suite's Python has nor .cache/wheels holds (tests/install.sh
    downloads them one at a time: their pins conflict)."""
    return [f"claude-agent-sdk=={version}" for version in RELEASES if not downloaded(version)]


def sdk_python(version: str, folder: Path) -> str:
    """A Python that imports this SDK release: the suite's own when it has it, else a fresh venv in `folder`
    installed offline from .cache/wheels (about 420 MB with the bundled CLI)."""
    if installed_here() == version:
        return sys.executable
    env = Venv(folder)
    env.install(f"claude-agent-sdk=={version}")
    return env.python


def bundled_cli(python: str) -> str:
    """The Claude Code version the SDK in this Python bundles."""
    code = "from claude_agent_sdk._cli_version import __cli_version__; print(__cli_version__)"
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def run_query(
    python: str,
    base_url: str,
    workdir: Path,
    home: Path,
    *args: str,
    env: dict[str, str] | None = None,
    date: str | None = None,
) -> subprocess.CompletedProcess:
    """One `query()` with `claude -p`'s arguments, from a script in `workdir` with its own HOME (`claude_env`:
    the SDK hands its environment to the CLI). On `date` only the CLI runs under libfaketime, through the SDK's
    `env` option: Claude Code 2.1.307 and later die at start when their parent Python has it preloaded too."""
    cli_env = {"VCR_SDK_CLI_ENV": json.dumps(faketime_env(date))} if date is not None else {}
    return subprocess.run(
        [python, "-P", str(DRIVER), *args],
        cwd=workdir,
        env={**claude_env(base_url, home, env=env), **cli_env},
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
