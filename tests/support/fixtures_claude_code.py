"""The `claude` fixtures: the Claude Code CLI (required in CI, skipped without it elsewhere), its releases, and
the release matrix's recordings."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from tests.support.claude_code import claude_code_binary, claude_code_release
from tests.support.claude_code_matrix import Recorded, installed, record_release


@pytest.fixture(scope="session")
def claude() -> str:
    """The Claude Code CLI; missing, it fails the run in CI and skips elsewhere."""
    binary = claude_code_binary()
    if binary is None:
        message = "Claude Code CLI not found: run `npm ci --prefix tests/node` (or set VCR_CLAUDE)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


def _release(which: str) -> str:
    binary = claude_code_release(which)
    if binary is None:
        message = f"Claude Code release '{which}' not installed: run `npm ci --prefix tests/node`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


@pytest.fixture(scope="session")
def claude_next() -> str:
    """A later Claude Code release than `claude` (tests/node/package.json: claude-code-next)."""
    return _release("next")


@pytest.fixture(scope="session")
def claude_old() -> str:
    """An old Claude Code release, far behind `claude` (tests/node/package.json: claude-code-old)."""
    return _release("old")


@pytest.fixture(scope="session")
def release_recordings(loop_thread, tmp_path_factory) -> Callable[[str], Recorded]:
    """Each matrix release's sessions, recorded once per test session under the claude-code preset against a
    scripted upstream (one db per release, one cassette): `release_recordings("2.1.306")`."""
    done: dict[str, Recorded] = {}

    def recorded(version: str) -> Recorded:
        if version not in done:
            if not installed(version):
                message = f"Claude Code {version} not installed: run `bash tests/install.sh`"
                if os.environ.get("CI"):
                    pytest.fail(message)
                pytest.skip(message)
            done[version] = record_release(loop_thread, tmp_path_factory.mktemp(f"cc-{version}"), version)
        return done[version]

    return recorded
