"""The `claude-vcr` command line: each command parses options, calls one library function and prints."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from . import __version__

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
    type=click.Choice(["auto", "record", "replay", "passthrough"]),
    default="auto",
    envvar="VCR_MODE",
    show_default=True,
    show_envvar=True,
    help="record: forward and store; replay: answer from the cassette; auto: replay hits, record misses; "
    "passthrough: forward, store nothing (monitor mode, with --check).",
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
@click.option(
    "--check",
    is_flag=True,
    envvar="VCR_CHECK",
    show_envvar=True,
    help="Validate every response against the Anthropic protocol rules; log what breaks them.",
)
@click.option(
    "--upstream-format",
    type=click.Choice(["anthropic", "openai"]),
    default="anthropic",
    envvar="VCR_UPSTREAM_FORMAT",
    show_default=True,
    show_envvar=True,
    help="openai: translate to an OpenAI-compatible Chat Completions upstream (OpenRouter, Ollama, vLLM...).",
)
@click.option(
    "--model-map",
    multiple=True,
    envvar="VCR_MODEL_MAP",
    show_envvar=True,
    metavar="GLOB=MODEL",
    help="With --upstream-format openai: send models matching GLOB as MODEL, e.g. 'claude-*=qwen/qwen3-coder'.",
)
@click.option(
    "--upstream-key-env",
    default="VCR_UPSTREAM_API_KEY",
    show_default=True,
    help="Environment variable with the translating upstream's API key (never stored).",
)
@click.option(
    "--ping-interval",
    type=click.FloatRange(min=0.1),
    default=15.0,
    envvar="VCR_PING_INTERVAL",
    show_default=True,
    show_envvar=True,
    help="With --upstream-format openai: seconds of upstream silence before a ping event.",
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
    check: bool,
    upstream_format: str,
    model_map: tuple[str, ...],
    upstream_key_env: str,
    ping_interval: float,
) -> None:
    """Run the record/replay proxy.

    Point a client at it with ANTHROPIC_BASE_URL=http://127.0.0.1:8000 (or
    http://127.0.0.1:8000/c/NAME to pick cassette NAME). One line is printed per
    request: outcome, short key, method, path, status, milliseconds.

    \b
    Example:
        claude-vcr serve --mode replay --cassette basic_tests
    """
    from .matching import Rules, RulesError, load_rules
    from .names import BadCassetteName, validate_cassette_name
    from .proxy import ListenError, ProxyConfig
    from .proxy import serve as run_proxy
    from .store import StoreError

    try:
        key_rules = (load_rules(rules) if rules else Rules()).with_presets(*preset)
    except RulesError as error:
        raise click.BadParameter(str(error), param_hint="--rules") from error
    pace_factor = parse_pace(pace)
    mapping = []
    for item in model_map:
        pattern, sep, model = item.partition("=")
        if not sep or not pattern or not model:
            raise click.BadParameter(
                f"{item!r}: use GLOB=MODEL, e.g. 'claude-*=qwen/qwen3-coder'", param_hint="--model-map"
            )
        mapping.append((pattern, model))

    if not upstream.startswith(("http://", "https://")):
        raise click.BadParameter(f"{upstream!r} is not an http:// or https:// URL", param_hint="--upstream")
    try:
        validate_cassette_name(cassette)
    except BadCassetteName as error:
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
        check=check,
        upstream_format=upstream_format,
        model_map=tuple(mapping),
        upstream_key_env=upstream_key_env,
        ping_interval=ping_interval,
    )
    try:
        run_proxy(config, announce=lambda line: click.echo(line))
    except StoreError as error:
        raise click.ClickException(str(error)) from error
    except ListenError as error:
        raise click.ClickException(str(error)) from error


# --- cassettes as files people share: inspect, delete, export/import, git ------------------------------
# These commands import neither aiohttp nor (when they only read) sqlite-utils, so they start fast.


class _Failure:
    """Library errors become click errors: a message and exit status 1, never a traceback."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            return
        from .errors import ClaudeVCRError

        known: tuple[type[BaseException], ...] = (ClaudeVCRError, OSError)
        if isinstance(exc, OSError) and exc.filename:
            raise click.ClickException(f"{exc.filename}: {exc.strerror or exc}") from exc
        if isinstance(exc, known):
            raise click.ClickException(str(exc)) from exc


def _open_catalog(db: Path):
    """The db read-only: a missing file is reported, never created."""
    from .catalog import Catalog

    with _Failure():
        return Catalog.open(db)


def _open_store(db: Path, *, must_exist: bool = True):
    """The db for writing (migrated on open); commands that only change what exists refuse a missing file."""
    with _Failure():
        if must_exist and (not db.exists() or db.stat().st_size == 0):
            raise click.ClickException(f"no database at {db}")
        from .store import Store

        return Store(db)


def _json_out(value) -> None:
    """Indented JSON; a list goes one item per line, which json's C encoder writes ten times faster."""
    import json

    if isinstance(value, list):
        items = ",\n".join(json.dumps(item, ensure_ascii=False, default=list) for item in value)
        sys.stdout.write(f"[\n{items}\n]\n" if value else "[]\n")
        return
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=list))


def _bytes(count: int) -> str:
    return f"{count:,} bytes ({count / 1024 / 1024:.2f} MB)"


def _table(rows: list[list[str]], right: tuple[int, ...] = ()) -> str:
    """Columns padded to their widest cell; `right` columns aligned right (numbers)."""
    if not rows:
        return ""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append(" ".join(cells).rstrip())
    return "\n".join(lines)


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
    from .catalog import display_time

    with _open_catalog(db) as catalog, _Failure():
        found = catalog.cassettes()
    if as_json:
        _json_out([c.to_json() for c in found])
        return
    if not found:
        click.echo(f"No cassettes in {db}")
        return
    rows = [["NAME", "RECORDINGS", "STORED", "NEWEST"]]
    rows += [[c.name, f"{c.recordings:,}", f"{c.stored_size:,}", display_time(c.newest)] for c in found]
    click.echo(_table(rows, right=(1, 2)))


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

    if cassette and cassette_option and cassette != cassette_option:
        raise click.UsageError(f"two cassettes given: {cassette!r} and --cassette {cassette_option!r}")
    name = cassette or cassette_option
    with _open_catalog(db) as catalog, _Failure():
        found = catalog.recordings(name)
    if as_json:
        _json_out([r.to_json() for r in found])
        return
    if not found:
        click.echo(f"No recordings in cassette {name!r}" if name else f"No recordings in {db}")
        return
    sys.stdout.write(_recording_lines(found, with_cassette=name is None))


def _recording_lines(found, *, with_cassette: bool) -> str:
    """`list`'s table, one f-string per line: 100,000 lines are formatted in about 0.1 s."""
    from .catalog import display_time

    def width(values, title: str) -> int:
        return max(len(title), max(map(len, values)))

    w_cassette = width({r.cassette for r in found}, "CASSETTE") if with_cassette else 0
    w_key = width({r.short for r in found if r.ordinal}, "KEY") if any(r.ordinal for r in found) else 12
    w_method = width({r.method for r in found}, "METHOD")
    w_path = width({r.path for r in found}, "PATH")
    w_model = width({r.model or "-" for r in found}, "MODEL")
    w_size = width({f"{max(r.response_size for r in found):,}"}, "SIZE")
    lead = f"{'CASSETTE':<{w_cassette}} " if with_cassette else ""
    lines = [
        f"{lead}{'KEY':<{w_key}} {'METHOD':<{w_method}} {'PATH':<{w_path}} {'MODEL':<{w_model}} STREAM STATUS "
        f"{'SIZE':>{w_size}} DATE"
    ]
    for r in found:
        lead = f"{r.cassette:<{w_cassette}} " if with_cassette else ""
        lines.append(
            f"{lead}{r.short:<{w_key}} {r.method:<{w_method}} {r.path:<{w_path}} {r.model or '-':<{w_model}} "
            f"{'yes' if r.stream else 'no':<6} {r.status:>6} {r.response_size:>{w_size},} {display_time(r.created_at)}"
        )
    return "\n".join(lines) + "\n"


@main.command()
@cassette_filter
@db_option
@json_option
def stats(cassette: str | None, db: Path, as_json: bool) -> None:
    """Show statistics per cassette: recordings by model, streaming or not, sizes, date range.

    Stored bytes are what the db holds (zstd-compressed); raw bytes are the requests
    and responses as sent. Without --cassette every cassette is shown, then the total.

    \b
    Example:
        claude-vcr stats --cassette basic_tests
        claude-vcr stats --json
    """
    from .catalog import display_time

    with _open_catalog(db) as catalog, _Failure():
        per_cassette = catalog.stats(cassette)
        total = catalog.combine(per_cassette) if cassette is None else per_cassette[0]
    if as_json:
        _json_out({"cassettes": [s.to_json() for s in per_cassette], "total": total.to_json()})
        return
    if not per_cassette:
        click.echo(f"No cassettes in {db}")
        return
    blocks = per_cassette + ([total] if cassette is None and len(per_cassette) > 1 else [])
    for s in blocks:
        lines = ["=" * 80, f"Cassette: {s.cassette}" if s.cassette else "All cassettes", "=" * 80, ""]
        lines.append(f"Total recordings: {s.recordings:,}")
        if s.recordings:
            lines += ["", "By model:"] + [f"  {model}: {count:,}" for model, count in s.by_model.items()]
            lines += [
                "",
                f"Streaming responses: {s.streaming:,}",
                f"Non-streaming responses: {s.non_streaming:,}",
            ]
            lines += ["", f"Total size: {_bytes(s.response_size)} of responses"]
            ratio = f", compression {s.ratio:.1f}:1" if s.ratio else ""
            lines.append(
                f"Stored: {s.stored_size:,} bytes for {s.raw_size:,} raw bytes (requests + responses){ratio}"
            )
            lines += [
                "",
                "Date range:",
                f"  Oldest: {display_time(s.oldest)}",
                f"  Newest: {display_time(s.newest)}",
            ]
        click.echo("\n".join(lines) + "\n")


def _resolve(catalog, key_prefix: str, cassette: str | None):
    """The one recording a prefix names; the ambiguous case lists the candidates."""
    with _Failure():
        return catalog.resolve(key_prefix, cassette)


def _show_text(info: dict) -> str:
    """`show` for a person: where, the request in brief, the response decoded."""
    import json

    from .catalog import display_time

    request, response = info["request"], info["response"]
    timing = ""
    if info["duration_ms"] is not None:
        timing = f", {info['duration_ms']:.0f} ms"
        if info["ttfb_ms"] is not None:
            timing += f" (first byte {info['ttfb_ms']:.0f} ms)"
    lines = [
        f"Recording {info['key']}" + (f"#{info['ordinal']}" if info["ordinal"] else ""),
        f"  cassette {info['cassette']}, key scheme {info['key_scheme']}, "
        f"recorded {display_time(info['created_at'])} UTC{timing}",
    ]
    if info["meta"]:
        lines.append(f"  meta: {json.dumps(info['meta'], ensure_ascii=False)}")
    lines += ["", f"Request: {request['method']} {request['path']}"]
    fields = request.get("fields", {})
    if fields:
        lines.append("  " + ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in fields.items()))
    lines.append("  headers:")
    lines += [f"    {name}: {value}" for name, value in request["headers"]]
    lines.append(f"  body: {request['size']:,} bytes")
    if "system" in request:
        system = request["system"]
        lines.append(f"  system: {system['blocks']} block(s), {system['chars']:,} chars: {system['preview']}")
    if "tools" in request:
        lines.append(f"  tools ({len(request['tools'])}): {', '.join(map(str, request['tools']))}")
    if "messages" in request:
        lines.append(f"  messages ({len(request['messages'])}):")
        lines += [f"    [{i}] {m['role']}: {m['preview']}" for i, m in enumerate(request["messages"])]
    if "text" in request:
        lines.append(f"  {request['text']}")
    lines += [
        "",
        f"Response: {response['status']}, {response['content_type'] or 'no content-type'}, "
        f"{response['size']:,} bytes",
    ]
    lines.append("  headers:")
    lines += [f"    {name}: {value}" for name, value in response["headers"]]
    if response.get("kind") == "sse":
        complete = "" if response.get("complete") else " (the stream does not fold into a whole message)"
        lines.append(f"  events ({len(response['events'])}){complete}:")
        lines += [f"    {i:>3} {line}" for i, line in enumerate(response["events"])]
    elif response.get("kind") == "json" and "blocks" not in response:
        lines.append("  body:")
        lines += [
            "    " + line for line in json.dumps(response["json"], indent=2, ensure_ascii=False).splitlines()
        ]
    elif response.get("kind") == "text":
        lines.append(f"  body: {response['text']}")
    if "blocks" in response:
        lines.append("  blocks:")
        for block in response["blocks"]:
            head = f"    [{block['index']}] {block['type']}"
            if "name" in block:
                head += f" {block['name']} ({block.get('id')})"
            if "text" in block:
                lines.append(f"{head}: {block['text']}")
            elif "thinking" in block:
                lines.append(f"{head}: {block['thinking']}")
            elif "input" in block:
                shown = (
                    block["input"]
                    if isinstance(block["input"], str)
                    else json.dumps(block["input"], ensure_ascii=False)
                )
                lines.append(f"{head}: {shown}")
            else:
                lines.append(head)
        message = response.get("message") or {}
        if message:
            lines.append("  " + ", ".join(f"{k}={json.dumps(v)}" for k, v in message.items()))
    return "\n".join(lines)


@main.command()
@click.argument("key_prefix")
@cassette_filter
@click.option("--raw", is_flag=True, help="Write the stored response bytes, exactly, to stdout.")
@db_option
@json_option
def show(key_prefix: str, cassette: str | None, raw: bool, db: Path, as_json: bool) -> None:
    """Show one recording: its request and its response decoded for a person.

    KEY_PREFIX is 4 or more hex digits of the key (`KEY#N` for the Nth repeat of a
    request). Streamed responses are shown one SSE event per line, then each content
    block with its text or tool input joined.

    \b
    Example:
        claude-vcr show 3f2a9c1b
        claude-vcr show 3f2a9c1b --raw > response.sse
    """
    from .describe import describe

    with _open_catalog(db) as catalog:
        recording = _resolve(catalog, key_prefix, cassette)
        with _Failure():
            detail = catalog.detail(recording)
            if raw:
                stdout = click.get_binary_stream("stdout")
                stdout.write(detail.response_body)
                stdout.flush()
                return
            info = describe(detail)
    if as_json:
        _json_out(info)
    else:
        click.echo(_show_text(info))


@main.command()
@click.argument("key_prefix")
@cassette_filter
@db_option
def delete(key_prefix: str, cassette: str | None, db: Path) -> None:
    """Delete one recording, named by a key prefix (4+ hex digits, `KEY#N` for a repeat).

    \b
    Example:
        claude-vcr delete 3f2a9c1b
    """
    from .catalog import Catalog

    with _open_store(db) as store:
        recording = _resolve(Catalog(store.db.conn), key_prefix, cassette)
        with _Failure():
            store.delete_recordings([recording.id])
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
    from .catalog import Catalog

    with _open_store(db) as store:
        with _Failure():
            count = Catalog(store.db.conn).stats(cassette)[0].recordings
        if not yes:
            click.confirm(f"Delete all {count:,} recordings in cassette {cassette!r}?", abort=True)
        with _Failure():
            deleted = store.clear_cassette(cassette)
    click.echo(f"Cleared cassette {cassette}: {deleted:,} recordings deleted")


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

    with _open_catalog(db) as catalog, _Failure():
        report = export_directory(catalog, directory, list(cassettes), replace=replace)
    click.echo(f"Exported {report.recordings:,} recordings in {report.cassettes} cassette(s) to {directory}")


@main.command("import")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--cassette", help="Dump: the cassette to import into (default: default). Directory: only this one."
)
@click.option("--all-paths", is_flag=True, help="Dump: import every path, not only the API's /v1/ paths.")
@click.option(
    "--record-errors", is_flag=True, help="Dump: also import non-2xx answers, as serve --record-errors."
)
@click.option(
    "--preset",
    multiple=True,
    help="Key rules preset (e.g. claude-code) for cassettes the import creates; existing ones keep theirs.",
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
    """Import a seed-layout directory or a mitmproxy dump (`mitmdump -w FILE`).

    A directory is read as the seed tool writes it (or as `export` wrote it): keys
    are recomputed with claude-vcr's scheme and the seed's key is kept in the
    recording's meta. A file is read as a mitmproxy dump, streaming, without
    mitmproxy: HTTP flows to /v1/ paths are imported, bodies decoded, secrets in
    headers dropped. Either way the import is one transaction: on any error the db
    is left as it was.

    \b
    Example:
        claude-vcr import cassettes/
        claude-vcr import capture.mitm --cassette from_capture
    """
    from .catalog import validate_cassette_name

    if source.is_file() and source.name == "index.json":
        source = source.parent
    created = not db.exists()
    try:
        with _Failure():
            if source.is_dir():
                from .interchange.seed import import_directory

                with _open_store(db, must_exist=False) as store:
                    report = import_directory(store, source, [cassette] if cassette else None, presets=preset)
                summary = f"Imported {report.imported:,} recordings from {source}"
            else:
                target = validate_cassette_name(cassette or "default")
                report = _import_dump(source, target, db, all_paths, record_errors, preset)
                summary = f"Imported {report.imported:,} recordings from {report.flows:,} flows into {target}"
    except BaseException:
        if created:  # "as it was" is no file at all
            db.unlink(missing_ok=True)
        raise
    details = [f"{name}: {count:,}" for name, count in sorted(report.cassettes.items())]
    if report.cassettes and source.is_dir():
        summary += f" ({', '.join(details)})"
    if report.replaced_keys:
        summary += f"; {report.replaced_keys:,} keys replaced their older recordings"
    click.echo(summary)
    for reason, count in sorted(report.skipped.items()):
        click.echo(f"  skipped {count:,}: {reason}")


def _import_dump(source: Path, cassette: str, db: Path, all_paths: bool, record_errors: bool, preset):
    """A dump import with a progress bar on a terminal for files over 8 MB; a bad file names the flows read."""
    import contextlib

    from .interchange.mitm import MitmFormatError
    from .interchange.mitm_import import import_dump

    size = source.stat().st_size
    show_bar = size > 8 * 1024 * 1024 and sys.stderr.isatty()
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(_open_store(db, must_exist=False))
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
    """Rewrite the db without dead pages, in a canonical order (do it before a commit).

    The same recordings give the same bytes however they were written. Stop any
    `serve` using the file first: the file is replaced.

    \b
    Example:
        claude-vcr compact && git add vcr.db
    """
    if not db.exists() or db.stat().st_size == 0:
        raise click.ClickException(f"no database at {db}")
    with _Failure():
        from .store import compact as compact_file

        before, after = compact_file(db)
    click.echo(f"Compacted {db}: {before:,} -> {after:,} bytes")


@main.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@db_option
def dump(path: Path | None, db: Path) -> None:
    """Print one sorted line per recording: git's textconv for `git diff` on a db.

    Each line: cassette, short key, method, path, model, stream/json, status, response
    size, date, and short digests of the request and response bodies.

    \b
    Example:
        claude-vcr dump vcr.db
    """
    from .interchange.gitdb import dump_lines

    with _Failure():
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

    with _Failure():
        report = merge(base, ours, theirs)
    click.echo(
        f"claude-vcr merge: {report.taken} key(s) taken from the other side, {report.dropped} deleted",
        err=True,
    )
    for conflict in report.conflicts:
        click.echo(f"  {conflict}", err=True)


@main.command("git-setup")
@click.option(
    "--command",
    help="How git should run claude-vcr (default: claude-vcr if on PATH, else this Python with -m claude_vcr).",
)
@db_option
def git_setup(command: str | None, db: Path) -> None:
    """Make git diff and merge the db: .gitattributes line and the drivers in .git/config.

    After this, `git diff` shows one line per recording and merging two branches
    that recorded different tests unions their recordings instead of conflicting.
    The config is per clone: run it once in every clone.

    \b
    Example:
        claude-vcr git-setup --db tests/vcr.db
    """
    from .interchange.gitdb import setup

    with _Failure():
        report = setup(db, command)
    state = "added to" if report.attributes_added else "already in"
    click.echo(f"{report.attributes_line!r} {state} {report.repo / '.gitattributes'}")
    click.echo(f"git config: diff.claude-vcr.textconv and merge.claude-vcr.driver run {report.command!r}")


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
    store = _open_store(db)
    try:
        with _Failure():
            key, report = explain_request(store, name, request)
    except LookupError as error:
        raise click.ClickException(str(error.args[0])) from error
    finally:
        store.close()
    if report is None:
        click.echo(
            f"hit: {request.method} {request.target} replays recording {short_key(key)} of cassette '{name}'"
        )
        return
    click.echo(report.text())
    sys.exit(1)


@main.command()
@click.option("--cassette", help="Only this cassette (default: every cassette).")
@click.option(
    "--rules",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="New key rules for the cassette(s); default: keep the rules each was recorded with.",
)
@click.option("--preset", type=click.Choice(["claude-code"]), multiple=True, help="Add a built-in preset.")
@db_option
def rekey(cassette: str | None, rules: Path | None, preset: tuple[str, ...], db: Path) -> None:
    """Recompute recording keys after a rules change or a key-scheme upgrade.

    Requests that differed before and are the same under the new rules are
    reported as collisions; they replay in the order they were recorded.

    \b
    Example:
        claude-vcr rekey --cassette my_tests --preset claude-code
    """
    from .matching import Rules, RulesError, load_rules, short_key
    from .rekey import rekey as rekey_cassettes

    new_rules = None
    if rules or preset:
        try:
            new_rules = (load_rules(rules) if rules else Rules()).with_presets(*preset)
        except RulesError as error:
            raise click.BadParameter(str(error), param_hint="--rules") from error
    store = _open_store(db)
    try:
        with _Failure():
            results = rekey_cassettes(store, cassette, new_rules)
    except LookupError as error:
        raise click.ClickException(str(error.args[0])) from error
    finally:
        store.close()
    for result in results:
        click.echo(
            f"{result.cassette}: {result.recordings} recording(s), {result.changed} new key(s), "
            f"{len(result.collisions)} collision(s)"
        )
        for key, old in result.collisions:
            click.echo(f"  {short_key(key)} <- {', '.join(short_key(k) for k in old)}")


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
    from .lint import iter_lint, lint_summary

    with _open_catalog(db) as catalog, _Failure():
        results = list(iter_lint(catalog, cassette))
    if as_json:
        _json_out([result.to_json() for result in results])
    else:
        for result in results:
            if result.errors or result.warnings:
                click.echo(result.line(cassette=cassette is None))
        click.echo(lint_summary(results))
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
        recording = _resolve(catalog, key_prefix, cassette)
        with _Failure():
            text = fixture_json(build_fixture(catalog.detail(recording)))
    if output is None:
        click.echo(text, nl=False)
        return
    with _Failure():
        output.write_text(text, encoding="utf-8")
    click.echo(f"Wrote the fixture of {recording.short} ({recording.method} {recording.path}) to {output}")


@main.command()
@click.option(
    "--target",
    required=True,
    envvar="VCR_VERIFY_TARGET",
    show_envvar=True,
    help="Base URL of the endpoint under test; {cassette} in it becomes each recording's cassette.",
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
    target: str,
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
    see `vcr.verify`). One line per recording, then a summary; exits 1 if any fails.
    Requests carry their recorded headers and x-api-key from VCR_VERIFY_API_KEY (a
    placeholder when unset: recordings hold no key).

    \b
    Example:
        claude-vcr verify --target http://127.0.0.1:4000 --junit verify.xml
        claude-vcr verify --target 'http://127.0.0.1:8000/c/{cassette}' --cassette my_tests
    """
    from .verify import junit_xml, verify_details, verify_summary

    if not target.startswith(("http://", "https://")):
        raise click.BadParameter(f"{target!r} is not an http:// or https:// URL", param_hint="--target")
    with _open_catalog(db) as catalog, _Failure():
        results = verify_details(
            catalog.iter_details(cassette),
            target,
            timeout=timeout,
            allow_new_warnings=allow_new_warnings,
            translated=translated,
            on_result=None if as_json else lambda result: click.echo(result.line()),
        )
    if junit is not None:
        with _Failure():
            junit.write_text(junit_xml(results, target), encoding="utf-8")
    if as_json:
        _json_out([result.to_json() for result in results])
    else:
        click.echo(verify_summary(results, target))
    if not all(result.passed for result in results):
        sys.exit(1)
