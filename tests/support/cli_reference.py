"""Writes docs/cli.md from the click commands' own `--help`, so the reference cannot drift from the CLI.

Regenerate with `python3 -m tests.support.cli_reference`; tests/test_docs.py fails when the file is stale.
"""

from __future__ import annotations

import sys

import click
from click.testing import CliRunner

from tests.support import REPO

TARGET = REPO / "docs" / "cli.md"
WIDTH = 100  # the terminal width the help is rendered at: fixed, so the file is the same on every machine


def commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under the group, depth first, in the order `--help` lists them."""
    found = [path]
    ctx = click.Context(group, info_name="claude-vcr")
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            found += commands(command, path + (name,))
        elif command is not None and not command.hidden:
            found.append(path + (name,))
    return found


def help_text(path: tuple[str, ...]) -> str:
    """What `claude-vcr PATH --help` prints at the fixed width."""
    from claude_vcr.cli import main

    result = CliRunner().invoke(main, [*path, "--help"], prog_name="claude-vcr", terminal_width=WIDTH)
    assert result.exit_code == 0, result.output
    return result.output.rstrip() + "\n"


def render() -> str:
    """The whole page: one section per command, its help verbatim."""
    from claude_vcr.cli import main

    lines = [
        "# CLI reference",
        "",
        "Every command's `--help`, verbatim. This page is generated from the commands: do not edit it; run",
        "`python3 -m tests.support.cli_reference` after changing a command (a test fails while it is stale).",
        "",
    ]
    for path in commands(main):
        lines += [f"## `claude-vcr{''.join(' ' + p for p in path)}`", "", "```text", help_text(path).rstrip(), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    TARGET.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {TARGET.relative_to(REPO)}\n")
