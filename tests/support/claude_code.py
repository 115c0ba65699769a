"""The real Claude Code CLI (npm): where it is installed, and one `claude -p` run against a base URL."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from claude_vcr.providers import client_env

from tests.support import REPO


def claude_code_binary() -> str | None:
    """The npm-installed Claude Code CLI: VCR_CLAUDE, then tests/node's node_modules, then PATH."""
    candidates = [os.environ.get("VCR_CLAUDE"), str(REPO / "tests/node/node_modules/.bin/claude")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    return shutil.which("claude")


RELEASES = {"next": "claude-code-next", "old": "claude-code-old"}
"""Other Claude Code releases pinned in tests/node/package.json as npm aliases: a later one and an old one."""


def claude_code_release(which: str) -> str | None:
    """The pinned `next` or `old` release's CLI, or None when tests/node is not installed."""
    binary = REPO / "tests/node/node_modules" / RELEASES[which] / "bin/claude.exe"
    return str(binary) if binary.exists() else None


def claude_code_version(binary: str) -> str:
    """`2.1.332`, from `claude --version`."""
    result = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.split()[0]


PROVIDER_SETTINGS = {
    "anthropic": {"ANTHROPIC_API_KEY": "sk-ant-api03-EXAMPLE-claude-code-key"},
    "bedrock": {"AWS_REGION": "us-east-1"},
    "vertex": {"ANTHROPIC_VERTEX_PROJECT_ID": "vcr-test-project", "CLOUD_ML_REGION": "us-east5"},
    "foundry": {"ANTHROPIC_FOUNDRY_API_KEY": "foundry-EXAMPLE-api-key-0123456789abcdef"},
}
"""What a user sets beside the base URL for each provider (a key, a region, a project)."""


def libfaketime() -> str:
    """libfaketime (Debian's `faketime` package), preloaded to run Claude Code on another date."""
    found = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1")) + sorted(Path("/usr/lib").glob("faketime/libfaketime.so.1"))
    if not found:
        raise RuntimeError("libfaketime not found: apt-get install faketime (tests/install.sh does)")
    return str(found[0])


def faketime_env(date: str) -> dict[str, str]:
    """What runs a program on `date` (`2027-03-14`, noon) through libfaketime."""
    return {"LD_PRELOAD": libfaketime(), "FAKETIME": f"@{date} 12:00:00", "FAKETIME_DISABLE_SHM": "1"}


def claude_env(
    base_url: str,
    home: Path,
    provider: str = "anthropic",
    env: dict[str, str] | None = None,
    date: str | None = None,
) -> dict[str, str]:
    """The environment Claude Code runs in for a test: its own HOME, the provider's base URL and settings;
    `env` adds or drops (value "") variables, `date` (`2027-03-14`) runs it under faketime."""
    base = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        **client_env(provider, base_url),
        **PROVIDER_SETTINGS[provider],
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "TERM": "dumb",
    }
    base.update(env or {})
    if date is not None:
        base.update(faketime_env(date))
    return {k: v for k, v in base.items() if v}


def run_claude(
    claude: str,
    base_url: str,
    workdir: Path,
    home: Path,
    *args: str,
    provider: str = "anthropic",
    env: dict[str, str] | None = None,
    date: str | None = None,
) -> subprocess.CompletedProcess:
    """`claude -p ARGS` in `workdir` with its own HOME (`claude_env`)."""
    return subprocess.run(
        [claude, "-p", *args],
        cwd=workdir,
        env=claude_env(base_url, home, provider, env, date),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
