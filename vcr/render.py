"""The text the commands print for a person: tables, `stats` blocks, `show`'s decoded recording, summaries.

Each function takes what a library call returned and gives the text (ending in a newline), so the CLI only
parses, calls and prints, and a script can use the same text. `--json` output is here too. Stdlib only.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from . import providers
from .catalog import display_time
from .matching import short_key

if TYPE_CHECKING:
    from .catalog import CassetteRow, CassetteStats
    from .interchange.recorder import ImportReport
    from .lint import LintResult
    from .records import RecordingRow
    from .redact import RedactReport, StoredSecret
    from .rekey import RekeyResult


def as_json(value: Any) -> str:
    """Indented JSON; a list goes one item per line, which json's C encoder writes ten times faster."""
    if isinstance(value, list):
        items = ",\n".join(json.dumps(item, ensure_ascii=False, default=list) for item in value)
        return f"[\n{items}\n]\n" if value else "[]\n"
    return json.dumps(value, indent=2, ensure_ascii=False, default=list) + "\n"


def table(rows: Sequence[Sequence[str]], right: tuple[int, ...] = ()) -> str:
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
    return "\n".join(lines) + "\n"


EMPTY = "empty: no recordings (`claude-vcr clear NAME` removes it)"
"""What a cassette whose last recording was deleted shows instead of dashes."""


def cassettes_table(found: Sequence[CassetteRow]) -> str:
    """`cassettes`: name, recording count, stored size, newest recording; an emptied cassette says so."""
    rows = [["NAME", "RECORDINGS", "STORED", "NEWEST"]]
    rows += [
        [c.name, f"{c.recordings:,}", f"{c.stored_size:,}", display_time(c.newest)]
        if c.recordings
        else [c.name, "0", "0", EMPTY]
        for c in found
    ]
    return table(rows, right=(1, 2))


def recordings_table(found: Sequence[RecordingRow], *, with_cassette: bool) -> str:
    """`list`'s table, one f-string per line: 100,000 lines are formatted in about 0.1 s. The prompt excerpt
    comes last, as it is the widest and most ragged column."""

    def width(values: Iterable[str], title: str) -> int:
        return max(len(title), max(map(len, values)))

    w_cassette = width({r.cassette for r in found}, "CASSETTE") if with_cassette else 0
    w_key = width({r.short for r in found if r.ordinal}, "KEY") if any(r.ordinal for r in found) else 12
    w_method = width({r.method for r in found}, "METHOD")
    w_path = width({r.path for r in found}, "PATH")
    model_title = "MODEL"
    clouds = [providers.provider_of(r.path) for r in found]
    if any(cloud != "anthropic" for cloud in clouds):  # the provider is named only when a cloud's recordings are listed
        model_title = "PROVIDER:MODEL"
        found = [r._replace(model=f"{cloud}:{r.model or '-'}") for cloud, r in zip(clouds, found, strict=True)]
    w_model = width({r.model or "-" for r in found}, model_title)
    w_size = width({f"{max(r.response_size for r in found):,}"}, "SIZE")
    lead = f"{'CASSETTE':<{w_cassette}} " if with_cassette else ""
    lines = [
        f"{lead}{'KEY':<{w_key}} {'METHOD':<{w_method}} {'PATH':<{w_path}} {model_title:<{w_model}} STREAM STATUS "
        f"{'SIZE':>{w_size}} {'DATE':<19} PROMPT"
    ]
    for r in found:
        lead = f"{r.cassette:<{w_cassette}} " if with_cassette else ""
        lines.append(
            f"{lead}{r.short:<{w_key}} {r.method:<{w_method}} {r.path:<{w_path}} {r.model or '-':<{w_model}} "
            f"{'yes' if r.stream else 'no':<6} {r.status:>6} {r.response_size:>{w_size},} {display_time(r.created_at):<19} "
            f"{r.prompt_excerpt or '-'}"
        )
    return "\n".join(lines) + "\n"


def _bytes(count: int) -> str:
    return f"{count:,} bytes ({count / 1024 / 1024:.2f} MB)"


def stats_table(per_cassette: Sequence[CassetteStats], total: CassetteStats) -> str:
    """`stats` over many cassettes: one line each, then the total; `--cassette NAME` gives one in full."""
    rows = [["CASSETTE", "RECORDINGS", "STREAMED", "RESPONSES", "STORED", "RATIO", "MODELS", "NEWEST"]]
    for s in [*per_cassette, total]:
        models = ", ".join(list(s.by_model)[:2]) + (f" +{len(s.by_model) - 2}" if len(s.by_model) > 2 else "")
        if s.recordings == 0 and s.cassette is not None:
            rows.append([s.cassette, "0", "", "", "", "", "", EMPTY])
            continue
        rows.append([
            s.cassette if s.cassette is not None else "(all)",
            f"{s.recordings:,}",
            f"{s.streaming:,}",
            f"{s.response_size:,}",
            f"{s.stored_size:,}",
            f"{s.ratio:.1f}:1" if s.ratio else "-",
            models or "-",
            display_time(s.newest),
        ])
    return table(rows, right=(1, 2, 3, 4, 5)) + "Sizes in bytes; `claude-vcr stats --cassette NAME` shows one in full.\n"


def stats_text(blocks: Iterable[CassetteStats]) -> str:
    """`stats --cassette NAME`: the cassette in full, as the seed prints it."""
    out = []
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
        out.append("\n".join(lines) + "\n\n")
    return "".join(out)


def show_text(info: dict[str, Any]) -> str:
    """`show` for a person: where, the request in brief, the response decoded (from the decoded dict)."""
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
    if info.get("provider", "anthropic") != "anthropic":
        lines.append(f"  provider {info['provider']}, model {info['model'] or '-'}")
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
        if response.get("frame_problem"):
            complete += f" (event-stream frames: {response['frame_problem']})"
        events, tail = response["events"], response.get("events_tail", [])
        total = response.get("events_total", len(events))
        lines.append(f"  events ({total:,}){complete}:")
        lines += [f"    {i:>3} {line}" for i, line in enumerate(events)]
        if total > len(events) + len(tail):
            lines.append(f"    ... {total - len(events) - len(tail):,} events not shown (`show --raw` has them all)")
        lines += [f"    {total - len(tail) + i:>3} {line}" for i, line in enumerate(tail)]
    elif response.get("kind") == "json" and "blocks" not in response:
        lines.append("  body:")
        lines += [
            "    " + line for line in json.dumps(response["json"], indent=2, ensure_ascii=False).splitlines()
        ]
    elif response.get("kind") == "text":
        lines.append(f"  body: {response['text']}")
    if "blocks" in response:
        lines.append("  blocks:")
        lines += [_block_line(block) for block in response["blocks"]]
        message = response.get("message") or {}
        if message:
            lines.append("  " + ", ".join(f"{k}={json.dumps(v)}" for k, v in message.items()))
    return "\n".join(lines) + "\n"


BLOCK_CHARS_SHOWN = 200_000
"""A block's text in `show` up to this length (about 50,000 tokens, past any real answer's); a valid stream of
a million deltas joins 5 MB of it, and `--json` or `--raw` give it whole."""


def _clipped(text: Any) -> str:
    text = str(text)
    if len(text) <= BLOCK_CHARS_SHOWN:
        return text
    return f"{text[:BLOCK_CHARS_SHOWN]} ... ({len(text) - BLOCK_CHARS_SHOWN:,} more characters: `show --json`)"


def _block_line(block: dict[str, Any]) -> str:
    """`[0] tool_use get_weather (toolu_1): {"city": "Paris"}`: one content block with its joined content."""
    head = f"    [{block['index']}] {block['type']}"
    if "name" in block:
        head += f" {block['name']} ({block.get('id')})"
    for name in ("text", "thinking"):
        if name in block:
            return f"{head}: {_clipped(block[name])}"
    if "input" in block:
        shown = (
            block["input"]
            if isinstance(block["input"], str)
            else json.dumps(block["input"], ensure_ascii=False)
        )
        return f"{head}: {_clipped(shown)}"
    return head


def lint_summary(results: Sequence[LintResult]) -> str:
    """The last line of `claude-vcr lint`: counts a CI log can be grepped for."""
    errors = sum(r.errors for r in results)
    warnings = sum(r.warnings for r in results)
    flagged = sum(1 for r in results if r.errors or r.warnings)
    cassettes = len({r.row.cassette for r in results})
    return (
        f"Linted {len(results):,} recording(s) in {cassettes} cassette(s): {errors} error(s), "
        f"{warnings} warning(s) in {flagged} recording(s)"
    )


def lint_text(results: Sequence[LintResult], *, with_cassette: bool) -> str:
    """`lint`: a line per recording with findings, then the summary line."""
    lines = [r.line(cassette=with_cassette) for r in results if r.errors or r.warnings]
    return "\n".join([*lines, lint_summary(results)]) + "\n"


def rekey_text(results: Iterable[RekeyResult]) -> str:
    """`rekey`: per cassette what changed, then each collision as `new key <- old keys`."""
    lines = []
    for result in results:
        lines.append(
            f"{result.cassette}: {result.recordings} recording(s), {result.changed} new key(s), "
            f"{len(result.collisions)} collision(s)"
            + (
                f", {result.notes_dropped} note(s) of unstored answers dropped (their new keys cannot be known)"
                if result.notes_dropped
                else ""
            )
        )
        lines += [
            f"  {short_key(key)} <- {', '.join(short_key(k) for k in old)}" for key, old in result.collisions
        ]
    return "".join(line + "\n" for line in lines)


def import_text(report: ImportReport, headline: str, *, per_cassette: bool) -> str:
    """`import`: the headline, the count per cassette (directories), replaced keys, then what was skipped."""
    if per_cassette and report.cassettes:
        details = ", ".join(f"{name}: {count:,}" for name, count in sorted(report.cassettes.items()))
        headline += f" ({details})"
    if report.replaced_keys:
        headline += f"; {report.replaced_keys:,} keys replaced their older recordings"
    lines = [headline] + [
        f"  skipped {count:,}: {reason}" for reason, count in sorted(report.skipped.items())
    ]
    lines += [f"warning: {line}" for line in report.warnings]
    return "\n".join(lines) + "\n"


def scan_text(findings: Sequence[StoredSecret]) -> str:
    """`scan`: one line per finding (recording, where, kind, masked preview), then a summary."""
    if not findings:
        return "No credential-shaped strings found.\n"
    lines = [
        f"{f.recording}  {f.side} {f.json_path}  {f.kind}  {f.preview}" for f in findings
    ]
    recordings = len({(f.cassette, f.key, f.ordinal) for f in findings})
    lines.append(
        f"{len(findings):,} finding(s) in {recordings:,} recording(s): "
        "`claude-vcr redact` replaces them with placeholders (the cassettes keep replaying)"
    )
    return "\n".join(lines) + "\n"


def redact_text(report: RedactReport) -> str:
    """`redact`: what was replaced and dropped, and which cassettes were rekeyed."""
    dropped = []
    if report.notes:
        dropped.append(f"Dropped {report.notes:,} note(s) of unstored answers holding a credential-shaped string")
    if report.replaced:
        dropped.append(
            f"Dropped {report.replaced:,} replaced answer(s) kept for git's history holding a credential-shaped string"
        )
    if not report.recordings:
        return "".join(line + "\n" for line in dropped) or "Nothing to redact.\n"
    kinds = ", ".join(f"{kind} x{n}" for kind, n in sorted(report.secrets.items())) or "none"
    lines = [
        f"Redacted {report.recordings:,} recording(s): {sum(report.secrets.values()):,} secret(s) in bodies "
        f"({kinds}), {report.headers:,} credential header(s) dropped, {report.paths:,} query value(s) replaced",
        f"Keys recomputed in: {', '.join(report.cassettes)}"
        + (f" ({report.collisions} keys now shared by several recordings)" if report.collisions else ""),
        *dropped,
        "Older copies of the db (git history, backups) still hold the secrets: rotate them.",
    ]
    return "\n".join(lines) + "\n"


def scenarios_text(scenarios: Iterable[Any]) -> str:
    """`conformance --list`: each scenario's name, request and what it covers."""
    rows = [("SCENARIO", "REQUEST", "COVERS")]
    for scenario in scenarios:
        form = "stream" if scenario.stream else "json" if scenario.request is not None else ""
        rows.append((scenario.name, f"{scenario.method} {scenario.path} {form}".rstrip(), scenario.covers))
    return table(rows)


def run_summary(
    counts: dict[str, tuple[int, int, int]],
    orphans: dict[str, list[tuple[str, int]]] | None,
    db: str,
    drift: dict[str, str] | None = None,
) -> str:
    """What a test run did with its cassettes: recorded / replayed / missed per cassette, the cassettes whose
    Claude Code harness drifted (one line each), then the recordings it never used and the command that deletes
    them (`orphans` None: not judged)."""
    if not counts:
        return ""
    totals = [sum(c[i] for c in counts.values()) for i in range(3)]
    lines = [
        f"claude-vcr: {len(counts)} cassette(s) in {db}: "
        f"{totals[0]} recorded, {totals[1]} replayed, {totals[2]} missed"
    ]
    rows = [["cassette", "recorded", "replayed", "missed"]]
    rows += [[name, *(str(n) for n in c)] for name, c in sorted(counts.items())]
    lines += ["  " + line for line in table(rows, right=(1, 2, 3)).splitlines()]
    for name, line in sorted((drift or {}).items()):
        lines.append(f"claude-vcr: cassette {name} replayed another Claude Code's recordings: {line}")
    if orphans:
        unused = sum(len(keys) for keys in orphans.values())
        lines.append(
            f"claude-vcr: {unused} recording(s) in {len(orphans)} cassette(s) were never used by this run; "
            "delete them with:"
        )
        for name, keys in sorted(orphans.items()):
            shown = " ".join(f"{key[:12]}#{ordinal}" for key, ordinal in keys)
            lines.append(f"  claude-vcr delete --db {shlex.quote(db)} --cassette {name} {shown}")
    return "\n".join(lines) + "\n"
