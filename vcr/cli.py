"""The `claude-vcr` command line: each command parses options, calls one library function and prints."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from vcr import __version__

DB_OPTION_HELP = "The cassette database (one SQLite file, meant for git)."


def db_option(func):
    """`--db PATH` (VCR_DB), the same on every command."""
    return click.option(
        "--db",
        type=click.Path(dir_okay=False, path_type=Path),
        default="vcr.db",
        envvar="VCR_DB",
        show_default=True,
        show_envvar=True,
        help=DB_OPTION_HELP,
    )(func)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="claude-vcr")
def main() -> None:
    """Record and replay Anthropic Messages API traffic, streams included, from one SQLite file.

    \b
    Example:
        claude-vcr serve --mode record --cassette my_tests
        ANTHROPIC_BASE_URL=http://127.0.0.1:8000 claude -p "Hello"
    """


def parse_pace(value: str) -> float | None:
    """`instant` -> None, `recorded` -> 1.0, `N` -> N (a speed factor)."""
    if value == "instant":
        return None
    if value == "recorded":
        return 1.0
    try:
        factor = float(value)
    except ValueError:
        factor = 0.0
    if not factor > 0:
        raise click.BadParameter(
            f"{value!r}: use instant, recorded or a speed factor above 0", param_hint="--pace"
        )
    return factor


@main.command()
@click.option(
    "--mode",
    type=click.Choice(["auto", "record", "replay"]),
    default="auto",
    envvar="VCR_MODE",
    show_default=True,
    show_envvar=True,
    help="record: forward and store; replay: answer from the cassette; auto: replay hits, record misses.",
)
@click.option(
    "--fallback",
    type=click.Choice(["strict", "fallback"]),
    default="strict",
    envvar="VCR_REPLAY_FALLBACK",
    show_default=True,
    show_envvar=True,
    help="What a replay miss does: strict answers a 400 error at once; fallback forwards and records.",
)
@click.option(
    "--cassette",
    default="default",
    envvar="VCR_CASSETTE",
    show_default=True,
    show_envvar=True,
    help="Cassette for requests that name none (header X-VCR-Cassette or URL prefix /c/NAME/).",
)
@db_option
@click.option(
    "--upstream",
    default="https://api.anthropic.com",
    envvar="VCR_UPSTREAM",
    show_default=True,
    show_envvar=True,
    help="Where recorded requests go.",
)
@click.option("--host", default="127.0.0.1", envvar="VCR_HOST", show_default=True, show_envvar=True)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    envvar="VCR_PORT",
    show_default=True,
    show_envvar=True,
    help="0 picks a free port (the banner line says which).",
)
@click.option(
    "--record-errors/--no-record-errors",
    default=False,
    envvar="VCR_RECORD_ERRORS",
    show_envvar=True,
    help="Also store non-2xx answers (they are passed through either way).",
)
@click.option(
    "--rules",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="VCR_RULES",
    show_envvar=True,
    help="Key rules file (TOML or JSON): JSON paths to leave out, text to replace. Stored with new cassettes.",
)
@click.option(
    "--preset",
    type=click.Choice(["claude-code"]),
    multiple=True,
    envvar="VCR_PRESET",
    show_envvar=True,
    help="Built-in rules: claude-code replays a session in another directory, HOME, day or patch release.",
)
@click.option(
    "--exhausted",
    type=click.Choice(["repeat", "miss"]),
    default="repeat",
    envvar="VCR_EXHAUSTED",
    show_default=True,
    show_envvar=True,
    help="Replay past the last recording of a repeated request: repeat the last, or miss.",
)
@click.option(
    "--pace",
    default="instant",
    envvar="VCR_PACE",
    show_default=True,
    show_envvar=True,
    help="instant, recorded (each chunk at its recorded offset), or a speed factor N (2 = twice as fast).",
)
@click.option(
    "--save-misses",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="VCR_SAVE_MISSES",
    show_envvar=True,
    help="Write every request that misses in replay to this directory, for `claude-vcr explain`.",
)
def serve(
    mode: str,
    fallback: str,
    cassette: str,
    db: Path,
    upstream: str,
    host: str,
    port: int,
    record_errors: bool,
    rules: Path | None,
    preset: tuple[str, ...],
    exhausted: str,
    pace: str,
    save_misses: Path | None,
) -> None:
    """Run the record/replay proxy.

    Point a client at it with ANTHROPIC_BASE_URL=http://127.0.0.1:8000 (or
    http://127.0.0.1:8000/c/NAME to pick cassette NAME). One line is printed per
    request: outcome, short key, method, path, status, milliseconds.

    \b
    Example:
        claude-vcr serve --mode replay --cassette basic_tests
    """
    from vcr.matching import Rules, RulesError, load_rules
    from vcr.proxy import BadRequest, ProxyConfig, validate_cassette_name
    from vcr.proxy import serve as run_proxy
    from vcr.store import StoreError

    try:
        key_rules = (load_rules(rules) if rules else Rules()).with_presets(*preset)
    except RulesError as error:
        raise click.BadParameter(str(error), param_hint="--rules") from error
    pace_factor = parse_pace(pace)

    if not upstream.startswith(("http://", "https://")):
        raise click.BadParameter(f"{upstream!r} is not an http:// or https:// URL", param_hint="--upstream")
    try:
        validate_cassette_name(cassette)
    except BadRequest as error:
        raise click.BadParameter(str(error), param_hint="--cassette") from error
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout, force=True)
    config = ProxyConfig(
        db=db,
        mode=mode,
        fallback=fallback,
        cassette=cassette,
        upstream=upstream,
        host=host,
        port=port,
        record_errors=record_errors,
        rules=key_rules,
        exhausted=exhausted,
        pace=pace_factor,
        save_misses=save_misses,
    )
    try:
        run_proxy(config, announce=lambda line: click.echo(line))
    except StoreError as error:
        raise click.ClickException(str(error)) from error
    except OSError as error:
        raise click.ClickException(f"cannot listen on {host}:{port}: {error.strerror or error}") from error
