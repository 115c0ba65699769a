"""The `claude` fixture: the Claude Code CLI, required in CI and skipped without it elsewhere."""

from __future__ import annotations

import os

import pytest

from tests.support.claude_code import claude_code_binary


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
