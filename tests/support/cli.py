"""The claude-vcr CLI run in-process, as the cassette-management tests drive it."""

from __future__ import annotations

from pathlib import Path

from claude_vcr.cli import main
from click.testing import CliRunner, Result


def cli(*args: str | Path, input: str | None = None) -> Result:
    """Run a claude-vcr command in-process; errors are results (exit code, message), not exceptions."""
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)
