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
def serve(
    mode: str,
    fallback: str,
    cassette: str,
    db: Path,
    upstream: str,
    host: str,
    port: int,
    record_errors: bool,
) -> None:
    """Run the record/replay proxy.

    Point a client at it with ANTHROPIC_BASE_URL=http://127.0.0.1:8000 (or
    http://127.0.0.1:8000/c/NAME to pick cassette NAME). One line is printed per
    request: outcome, short key, method, path, status, milliseconds.

    \b
    Example:
        claude-vcr serve --mode replay --cassette basic_tests
    """
    from vcr.proxy import BadRequest, ProxyConfig, validate_cassette_name
    from vcr.proxy import serve as run_proxy
    from vcr.store import StoreError

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
    )
    try:
        run_proxy(config, announce=lambda line: click.echo(line))
    except StoreError as error:
        raise click.ClickException(str(error)) from error
    except OSError as error:
        raise click.ClickException(f"cannot listen on {host}:{port}: {error.strerror or error}") from error
