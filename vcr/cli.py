"""The `claude-vcr` command line: each command parses options, calls one library function and prints.

What is printed comes from `render`; `serve`'s options come from the declarations in `config.ProxyConfig`;
values with syntax are parsed by the `ParamType`s below, so a bad one is click's usage error (exit 2).
Library errors (`ClaudeVCRError`) are caught once, in `Main.invoke`, and become one line and exit 1.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from . import __version__
from .config import PRESET_NAMES, Flag, ProxyConfig, http_url
from .errors import ClaudeVCRError, InvalidInput, NoDatabase
from .matching import Rules, load_rules

# --- values with syntax ------------------------------------------------------------------------------


class Syntax(click.ParamType):
    """A value parsed by a library function: what the function refuses (InvalidInput) is a usage error."""

    def __init__(self, parse: Callable[[str], Any], path: click.Path | None = None) -> None:
        self.name = parse.__name__
        self.parse = parse
        self.path = path
        """When the value names a file or directory: click's checks of it come first."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):  # already parsed (a default, or a value given in code)
            return value
        text = self.path.convert(value, param, ctx) if self.path else value
        try:
            return self.parse(text)
        except InvalidInput as error:
            self.fail(str(error), param, ctx)


PATHS = {
    "file": click.Path(dir_okay=False, path_type=Path),
    "existing file": click.Path(exists=True, dir_okay=False, path_type=Path),
    "directory": click.Path(file_okay=False, path_type=Path),
}
URL = Syntax(http_url)
RULES_FILE = Syntax(load_rules, PATHS["existing file"])
PRESET = click.Choice(PRESET_NAMES)


def _param_type(flag: Flag, default: Any) -> click.ParamType | None:
    """The click type a declaration asks for; None leaves it to click (text, or an on/off flag)."""
    path = PATHS.get(flag.path) if flag.path else None
    if flag.choices:
        return click.Choice(flag.choices)
    if flag.parse is not None:
        return Syntax(flag.parse, path)
    if path is not None:
        return path
    if isinstance(default, bool):
        return None
    if isinstance(default, int):
        return click.IntRange(*flag.bounds)
    if isinstance(default, float):
        return click.FloatRange(*flag.bounds)
    return None


def config_option(name: str) -> Callable:
    """The click option that `ProxyConfig.<name>` declares: flag, variable, type, default and help."""
    spec = next(f for f in dataclasses.fields(ProxyConfig) if f.name == name)
    flag: Flag = spec.metadata["flag"]
    default = None if spec.default is dataclasses.MISSING else spec.default
    return click.option(
        flag.decl,
        name,
        type=_param_type(flag, default),
        default=flag.shown_default if flag.shown_default is not None else default,
        is_flag=isinstance(default, bool),
        multiple=flag.multiple,
        metavar=flag.metavar,
        envvar=flag.env,
        show_envvar=flag.env is not None,
        show_default=True,
        help=flag.help,
    )


def serve_options(command: Callable) -> Callable:
    """Every option `ProxyConfig` declares, listed in its field order."""
    for spec in reversed(dataclasses.fields(ProxyConfig)):
        if "flag" in spec.metadata:
            command = config_option(spec.name)(command)
    return command


db_option = config_option("db")
"""`--db PATH` (VCR_DB), the same on every command."""


# --- the command group -----------------------------------------------------------------------------


class Main(click.Group):
    """The group whose one catch turns a library error into a one-line message and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ClaudeVCRError as error:
            raise click.ClickException(str(error)) from error
        except OSError as error:
            shown = f"{error.filename}: {error.strerror or error}" if error.filename else str(error)
            raise click.ClickException(shown) from error


@click.group(cls=Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="claude-vcr")
def main() -> None:
    """Record and replay Anthropic Messages API traffic, streams included, from one SQLite file.

    \b
    Example:
        claude-vcr serve --mode record --cassette my_tests
        ANTHROPIC_BASE_URL=http://127.0.0.1:8000 claude -p "Hello"
    """


def _echo(text: str) -> None:
    """Rendered text (it ends in a newline) through click, which copes with the terminal's encoding; a db's
    control characters are shown as escapes, never acted on by the terminal."""
    from .untrusted import printable

    click.echo(printable(text), nl=False)


def _write(text: str) -> None:
    """Long listings straight to stdout: click.echo scans every character of them for colour codes."""
    from .untrusted import printable

    sys.stdout.write(printable(text))


@main.command()
@serve_options
def serve(**values: Any) -> None:
    """Run the record/replay proxy.

    Point a client at it with ANTHROPIC_BASE_URL=http://127.0.0.1:8000 (or
    http://127.0.0.1:8000/c/NAME to pick cassette NAME). One line is printed per
    request: outcome, short key, method, path, status, milliseconds. On stop it
    prints how many recordings were stored; if any could not be (each logged as
    store-error), the exit status is 1.

    \b
    Example:
        claude-vcr serve --mode replay --cassette basic_tests
    """
    from .proxy import serve as run_proxy

    config = ProxyConfig(**{name: value for name, value in values.items() if value is not None})
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout, force=True)
    if run_proxy(config, announce=click.echo):
        sys.exit(1)  # a recording a client was sent could not be stored: never a silent success


@main.command(context_settings={"allow_interspersed_args": False})
@serve_options
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def run(ctx: click.Context, command: tuple[str, ...], **values: Any) -> None:
    """Run COMMAND with ANTHROPIC_BASE_URL pointing at a proxy started for it.

    The proxy listens on a free port (unless --port or VCR_PORT names one; the
    banner line on stderr says which) and stops when COMMAND ends. In replay, a
    COMMAND with no ANTHROPIC_API_KEY (nor ANTHROPIC_AUTH_TOKEN) gets the
    placeholder key claude-vcr-replay, so SDK clients start; nothing else in its
    environment changes. The exit status is COMMAND's; a summary (recorded /
    replayed / missed per cassette, answers not stored) and each distinct miss's
    diagnosis go to stderr.

    \b
    Example:
        claude-vcr run --mode replay --cassette ci -- go test ./...
        claude-vcr run --mode auto -- claude -p "Summarise this project"
    """
    from .harness import run_command
    from .render import run_summary

    if ctx.get_parameter_source("port") == click.core.ParameterSource.DEFAULT:
        values["port"] = 0
    config = ProxyConfig(**{name: value for name, value in values.items() if value is not None})

    def tell(line: str) -> None:
        click.echo(line, err=True)

    try:
        result = run_command(config, list(command), tell)
    except FileNotFoundError:
        tell(f"claude-vcr: {command[0]}: command not found")
        sys.exit(127)
    except PermissionError:
        tell(f"claude-vcr: {command[0]}: permission denied")
        sys.exit(126)
    drift = {name: t.drift for name, t in result.ledger.cassettes.items() if t.drift}
    click.echo(run_summary(result.counts(), result.orphans, str(config.db), drift), err=True, nl=False)
    if result.not_stored:
        from .storable import not_stored_line

        tell(not_stored_line(result.not_stored))
    sys.exit(result.status)


for _param in run.params:  # run's proxy takes a free port unless told otherwise: its help says so
    if _param.name == "port":
        _param.help = "Port for the proxy [default: a free one; the banner line on stderr says which]."
        _param.show_default = False


# --- cassettes as files people share: inspect, delete, export/import, git ------------------------------
# These commands import neither aiohttp nor (when they only read) sqlite-utils, so they start fast.


def _open_catalog(db: Path):
    """The db read-only: a missing file is reported, never created."""
    from .catalog import Catalog

    return Catalog.open(db)


def _open_store(db: Path):
    """The db for writing (migrated on open); commands that only change what exists refuse a missing file."""
    if (not db.exists() or db.stat().st_size == 0):
        raise NoDatabase(f"no database at {db}")
    from .store import Store

    return Store(db)


def _importing(db: Path):
    """The db an import writes into; one the import created is removed again if the import fails."""
    from .store import importing

    return importing(db)


def _json_out(value: Any) -> None:
    from .render import as_json

    (_write if isinstance(value, list) else _echo)(as_json(value))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
cassette_filter = click.option("--cassette", help="Only look in this cassette.")


@main.command()
@db_option
@json_option
def cassettes(db: Path, as_json: bool) -> None:
    """List the cassettes with their recording count, stored size and newest recording.

    \b
    Example:
        claude-vcr cassettes
        claude-vcr cassettes --json
    """
    from .render import cassettes_table

    with _open_catalog(db) as catalog:
        found = catalog.cassettes()
    if as_json:
        _json_out([c.to_json() for c in found])
        return
    if not found:
        click.echo(f"No cassettes in {db}")
        return
    _echo(cassettes_table(found))


@main.command("list")
@click.argument("cassette", required=False)
@click.option("--cassette", "cassette_option", help="The cassette to list (same as the argument).")
@db_option
@json_option
def list_recordings(cassette: str | None, cassette_option: str | None, db: Path, as_json: bool) -> None:
    """List recordings, one line each: short key, method, path, model, stream, status, size, date.

    Without CASSETTE every cassette is listed, with a cassette column. SIZE is the
    response's size in bytes; the short key (or any prefix of 4+ hex digits) works
    with `show` and `delete`.

    \b
    Example:
        claude-vcr list basic_tests
        claude-vcr list --json | jq -r '.[].key'
    """
    from .render import recordings_table

    if cassette and cassette_option and cassette != cassette_option:
        raise click.UsageError(f"two cassettes given: {cassette!r} and --cassette {cassette_option!r}")
    name = cassette or cassette_option
    with _open_catalog(db) as catalog:
        found = catalog.recordings(name)
    if as_json:
        _json_out([r.to_json() for r in found])
        return
    if not found:
        click.echo(f"No recordings in cassette {name!r}" if name else f"No recordings in {db}")
        return
    _write(recordings_table(found, with_cassette=name is None))


@main.command()
@cassette_filter
@db_option
@json_option
def stats(cassette: str | None, db: Path, as_json: bool) -> None:
    """Show statistics per cassette: recordings by model, streaming or not, sizes, date range.

    Stored bytes are what the db holds (zstd-compressed); raw bytes are the requests
    and responses as sent. Without --cassette: one line per cassette, then the
    total; with it, that cassette in full.

    \b
    Example:
        claude-vcr stats --cassette basic_tests
        claude-vcr stats --json
    """
    from .render import stats_table, stats_text

    with _open_catalog(db) as catalog:
        per_cassette = catalog.stats(cassette)
        total = catalog.combine(per_cassette) if cassette is None else per_cassette[0]
        replaced, replaced_bytes = catalog.replaced_totals()
    if as_json:
        kept = {"count": replaced, "stored_bytes": replaced_bytes}
        _json_out({"cassettes": [s.to_json() for s in per_cassette], "total": total.to_json(), "replaced_answers": kept})
        return
    if not per_cassette:
        click.echo(f"No cassettes in {db}")
        return
    _echo(stats_text(per_cassette) if cassette is not None else stats_table(per_cassette, total))
    if replaced and cassette is None:
        click.echo(
            f"Replaced answers kept for git's history: {replaced:,} ({replaced_bytes:,} bytes stored); "
            "`claude-vcr compact` drops them."
        )


@main.command()
@click.argument("key_prefix")
@cassette_filter
@click.option("--raw", is_flag=True, help="Write the stored response bytes, exactly, to stdout.")
@db_option
@json_option
def show(key_prefix: str, cassette: str | None, raw: bool, db: Path, as_json: bool) -> None:
    """Show one recording: its request and its response decoded for a person.

    KEY_PREFIX is 4 or more hex digits of the key (`KEY#N` for the Nth repeat of a
    request). Streamed responses are shown one SSE event per line (of a long stream the
    first 400 and the last 20), then each content block with its text or tool input
    joined (up to 200,000 characters; --json and --raw give all).

    \b
    Example:
        claude-vcr show 3f2a9c1b
        claude-vcr show 3f2a9c1b --raw > response.sse
    """
    from .describe import describe
    from .render import show_text
    from .schema import read_errors

    with _open_catalog(db) as catalog, read_errors(db):  # a large body is read after `detail` returns
        detail = catalog.detail(catalog.resolve(key_prefix, cassette), large_as_frame=True)
        if raw:
            stdout = sys.stdout.buffer  # the exact bytes; click.get_binary_stream is deprecated
            reader = detail.response_reader()  # a large body a piece at a time, never whole
            while piece := reader.read(1024 * 1024):
                stdout.write(piece)
            stdout.flush()
            return
        info = describe(detail)
    if as_json:
        _json_out(info)
    else:
        _echo(show_text(info))


@main.command()
@click.argument("key_prefixes", metavar="KEY_PREFIX...", nargs=-1, required=True)
@cassette_filter
@db_option
def delete(key_prefixes: tuple[str, ...], cassette: str | None, db: Path) -> None:
    """Delete recordings, each named by a key prefix (4+ hex digits, `KEY#N` for a repeat).

    \b
    Example:
        claude-vcr delete 3f2a9c1b
        claude-vcr delete --cassette my_tests 3f2a9c1b2d4e#1 81c0e7a4d2b9#0
    """
    with _open_store(db) as store:
        catalog = store.catalog
        recordings = [catalog.resolve(prefix, cassette) for prefix in key_prefixes]
        store.delete_recordings([recording.id for recording in recordings])
    for recording in recordings:
        click.echo(
            f"Deleted {recording.short} from cassette {recording.cassette}: {recording.method} {recording.path}"
        )


@main.command()
@click.argument("cassette")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@db_option
def clear(cassette: str, yes: bool, db: Path) -> None:
    """Delete a cassette and all its recordings (asks first unless --yes).

    \b
    Example:
        claude-vcr clear old_tests --yes
    """
    with _open_store(db) as store:
        notes = len(store.catalog.unstored_rows(cassette))
        if notes and store.catalog.cassette_id(cassette) is None:  # a run that met only errors
            what = f"the {notes:,} notes of answers not stored"
        else:
            what = f"all {store.catalog.stats(cassette)[0].recordings:,} recordings"
        if not yes:
            click.confirm(f"Delete {what} in cassette {cassette!r}?", abort=True)
        deleted = store.clear_cassette(cassette)
    click.echo(f"Cleared cassette {cassette}: {deleted:,} recordings deleted" + (f", {notes:,} notes" if notes else ""))


@main.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--cassette", "cassettes", multiple=True, help="Export only this cassette (repeatable).")
@click.option("--replace", is_flag=True, help="Overwrite cassette directories that already hold files.")
@db_option
def export_command(directory: Path, cassettes: tuple[str, ...], replace: bool, db: Path) -> None:
    """Write cassettes as the seed tool's directories: DIR/<cassette>/index.json and recordings/.

    Each recording becomes <key>.request.json, <key>.response.bin (the exact bytes)
    and <key>.meta.json, which `vcr_manager.py` reads. Everything else the db holds
    goes along, so `claude-vcr import DIR` restores it exactly.

    \b
    Example:
        claude-vcr export cassettes/ --cassette basic_tests
    """
    from .interchange.seed import export_directory

    with _open_catalog(db) as catalog:
        report = export_directory(catalog, directory, list(cassettes), replace=replace)
    click.echo(f"Exported {report.recordings:,} recordings in {report.cassettes} cassette(s) to {directory}")


@main.command("import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--cassette",
    help="Dump or one vcrpy file: the cassette to import into (dump default: default; vcrpy: named from the "
    "file). Seed directory: only this one.",
)
@click.option("--all-paths", is_flag=True, help="Dump: import every path, not only the API's /v1/ paths.")
@click.option(
    "--record-errors",
    is_flag=True,
    help="Dump or vcrpy: also import transient errors (429, 5xx, 529), as serve --record-errors.",
)
@click.option(
    "--preset",
    type=PRESET,
    multiple=True,
    help="Key rules preset for cassettes the import creates; existing ones keep theirs.",
)
@db_option
def import_command(
    source: Path,
    cassette: str | None,
    all_paths: bool,
    record_errors: bool,
    preset: tuple[str, ...],
    db: Path,
) -> None:
    """Import a seed-layout directory, vcrpy / pytest-recording cassettes, or a mitmproxy dump.

    A directory with index.json files is read as the seed tool writes it (or as
    `export` wrote it): keys are recomputed with claude-vcr's scheme and the seed's
    key is kept in the recording's meta. vcrpy cassettes (.yaml, .yml, .json
    files, or a directory of them) become one cassette per file, named as the
    pytest plugin names that test's cassette (run it where pytest runs); only
    Messages API interactions are imported. Any other file is read as a mitmproxy
    dump (`mitmdump -w FILE`), streaming, without mitmproxy: HTTP flows to /v1/
    paths are imported. Bodies are stored decoded and secrets in headers dropped.
    Deterministic API errors (400, 404...) are imported like answers; transient
    ones (429, 5xx, 529) only with --record-errors. Either way the import is one
    transaction: on any error the db is left as it was.

    \b
    Example:
        claude-vcr import cassettes/
        claude-vcr import tests/cassettes/      # pytest-recording's cassettes
        claude-vcr import capture.mitm --cassette from_capture
    """
    from .names import validate_cassette_name
    from .render import import_text

    if source.is_file() and source.name == "index.json":
        source = source.parent
    vcrpy_files = _vcrpy_files(source, cassette)
    if vcrpy_files is not None:
        from .interchange.vcrpy import import_files

        with _importing(db) as store:
            report = import_files(store, vcrpy_files, record_errors=record_errors, presets=preset)
        headline = f"Imported {report.imported:,} recordings from {report.flows:,} vcrpy interactions"
        per_cassette = True
    elif source.is_dir():
        from .interchange.seed import import_directory

        with _importing(db) as store:
            report = import_directory(store, source, [cassette] if cassette else None, presets=preset)
        headline = f"Imported {report.imported:,} recordings from {source}"
        per_cassette = True
    else:
        target = validate_cassette_name(cassette or "default")
        report = _import_dump(source, target, db, all_paths, record_errors, preset)
        headline = f"Imported {report.imported:,} recordings from {report.flows:,} flows into {target}"
        per_cassette = False
    _echo(import_text(report, headline, per_cassette=per_cassette))


def _vcrpy_files(source: Path, cassette: str | None) -> list[tuple[Path, str]] | None:
    """vcrpy cassette files to import with their cassettes, or None when `source` is not vcrpy's: a file
    named .yaml/.yml/.json, or a directory holding such files and no seed-layout index.json."""
    from .interchange.files import read_file
    from .interchange.vcrpy import SUFFIXES, cassette_files
    from .names import validate_cassette_name

    if source.is_dir():
        if any(source.glob("index.json")) or any(source.glob("*/index.json")):
            return None
        found = cassette_files(source)
        if not found:
            return None
        if cassette:
            raise click.UsageError("--cassette names one cassette: give it one vcrpy file, not a directory")
        return found
    if source.suffix not in SUFFIXES:
        return None
    if source.suffix == ".json" and b'"interactions"' not in read_file(source):
        return None  # some other JSON file: read as a dump, whose error says what it is not
    if cassette:
        return [(source, validate_cassette_name(cassette))]
    return cassette_files(source)


def _import_dump(source: Path, cassette: str, db: Path, all_paths: bool, record_errors: bool, preset):
    """A dump import with a progress bar on a terminal for files over 8 MB; a bad file names the flows read."""
    import contextlib

    from .interchange.mitm import MitmFormatError
    from .interchange.mitm_import import import_dump

    size = source.stat().st_size
    show_bar = size > 8 * 1024 * 1024 and sys.stderr.isatty()
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(_importing(db))
        stream = stack.enter_context(source.open("rb"))
        bar = (
            stack.enter_context(click.progressbar(length=size, label="Importing", file=sys.stderr))
            if show_bar
            else None
        )

        def progress(position: int) -> None:
            if bar is not None and (position - bar.pos >= 1 << 20 or position >= size):
                bar.update(position - bar.pos)

        try:
            return import_dump(
                store,
                stream,
                cassette,
                all_paths=all_paths,
                record_errors=record_errors,
                presets=preset,
                source=str(source),
                progress=progress,
            )
        except MitmFormatError as error:
            raise click.ClickException(f"{error}; nothing was imported") from error


@main.command()
@db_option
def compact(db: Path) -> None:
    """Rewrite the db without dead pages or kept replaced answers, in a canonical order.

    The same recordings give the same bytes however they were written. The answers
    re-recordings replaced, which the db keeps so git's deltas stay small, are
    dropped. Not before every commit: a compacted file shares fewer bytes with its
    previous version (see docs/git.md). Stop any `serve` using the file first: the
    file is replaced.

    \b
    Example:
        claude-vcr compact && git add vcr.db
    """
    from .maintenance import compact as compact_file

    if not db.exists() or db.stat().st_size == 0:
        raise NoDatabase(f"no database at {db}")
    done = compact_file(db)
    dropped = f" ({done.replaced:,} replaced answers kept for git's history dropped)" if done.replaced else ""
    click.echo(f"Compacted {db}: {done.before:,} -> {done.after:,} bytes{dropped}")


@main.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@db_option
def dump(path: Path | None, db: Path) -> None:
    """Print one sorted line per recording: git's textconv for `git diff` on a db.

    Each line: cassette, short key, method, path, model, stream/json, status, response
    size, date, and short digests of the request and response bodies. Then a line per
    note of an answer a record run did not store: cassette, short key, `not-stored`,
    status, error type, date.

    \b
    Example:
        claude-vcr dump vcr.db
    """
    from .interchange.gitdb import dump_lines

    sys.stdout.writelines(line + "\n" for line in dump_lines(path or db))


@main.command("merge-driver")
@click.argument("base", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("ours", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("theirs", type=click.Path(dir_okay=False, path_type=Path))
def merge_driver(base: Path, ours: Path, theirs: Path) -> None:
    """git's merge driver for a db (%O %A %B): the union of both sides' recordings.

    Keys recorded on one side are taken, deletions on either side are kept, a key
    re-recorded on both sides keeps the newer recording. The result replaces OURS.

    \b
    Example (set up by `claude-vcr git-setup`):
        git config merge.claude-vcr.driver "claude-vcr merge-driver %O %A %B"
    """
    from .interchange.gitdb import merge

    click.echo(merge(base, ours, theirs).line(), err=True)


@main.command("git-setup")
@click.option(
    "--command",
    help="How git should run claude-vcr (default: the claude-vcr running now, by absolute paths: the pyz with "
    "this Python, a venv's claude-vcr script, or this Python with -m claude_vcr).",
)
@click.option(
    "--pre-commit",
    is_flag=True,
    help="Also install a pre-commit hook that runs `scan` on the staged db and blocks a commit with findings.",
)
@click.option("--check", "check_only", is_flag=True, help="Change nothing: say whether the drivers work here.")
@db_option
def git_setup(command: str | None, pre_commit: bool, check_only: bool, db: Path) -> None:
    """Make git diff and merge the db: .gitattributes line and the drivers in .git/config.

    After this, `git diff` shows one line per recording and merging two branches
    that recorded different tests unions their recordings instead of conflicting.
    The config is per clone: run it once in every clone (replay never needs it).
    The drivers run claude-vcr by absolute paths, so they work from any shell; the
    last line says whether git can run them here. With --check, nothing is
    changed and the exit status is 1 when they would not work. With --pre-commit,
    a commit that stages the db with credential-shaped strings in it is blocked;
    bypass it consciously with `git commit --no-verify`.

    \b
    Example:
        claude-vcr git-setup --db tests/vcr.db --pre-commit
        claude-vcr git-setup --check --db tests/vcr.db
    """
    from .interchange.gitdb import check, install_pre_commit, setup

    if not check_only:
        report = setup(db, command)
        state = "added to" if report.attributes_added else "already in"
        click.echo(f"{report.attributes_line!r} {state} {report.repo / '.gitattributes'}")
        click.echo(f"git config: diff.claude-vcr.textconv and merge.claude-vcr.driver run {report.command!r}")
        if pre_commit:
            hook = install_pre_commit(db, report.command)
            click.echo(f"pre-commit hook {hook} scans the staged db (bypass: git commit --no-verify)")
    verdict = check(db)
    click.echo(verdict.line, err=not verdict.ok)
    if check_only and not verdict.ok:
        sys.exit(1)


@main.command()
@cassette_filter
@db_option
@json_option
def scan(cassette: str | None, db: Path, as_json: bool) -> None:
    """Find credential-shaped strings in stored bodies, headers and paths; exit 1 if any.

    Reports the recording, where (side and JSON path), the kind (Anthropic, OpenAI,
    AWS, GitHub, GitLab, Slack, Google, Stripe keys, JWTs, PEM private keys, .env
    assignments) and a masked preview; never the secret itself.

    \b
    Example:
        claude-vcr scan --db tests/vcr.db && git add tests/vcr.db
    """
    from .redact import scan as scan_db
    from .render import scan_text

    with _open_catalog(db) as catalog:
        findings = scan_db(catalog, cassette)
    if as_json:
        _json_out([finding.to_json() for finding in findings])
    else:
        _echo(scan_text(findings))
    sys.exit(1 if findings else 0)


@main.command()
@cassette_filter
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@db_option
@json_option
def redact(cassette: str | None, yes: bool, db: Path, as_json: bool) -> None:
    """Replace what `scan` finds with stable placeholders, in one transaction.

    The same secret becomes the same placeholder everywhere; keys are recomputed
    under each cassette's rules, so the cassettes keep replaying (a client sending
    the original secret still hits). Freed pages are zeroed.

    \b
    Example:
        claude-vcr redact --cassette integration --yes
    """
    from .redact import redact_db
    from .redact import scan as scan_db
    from .render import redact_text

    with _open_store(db) as store:
        if not yes:
            found = scan_db(store.catalog, cassette)
            if not found:
                _echo("Nothing to redact.\n")
                return
            click.confirm(f"Replace {len(found):,} finding(s) in {db}?", abort=True)
        report = redact_db(store, cassette)
    if as_json:
        _json_out(report.to_json())
    else:
        _echo(redact_text(report))


@main.command()
@click.argument("request_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--cassette", help="Cassette to look in (default: the one saved with the request, else 'default')."
)
@db_option
def explain(request_file: Path, cassette: str | None, db: Path) -> None:
    """Say which recording a saved request would replay, or why it would miss.

    REQUEST_FILE is a request saved by `serve --save-misses DIR`, a file of
    the form {"method", "path", "body"}, or a bare Messages request body
    (taken as POST /v1/messages). Exits 1 on a miss.

    \b
    Example:
        claude-vcr serve --mode replay --save-misses misses/
        claude-vcr explain misses/default-81c0e7a4d2b9.json
    """
    from .diagnosis import explain as explain_request
    from .diagnosis import read_request_file
    from .matching import short_key

    try:
        request = read_request_file(request_file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise click.ClickException(f"{request_file}: {error}") from error
    name = cassette or request.cassette or "default"
    with _open_catalog(db) as catalog:
        key, report = explain_request(catalog, name, request)
    if report is None:
        click.echo(
            f"hit: {request.method} {request.target} replays recording {short_key(key)} of cassette '{name}'"
        )
        return
    click.echo(report.text())
    sys.exit(1)


@main.command("harness-diff")
@click.argument("recorded")
@click.argument("current")
@click.option("--cassette", help="Cassette of the recordings named by key (default: any).")
@db_option
def harness_diff(recorded: str, current: str, cassette: str | None, db: Path) -> None:
    """Show how Claude Code's harness differs between two requests.

    RECORDED and CURRENT each name a recording (a key prefix, as `list` shows
    it) or a request file (as `serve --save-misses` writes it, or a bare
    Messages body). The first line is the drift line replay logs; then the
    system prompt and reminder diffs, the tool set and the settings.

    \b
    Example:
        claude-vcr harness-diff 81c0e7a4d2b9 misses/default-3f2a09c1b7e4.json
    """
    import json

    from .claude_code import compare

    sides = []
    for name in (recorded, current):
        path = Path(name)
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError) as error:
                raise click.ClickException(f"{path}: not JSON: {error}") from error
            if isinstance(data, dict) and "body" in data and "messages" not in data:
                body = data["body"]
                raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                sides.append((data.get("headers") or {}, raw))
            else:
                sides.append(({}, json.dumps(data).encode()))
        else:
            with _open_catalog(db) as catalog:
                found = catalog.detail(catalog.resolve(name, cassette))
            sides.append((found.request_headers, found.request_body))
    try:
        lines = compare(sides[0][0], sides[0][1], sides[1][0], sides[1][1])
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    click.echo("\n".join(lines))


@main.command()
@click.option("--cassette", help="Only this cassette (default: every cassette).")
@click.option(
    "--rules",
    type=RULES_FILE,
    help="New key rules for the cassette(s); default: keep the rules each was recorded with.",
)
@click.option("--preset", type=PRESET, multiple=True, help="Add a built-in preset.")
@db_option
def rekey(cassette: str | None, rules: Rules | None, preset: tuple[str, ...], db: Path) -> None:
    """Recompute recording keys after a rules change or a key-scheme upgrade.

    Requests that differed before and are the same under the new rules are
    reported as collisions; they replay in the order they were recorded.

    \b
    Example:
        claude-vcr rekey --cassette my_tests --preset claude-code
    """
    from .rekey import rekey as rekey_cassettes
    from .render import rekey_text

    new_rules = (rules or Rules()).with_presets(*preset) if rules or preset else None
    with _open_store(db) as store:
        results = rekey_cassettes(store, cassette, new_rules)
    _echo(rekey_text(results))


# --- protocol checks: lint the recordings, fixtures from them, verify another endpoint -------------------


@main.command()
@cassette_filter
@db_option
@json_option
def lint(cassette: str | None, db: Path, as_json: bool) -> None:
    """Check every recorded response against the Anthropic protocol rules.

    One line per recording with findings: short key, method, path, then each
    finding as `E|W RULE @EVENT message` (rule ids of the protocol checklist;
    @EVENT is the SSE event's position). A summary line ends the output. Exits 1
    if any recording has an error; warnings alone exit 0.

    \b
    Example:
        claude-vcr lint
        claude-vcr lint --cassette my_tests --json | jq '.[] | select(.errors > 0)'
    """
    from .lint import lint as lint_cassettes
    from .render import lint_text
    from .schema import read_errors

    with _open_catalog(db) as catalog, read_errors(db):  # a large body is read as it is checked
        results = lint_cassettes(catalog, cassette)
    if as_json:
        _json_out([result.to_json() for result in results])
    else:
        _echo(lint_text(results, with_cassette=cassette is None))
    if any(result.errors for result in results):
        sys.exit(1)


@main.command()
@click.argument("key_prefix")
@cassette_filter
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE instead of stdout."
)
@db_option
def fixture(key_prefix: str, cassette: str | None, output: Path | None, db: Path) -> None:
    """Write one recording as a normalised JSON fixture with assertions.

    Ids become numbered placeholders that keep their prefix and cross-references
    (the toolu_2 of a tool_use is the toolu_2 of its tool_result), signatures and
    encrypted data a length-only placeholder; volatile headers are dropped and
    secrets are never there. Assertions: event types without pings, blocks (index,
    type, tool name, joined text, parsed input), stop reason, usage fields. The
    same recording always gives the same bytes.

    \b
    Example:
        claude-vcr fixture 3f2a9c1b -o tests/fixtures/tool_use.json
    """
    from .fixtures import build_fixture, fixture_json

    with _open_catalog(db) as catalog:
        recording = catalog.resolve(key_prefix, cassette)
        text = fixture_json(build_fixture(catalog.detail(recording)))
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    click.echo(f"Wrote the fixture of {recording.short} ({recording.method} {recording.path}) to {output}")


@main.command()
@click.option(
    "--target",
    type=URL,
    metavar="URL",
    envvar="VCR_VERIFY_TARGET",
    show_envvar=True,
    help="Base URL of the endpoint under test; {cassette} in it becomes each recording's cassette. "
    "Without it, Bedrock and Vertex recordings go to their cloud's endpoint (first-party ones need it).",
)
@cassette_filter
@click.option(
    "--junit", type=click.Path(dir_okay=False, path_type=Path), help="Also write JUnit XML to FILE, for CI."
)
@click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=120.0, show_default=True, help="Seconds per request."
)
@click.option(
    "--allow-new-warnings",
    is_flag=True,
    help="Fail on errors only (by default a warning the recording did not have fails too).",
)
@click.option(
    "--translated",
    is_flag=True,
    help="The target translates another API (e.g. an OpenAI-compatible adapter): thinking signatures and "
    "estimated input usage are graded as PROTOCOL.md grades translated streams.",
)
@db_option
@json_option
def verify(
    target: str | None,
    cassette: str | None,
    junit: Path | None,
    timeout: float,
    allow_new_warnings: bool,
    translated: bool,
    db: Path,
    as_json: bool,
) -> None:
    """Send each recorded request to another endpoint and check its answers.

    The live answer is validated against the protocol rules and compared with the
    recording by meaning: pings dropped, deltas joined per block, tool JSON parsed,
    ids normalised, token counts only checked for presence and sanity (rules V1-V10,
    see `claude_vcr.verify`). One line per recording, then a summary; exits 1 if any fails.
    Requests carry their recorded headers and x-api-key from VCR_VERIFY_API_KEY (a
    placeholder when unset: recordings hold no key). Bedrock recordings are signed with
    SigV4 from the standard AWS credentials, Vertex ones carry a token from
    GOOGLE_OAUTH_ACCESS_TOKEN or the application-default credentials; Bedrock's event
    streams are compared as the events their frames carry.

    \b
    Example:
        claude-vcr verify --target http://127.0.0.1:4000 --junit verify.xml
        claude-vcr verify --target 'http://127.0.0.1:8000/c/{cassette}' --cassette my_tests
        AWS_PROFILE=ci AWS_REGION=us-west-2 claude-vcr verify --cassette my_bedrock_tests
    """
    from .verify import junit_xml, verify_details, verify_summary

    with _open_catalog(db) as catalog:
        results = verify_details(
            catalog.iter_details(cassette),
            target,
            timeout=timeout,
            allow_new_warnings=allow_new_warnings,
            translated=translated,
            on_result=None if as_json else lambda result: _echo(result.line() + "\n"),
        )
    if junit is not None:
        junit.write_text(junit_xml(results, target), encoding="utf-8")
    if as_json:
        _json_out([result.to_json() for result in results])
    else:
        click.echo(verify_summary(results, target))
    if not all(result.passed for result in results):
        sys.exit(1)


# --- the viewer -------------------------------------------------------------------------------------------


@main.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Listening address (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=8100, show_default=True, help="0 picks a free port.")
@click.option(
    "--misses",
    type=PATHS["directory"],
    help="A folder `serve --save-misses` wrote: the misses page shows each beside its closest recordings.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the viewer in the default browser.")
def ui(db: Path, host: str, port: int, misses: Path | None, open_browser: bool) -> None:
    """Browse a db in a local web page: cassettes, recordings, streams, misses.

    Read only: the db's bytes never change. Listens on 127.0.0.1 unless told
    otherwise; every recorded string is shown as text, never run.

    \b
    Example:
        claude-vcr ui --open
        claude-vcr ui --db tests/vcr.db --misses misses/ --port 8200
    """
    from .ui.server import serve as serve_ui

    serve_ui(db, host=host, port=port, misses=misses, open_browser=open_browser, announce=click.echo)


@main.command()
@click.option(
    "--target",
    type=URL,
    metavar="URL",
    envvar="VCR_CONFORMANCE_TARGET",
    show_envvar=True,
    help="Base URL of the Anthropic-compatible endpoint under test (it must serve /v1/messages); with "
    "--provider bedrock or vertex, of the cloud endpoint (default: the region's).",
)
@click.option(
    "--provider",
    type=click.Choice(["anthropic", "bedrock", "vertex"]),
    default="anthropic",
    show_default=True,
    help="The API the target speaks: bedrock sends each scenario as InvokeModel, signed with SigV4 from "
    "the standard AWS credentials; vertex as rawPredict (project and region from "
    "ANTHROPIC_VERTEX_PROJECT_ID and CLOUD_ML_REGION) with a token from GOOGLE_OAUTH_ACCESS_TOKEN or the "
    "application-default credentials. Scenarios with no form there (models; count_tokens on Bedrock) are "
    "left out.",
)
@click.option(
    "--cloud-model",
    metavar="ID",
    help="With --provider bedrock or vertex: the model id in the path for every scenario (default: "
    "us.anthropic.<model>-v1:0 on Bedrock, <model>@<date> on Vertex).",
)
@click.option(
    "--translated",
    is_flag=True,
    help="The target translates another API: thinking signatures and exact input token counts are "
    "graded as PROTOCOL.md grades translated streams.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Fail on warnings too: what only the model decides (which text, tool, stop reason) and protocol "
    "warnings ([DONE], no request-id...).",
)
@click.option(
    "--scenario", "scenarios", multiple=True, metavar="NAME", help="Only this scenario (repeatable)."
)
@click.option("--list", "list_only", is_flag=True, help="List the scenarios and exit.")
@click.option(
    "--junit", type=click.Path(dir_okay=False, path_type=Path), help="Also write JUnit XML to FILE, for CI."
)
@click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=120.0, show_default=True, help="Seconds per request."
)
@click.option(
    "--claude-code",
    "claude_code",
    type=click.Path(exists=True, dir_okay=False),
    metavar="PATH",
    help="Also run this Claude Code CLI through the target: a text turn and a Bash tool turn (with "
    "--provider, as Claude Code on that cloud: CLAUDE_CODE_USE_BEDROCK/VERTEX, its own auth skipped).",
)
@json_option
def conformance(
    target: str | None,
    provider: str,
    cloud_model: str | None,
    translated: bool,
    strict: bool,
    scenarios: tuple[str, ...],
    list_only: bool,
    junit: Path | None,
    timeout: float,
    claude_code: str | None,
    as_json: bool,
) -> None:
    """Check an Anthropic-compatible endpoint (a gateway, a translating proxy) with the scenario library.

    Each scenario sends one request (text, Claude Code's tools, thinking, max_tokens, tool_choice, images,
    count_tokens, models, an invalid request, Claude Code's own request shape...) and judges the answer by
    the protocol rules and the scenario's expectations (rules X1-X9, see `claude_vcr.conformance.judge`).
    What only the model decides is a warning; warnings fail with --strict. Needs no db, writes nothing.
    One line per scenario, then a summary; exits 1 if any fails. x-api-key: VCR_CONFORMANCE_API_KEY.

    \b
    Example:
        claude-vcr conformance --target http://127.0.0.1:4000 --junit conformance.xml
        claude-vcr conformance --target http://127.0.0.1:8082 --translated --scenario tool_bash
        AWS_PROFILE=ci claude-vcr conformance --provider bedrock --cloud-model us.anthropic.claude-haiku-4-5-20251001-v1:0
    """
    from .conformance import conformance_junit, conformance_summary, run_conformance
    from .conformance.runner import select

    if list_only:
        from .render import scenarios_text

        chosen = select(scenarios, provider)
        if as_json:
            _json_out([{"name": s.name, "method": s.method, "path": s.path, "covers": s.covers} for s in chosen])
        else:
            click.echo(scenarios_text(chosen), nl=False)
        return
    if target is None and provider == "anthropic":
        raise click.UsageError("Missing option '--target' (or --list, or --provider bedrock|vertex).")
    results = run_conformance(
        target,
        scenarios=scenarios,
        translated=translated,
        strict=strict,
        timeout=timeout,
        claude_code=claude_code,
        on_result=None if as_json else lambda result: _echo(result.line() + "\n"),
        provider=provider,
        cloud_model=cloud_model,
    )
    shown = target or f"{provider}'s endpoint"
    if junit is not None:
        junit.write_text(conformance_junit(results, shown), encoding="utf-8")
    if as_json:
        _json_out([result.to_json() for result in results])
    else:
        click.echo(conformance_summary(results, shown))
    if not all(result.passed for result in results):
        sys.exit(1)
