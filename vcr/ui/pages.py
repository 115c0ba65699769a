"""The viewer's pages as HTML text, built from what the read side returns; every recorded string is escaped.

Recorded text is untrusted (a prompt may hold `<script>`): nothing reaches the page except through `h()`
(or `attr()` inside an attribute), and the server's Content-Security-Policy forbids inline script anyway.
Stdlib only; no template engine: each page is a function of its data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from html import escape
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from .. import eventstream, providers
from ..catalog import display_time
from ..excerpts import clip
from ..headers import Headers
from ..protocol import Finding
from ..secrets import find as find_secrets
from ..sse import MessageFold, is_stream, parse_sse

if TYPE_CHECKING:
    from ..catalog import CassetteStats
    from ..diagnosis import MissReport
    from ..records import Recording, RecordingRow


def h(value: Any) -> str:
    """Any value as HTML text: the one way recorded strings reach a page."""
    return escape("" if value is None else str(value), quote=True)


attr = h
"""An attribute value (always written in double quotes): escaped the same way, quotes included."""


def mask_headers(headers: Headers) -> Headers:
    """Header values with every credential-shaped string masked (the store already drops credential headers;
    this catches a key under a name the filter let through)."""
    return [(name, mask_text(value)) for name, value in headers]


def mask_text(text: str) -> str:
    """Recorded text with each secret `scan` would find shown as its masked preview (`sk-ant-…(95 chars)`),
    never the secret itself."""
    found = list(find_secrets(text))
    if not found:
        return text
    pieces, at = [], 0
    for secret in found:
        pieces += [text[at : secret.start], secret.preview]
        at = secret.end
    pieces.append(text[at:])
    return "".join(pieces)


def cassette_url(name: str, **query: Any) -> str:
    shown = {k: v for k, v in query.items() if v not in (None, "", 0)}
    return f"/c/{quote(name, safe='')}" + (f"?{urlencode(shown)}" if shown else "")


def recording_url(row_id: int) -> str:
    return f"/r/{row_id}"


def size(count: int) -> str:
    """Bytes for a person: 812 B, 14.2 KB, 3.1 MB."""
    if count < 1024:
        return f"{count} B"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KB"
    return f"{count / 1024 / 1024:.1f} MB"


def layout(title: str, body: str, crumbs: Sequence[tuple[str, str | None]] = ()) -> str:
    """The frame every page shares: title, breadcrumbs, the stylesheet and the one script file."""
    trail = " / ".join(
        f'<a href="{attr(url)}">{h(label)}</a>' if url else f"<span>{h(label)}</span>"
        for label, url in crumbs
    )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{h(title)} · claude-vcr</title>"
        '<link rel="stylesheet" href="/static/ui.css">'
        '<script src="/static/ui.js" defer></script>'
        "</head><body>"
        f'<header><a class="brand" href="/">claude-vcr</a> <nav>{trail}</nav>'
        '<a class="misses-link" href="/misses">misses</a></header>'
        f"<main>{body}</main></body></html>\n"
    )


def error_page(status: int, message: str) -> str:
    return layout(f"{status}", f'<h1>{status}</h1><p class="error">{h(message)}</p>', [("error", None)])


# --- index ---------------------------------------------------------------------------------------------


def lint_cell(name: str, status: tuple[int, int, int] | None) -> str:
    """A cassette's lint status: errors and warnings if it was checked in this session, else a link to check."""
    link = f'<a href="{attr(cassette_url(name))}/lint">'
    if status is None:
        return f"{link}check</a>"
    checked, errors, warnings = status
    if errors:
        return f'{link}<span class="bad">{errors} errors</span>, {warnings} warnings</a>'
    if warnings:
        return f'{link}<span class="warn">{warnings} warnings</span></a>'
    return f'{link}<span class="ok">ok</span> ({checked})</a>'


def index_page(db: str, cassettes: Sequence[CassetteStats], lint: dict[str, tuple[int, int, int]]) -> str:
    rows = []
    for c in cassettes:
        assert c.cassette is not None
        models = ", ".join(f"{h(model)} ({count:,})" for model, count in c.by_model.items())
        rows.append(
            "<tr>"
            f'<td><a href="{attr(cassette_url(c.cassette))}">{h(c.cassette)}</a></td>'
            f'<td class="num">{c.recordings:,}</td>'
            f'<td class="num">{size(c.stored_size)}</td>'
            f"<td>{models or '-'}</td>"
            f"<td>{h(display_time(c.oldest))} – {h(display_time(c.newest))}</td>"
            f"<td>{lint_cell(c.cassette, lint.get(c.cassette))}</td>"
            "</tr>"
        )
    total = sum(c.recordings for c in cassettes)
    body = (
        f'<h1>Cassettes</h1><p class="muted">{h(db)}: {len(cassettes):,} cassettes, {total:,} recordings '
        "(read only)</p>"
        + _filter_box("cassettes")
        + '<table class="list" id="cassettes"><thead><tr><th>cassette</th><th>recordings</th><th>stored</th>'
        "<th>models</th><th>recorded</th><th>lint</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
        + ("" if cassettes else "<p>This database has no cassettes yet.</p>")
    )
    return layout("cassettes", body)


def _filter_box(target: str, value: str = "", *, server: bool = False) -> str:
    """A filter box: typing hides the rows of table `target` that do not contain the text (ui.js); with
    `server`, submitting asks the server, which filters every page of the cassette."""
    hint = "filter: key, path, model, prompt (Enter searches all pages)" if server else "filter"
    return (
        '<form class="filter" method="get">'
        f'<input type="search" name="q" value="{attr(value)}" placeholder="{attr(hint)}" '
        f'data-filter="{attr(target)}" autocomplete="off" aria-label="filter"></form>'
    )


# --- cassette ------------------------------------------------------------------------------------------


def grouped(rows: Iterable[RecordingRow]) -> list[list[RecordingRow]]:
    """Rows of one key together (a request asked again gets its repeats right below), in first-seen order."""
    groups: dict[str, list[RecordingRow]] = {}
    for row in rows:
        groups.setdefault(row.key, []).append(row)
    return [sorted(group, key=lambda r: r.ordinal) for group in groups.values()]


def cassette_page(
    name: str, rows: Sequence[RecordingRow], total: int, *, text: str, offset: int, limit: int
) -> str:
    lines = []
    for group in grouped(rows):
        for row in group:
            repeat = row.ordinal > 0
            count = f' <span class="badge">×{len(group)}</span>' if len(group) > 1 and not repeat else ""
            lines.append(
                f'<tr class="{"repeat" if repeat else ""}">'
                f"<td>{h(display_time(row.created_at))}</td>"
                f'<td class="key"><a href="{recording_url(row.id)}">{h(row.short)}</a>{count}</td>'
                f"<td>{h(row.method)}</td><td>{h(row.path)}</td><td>{h(row.model or '-')}</td>"
                f"<td>{'stream' if row.stream else 'json'}</td>"
                f'<td class="num {"bad" if row.status >= 400 else ""}">{row.status}</td>'
                f'<td class="num">{size(row.response_size)}</td>'
                f'<td class="prompt">{h(mask_text(row.prompt_excerpt or ""))}</td>'
                "</tr>"
            )
    shown = f"{offset + 1:,}–{offset + len(rows):,} of {total:,}" if rows else f"0 of {total:,}"
    matching = f" matching {h(text)!s}" if text else ""
    pager = []
    if offset > 0:
        previous = cassette_url(name, q=text, offset=max(0, offset - limit))
        pager.append(f'<a rel="prev" href="{attr(previous)}">← previous</a>')
    if offset + len(rows) < total:
        pager.append(
            f'<a rel="next" href="{attr(cassette_url(name, q=text, offset=offset + limit))}">next →</a>'
        )
    body = (
        f"<h1>{h(name)}</h1>"
        f'<p class="muted">recordings {shown}{matching}, oldest first; repeats of a request grouped under it · '
        f'<a href="{attr(cassette_url(name))}/lint">lint this cassette</a></p>'
        + _filter_box("recordings", text, server=True)
        + '<table class="list" id="recordings"><thead><tr><th>time</th><th>key</th><th>method</th><th>path</th>'
        "<th>model</th><th>kind</th><th>status</th><th>size</th><th>prompt</th></tr></thead><tbody>"
        + "".join(lines)
        + "</tbody></table>"
        + f'<p class="pager">{" ".join(pager)}</p>'
    )
    return layout(name, body, [(name, None)])


def lint_page(name: str, results: Sequence[Any]) -> str:
    """A cassette's lint results: each recording with findings, linked to its page."""
    bad = [r for r in results if r.findings and (r.errors or r.warnings)]
    items = "".join(
        f'<li><a href="{recording_url(r.row.id)}">{h(r.row.short)}</a> {h(r.row.method)} {h(r.row.path)}<ul>'
        + "".join(f'<li class="{attr(f.severity)}">{h(str(f))}</li>' for f in r.findings)
        + "</ul></li>"
        for r in bad
    )
    summary = (
        f"{len(results):,} recordings checked: {sum(r.errors for r in results):,} errors, "
        f"{sum(r.warnings for r in results):,} warnings"
    )
    body = f"<h1>lint: {h(name)}</h1><p>{summary}</p>" + (
        f'<ul class="findings">{items}</ul>' if items else ""
    )
    return layout(f"lint {name}", body, [(name, cassette_url(name)), ("lint", None)])


# --- recording -----------------------------------------------------------------------------------------


def pretty(value: Any) -> str:
    return h(mask_text(json.dumps(value, indent=2, ensure_ascii=False)))


def _text(value: Any) -> str:
    return f'<div class="text">{h(mask_text(str(value)))}</div>'


def content_blocks(content: Any) -> str:
    """A message's content: text, tool_use with its input, tool_result, images as placeholders, the rest as JSON."""
    if isinstance(content, str):
        return _text(content)
    if not isinstance(content, list):
        return f"<pre>{pretty(content)}</pre>"
    out = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            out.append(_text(block.get("text", "")) + _citations(block.get("citations")))
        elif kind in ("thinking", "redacted_thinking"):
            out.append(
                f'<details class="thinking"><summary>{h(kind)}</summary>'
                f"{_text(block.get('thinking', block.get('data', '')))}</details>"
            )
        elif kind in ("tool_use", "server_tool_use"):
            out.append(
                f'<div class="tool-use"><span class="tag">{h(kind)}</span> <b>{h(block.get("name"))}</b> '
                f'<span class="muted">{h(block.get("id"))}</span><pre>{pretty(block.get("input"))}</pre></div>'
            )
        elif kind == "tool_result":
            inner = block.get("content")
            error = ' <span class="bad">is_error</span>' if block.get("is_error") else ""
            out.append(
                f'<div class="tool-result"><span class="tag">tool_result</span> '
                f'<span class="muted">{h(block.get("tool_use_id"))}</span>{error}{content_blocks(inner)}</div>'
            )
        elif kind in ("image", "document"):
            source = block.get("source") if isinstance(block.get("source"), dict) else {}
            data = source.get("data")
            detail = f"{source.get('type', '?')} {source.get('media_type', '')}".strip()
            weight = f", {len(data):,} base64 chars" if isinstance(data, str) else ""
            out.append(f'<div class="placeholder">[{h(kind)}: {h(detail)}{h(weight)}]</div>')
        else:
            out.append(f"<pre>{pretty(block)}</pre>")
    return "".join(out)


def _citations(citations: Any) -> str:
    if not isinstance(citations, list) or not citations:
        return ""
    items = "".join(
        f"<li>{h(c.get('cited_text') or c.get('title') or c.get('url') or '')} "
        f'<span class="muted">{h(c.get("type"))} {h(c.get("url") or c.get("document_title") or "")}</span></li>'
        for c in citations
        if isinstance(c, dict)
    )
    return f'<ul class="citations">{items}</ul>'


def request_html(body: bytes) -> str:
    """The request as a conversation: system collapsed, tools by name (each expandable), the messages."""
    try:
        parsed = json.loads(body) if body.strip() else None
    except (ValueError, UnicodeDecodeError):
        parsed = None
    if not isinstance(parsed, dict):
        return f"<pre>{h(mask_text(clip(body.decode('utf-8', 'replace'), 20000)))}</pre>"
    out = []
    fields = {k: v for k, v in parsed.items() if k not in ("system", "tools", "messages")}
    out.append(f'<pre class="fields">{pretty(fields)}</pre>')
    system = parsed.get("system")
    if system:
        chars = (
            len(system)
            if isinstance(system, str)
            else sum(len(str(b.get("text", ""))) for b in system if isinstance(b, dict))
        )
        out.append(
            f'<details class="system"><summary>system prompt ({chars:,} chars)</summary>'
            f"{content_blocks(system)}</details>"
        )
    tools = parsed.get("tools")
    if isinstance(tools, list) and tools:
        items = "".join(
            f"<details><summary>{h(t.get('name', t.get('type', '?')) if isinstance(t, dict) else '?')}</summary>"
            f"<pre>{pretty(t)}</pre></details>"
            for t in tools
        )
        out.append(f'<details class="tools"><summary>{len(tools)} tools</summary>{items}</details>')
    for position, message in enumerate(parsed.get("messages") or []):
        if not isinstance(message, dict):
            continue
        role = str(message.get("role"))
        out.append(
            f'<section class="message {attr(role)}"><div class="role">{h(role)} <span class="muted">'
            f"#{position}</span></div>{content_blocks(message.get('content'))}</section>"
        )
    return "".join(out)


def response_message(recording: Recording) -> tuple[dict[str, Any] | None, list[Any], bool]:
    """(the Message the response carries, its SSE events, whether the stream was complete); Bedrock's binary
    event stream is read as the Anthropic events its frames carry, numbered as the validators number them."""
    body = recording.response_body
    framed = eventstream.is_framed(recording.response_headers)
    if framed:
        body, problem = eventstream.to_sse(body)
    if framed or is_stream(recording.response_headers, body):
        events = parse_sse(body)
        fold = MessageFold(strict=False).feed(events)
        return fold.finish(), events, not fold.faults and not (framed and problem)
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None, [], True
    return (parsed if isinstance(parsed, dict) else None), [], True


def framing_note(recording: Recording) -> str:
    """What the viewer did with Bedrock's binary frames, and where they were damaged if they were."""
    if not eventstream.is_framed(recording.response_headers):
        return ""
    decoded = eventstream.decode(recording.response_body)
    note = (
        f"Bedrock event stream: {len(decoded.frames):,} frames of {size(len(recording.response_body))}, "
        "shown as the Anthropic events they carry"
    )
    if decoded.problem:
        note += f' · <span class="bad">{h(decoded.problem)}</span>'
    return f'<p class="muted framing">{note}</p>'


MAX_DOTS = 400
"""A chart of more chunks than this draws the line only (a dot each would weigh more than the page)."""


def chart_svg(timings: Sequence[tuple[int, float]], width: int = 640, height: int = 160) -> str:
    """Cumulative bytes against milliseconds since the request was sent, one dot per chunk: an inline SVG."""
    if not timings:
        return '<p class="muted">no chunk timings recorded</p>'
    pad = 36
    last_ms = max(ms for _, ms in timings) or 1.0
    total = sum(size for size, _ in timings) or 1
    points, received = [], 0
    for chunk, ms in timings:
        received += chunk
        x = pad + (width - 2 * pad) * ms / last_ms
        y = height - pad + (2 * pad - height) * received / total
        points.append((x, y, chunk, ms))
    steps, level = [f"M{pad},{height - pad}"], float(height - pad)
    for x, y, _, _ in points:  # flat until a chunk arrives, then up by its size
        steps.append(f"L{x:.1f},{level:.1f} L{x:.1f},{y:.1f}")
        level = y
    path = " ".join(steps)
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5"><title>{chunk:,} B at {ms:.1f} ms</title></circle>'
        for x, y, chunk, ms in (points if len(points) <= MAX_DOTS else [])
    )
    return (
        f'<svg class="chart" role="img" aria-label="chunk arrival times" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
        f'<line class="axis" x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}"/>'
        f'<line class="axis" x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}"/>'
        f'<path d="{path}"/>{dots}'
        f'<text x="{pad}" y="{height - pad + 16}">0 ms</text>'
        f'<text x="{width - pad}" y="{height - pad + 16}" text-anchor="end">{last_ms:,.0f} ms</text>'
        f'<text x="{pad - 4}" y="{pad - 6}">{total:,} B in {len(timings):,} chunks</text>'
        "</svg>"
    )


def headers_table(headers: Headers) -> str:
    rows = "".join(f"<tr><td>{h(k)}</td><td>{h(v)}</td></tr>" for k, v in mask_headers(headers))
    return f'<table class="headers">{rows}</table>' if rows else '<p class="muted">none stored</p>'


EVENTS_PAGE = 500
"""SSE events shown per page of a recording: a stream of a million deltas is paged, never one 90 MB page."""
MAX_FINDINGS_SHOWN = 200


def events_html(events: Sequence[Any], findings: Sequence[Finding], start: int = 0, url: str = "") -> str:
    """The raw SSE events from `start`, one page of them, numbered as the validators number them, each with
    the findings about it; links to the pages before and after."""
    start = min(start, max(0, len(events) - 1))
    end = min(len(events), start + EVENTS_PAGE)
    at: dict[int, list[Finding]] = {}
    for finding in findings:
        if finding.index is not None and start <= finding.index < end:
            at.setdefault(finding.index, []).append(finding)
    rows = []
    for index in range(start, end):
        event = events[index]
        notes = "".join(
            f'<div class="finding {attr(f.severity)}">{h(str(f))}</div>' for f in at.get(index, [])
        )
        rows.append(
            f'<tr id="event-{index}" class="{"flagged" if notes else ""}"><td class="num">{index}</td>'
            f"<td>{h(event.event or '')}</td><td><code>{h(mask_text(event.data or ''))}</code>{notes}</td></tr>"
        )
    links = []
    if start > 0:
        links.append(
            f'<a rel="prev" href="{attr(f"{url}?events={max(0, start - EVENTS_PAGE)}#events")}">← previous</a>'
        )
    if end < len(events):
        links.append(f'<a rel="next" href="{attr(f"{url}?events={end}#events")}">next →</a>')
    nav = (
        f'<p class="pager">events {start:,}–{end - 1:,} of {len(events):,} {" ".join(links)}</p>'
        if links
        else ""
    )
    return f'{nav}<table class="events"><tbody>{"".join(rows)}</tbody></table>{nav}'


def recording_page(recording: Recording, findings: Sequence[Finding], events_from: int = 0) -> str:
    row = recording.row
    message, events, complete = response_message(recording)
    whole = [f for f in findings if f.index is None or not events]
    provider = providers.provider_of(row.path)
    summary = (
        f"{h(row.method)} {h(row.path)} · {'' if provider == 'anthropic' else h(provider) + ' '}"
        f"{h(row.model or '-')} · {'stream' if row.stream else 'json'} · "
        f"status {row.status} · {h(display_time(row.created_at))}"
    )
    timing = ""
    if recording.duration_ms is not None:
        timing = f" · {recording.duration_ms:,.0f} ms"
        if recording.ttfb_ms is not None:
            timing += f" (first byte {recording.ttfb_ms:,.0f} ms)"
    parts = [
        f'<h1>{h(row.short)}</h1><p class="muted">{summary}{timing} · key <code>{h(row.key)}</code></p>',
    ]
    if findings:
        parts.append(
            '<div class="lint"><b>lint</b>'
            + "".join(
                f'<div class="finding {attr(f.severity)}">{h(str(f))}</div>'
                for f in whole[:MAX_FINDINGS_SHOWN]
            )
            + (
                f"<div>… and {len(whole) - MAX_FINDINGS_SHOWN:,} more</div>"
                if len(whole) > MAX_FINDINGS_SHOWN
                else ""
            )
            + (
                f' <a href="#events">{sum(1 for f in findings if f.index is not None)} findings at events</a>'
                if events and any(f.index is not None for f in findings)
                else ""
            )
            + "</div>"
        )
    parts.append('<div class="columns"><section class="request"><h2>Request</h2>')
    parts.append(request_html(recording.request_body))
    parts.append('</section><section class="response"><h2>Response</h2>' + framing_note(recording))
    if message is not None and message.get("type", "message") == "message" and "content" in message:
        usage = message.get("usage")
        stop = message.get("stop_reason")
        parts.append(
            f"<p>stop_reason <b>{h(stop)}</b>{'' if complete else ' · <span class=bad>stream incomplete</span>'}"
            f"</p>{content_blocks(message.get('content'))}"
            f"<h3>usage</h3><pre>{pretty(usage)}</pre>"
        )
    elif message is not None:
        parts.append(f"<pre>{pretty(message)}</pre>")
    else:
        parts.append(
            f"<pre>{h(mask_text(clip(recording.response_body.decode('utf-8', 'replace'), 20000)))}</pre>"
        )
    parts.append("</section></div>")
    parts.append('<h2 id="chart">Chunk arrival</h2>' + chart_svg(recording.timings))
    parts.append(
        '<div class="columns"><section><h2>Request headers</h2>'
        + headers_table(recording.request_headers)
        + "</section><section><h2>Response headers</h2>"
        + headers_table(recording.response_headers)
        + "</section></div>"
    )
    if events:
        parts.append(
            f'<h2 id="events">SSE events ({len(events):,})</h2>'
            + events_html(events, findings, events_from, f"/r/{recording.id}")
        )
    crumbs = [(row.cassette, cassette_url(row.cassette)), (row.short, None)]
    return layout(row.short, "".join(parts), crumbs)


# --- misses --------------------------------------------------------------------------------------------


def misses_page(folder: str | None, misses: Sequence[tuple[str, Any]]) -> str:
    """Each saved miss (file name, MissReport, error text or the key it would now replay) with its closest
    recordings and the JSON paths where the best one differs."""
    if folder is None:
        body = (
            "<h1>Misses</h1><p>No misses folder given: start the viewer with <code>--misses DIR</code>, the folder "
            "<code>serve --save-misses DIR</code> writes.</p>"
        )
        return layout("misses", body, [("misses", None)])
    items = []
    for name, outcome in misses:
        items.append(f'<section class="miss"><h2>{h(name)}</h2>{_miss_outcome(outcome)}</section>')
    body = f'<h1>Misses</h1><p class="muted">{h(folder)}: {len(misses)} saved</p>' + "".join(items)
    return layout("misses", body, [("misses", None)])


def _miss_outcome(outcome: str | tuple[MissReport | None, dict[str, str], dict[str, list[str]]]) -> str:
    """An unreadable file's error, a request that would replay now, or the miss beside its closest recordings
    (linked, with their prompts) and, under each, the JSON paths where it differs."""
    if isinstance(outcome, str):
        return f'<p class="error">{h(outcome)}</p>'
    report, links, diffs = outcome
    if report is None:
        return f'<p class="ok">replays now: {"".join(links.values())}</p>'
    closest = "".join(
        f"<li>{links.get(c.key, h(c.key[:12]))} <b>{c.score:.0%}</b> same"
        + (
            f'<ul class="diffs">{"".join(_difference(d) for d in diffs[c.key])}</ul>'
            if diffs.get(c.key)
            else ""
        )
        + "</li>"
        for c in report.closest
    )
    return (
        f'<p>{h(report.method)} {h(report.target)} in cassette <a href="{attr(cassette_url(report.cassette))}">'
        f"{h(report.cassette)}</a>, key <code>{h(report.key[:12])}</code></p>"
        + (
            f"<h3>closest recordings, and where the request differs from each</h3><ol>{closest}</ol>"
            if closest
            else "<p>no recording of this method and path</p>"
        )
    )


def _difference(line: str) -> str:
    """`path: a vs b` with the JSON path highlighted."""
    path, _, rest = line.partition(": ")
    return f"<li><mark>{h(path)}</mark>: {h(mask_text(rest))}</li>"
