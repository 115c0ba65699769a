"""The `claude` fixture: the Claude Code CLI, required in CI and skipped without it elsewhere."""

from __future__ import annotations

import os

import pytest

from tests.support.claude_code import claude_code_binary, claude_code_release


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
