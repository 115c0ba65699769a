"""The `claude` fixtures: the Claude Code CLI (required in CI, skipped without it elsewhere), its releases, and
the release matrices' recordings (Claude Code's and the Agent SDK's)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import agent_sdk_matrix as sdk_matrix
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


@pytest.fixture(scope="session")
def agent_sdk_recordings(loop_thread, tmp_path_factory) -> Iterator[Callable[[str], tuple[str, Recorded]]]:
    """Each Agent SDK matrix release's Python (a venv built offline, removed at the end: ~420 MB each) and the
    matrix's sessions recorded once through its `query()`: `agent_sdk_recordings("0.2.137")`."""
    done: dict[str, tuple[str, Recorded]] = {}
    venvs: list[Path] = []

    def recorded(version: str) -> tuple[str, Recorded]:
        if version not in done:
            if not sdk_matrix.downloaded(version):
                message = f"claude-agent-sdk {version} not downloaded: run `bash tests/install.sh`"
                if os.environ.get("CI"):
                    pytest.fail(message)
                pytest.skip(message)
            folder = tmp_path_factory.mktemp(f"sdk-{version}")
            venvs.append(folder / "venv")
            python = sdk_matrix.sdk_python(version, folder / "venv")
            done[version] = (
                python,
                record_release(loop_thread, folder, version, run=sdk_matrix.run_query, binary=python),
            )
        return done[version]

    yield recorded
    for folder in venvs:
        shutil.rmtree(folder, ignore_errors=True)
