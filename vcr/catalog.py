"""Read-only questions about a vcr.db: its cassettes, their recordings, stats, one recording in full.

Plain sqlite3 on a read-only connection, so answering never imports sqlite-utils (a quarter of a second
with numpy installed) and never creates or changes a file: `claude-vcr list` on 100,000 recordings answers
in tens of milliseconds, and git can run `claude-vcr dump` on any file it likes. Rows are decoded by
`records`, as the write side (`store.Store`) decodes them.

    from .catalog import Catalog

    with Catalog.open("vcr.db") as catalog:
        for cassette in catalog.cassettes():
            print(cassette.name, cassette.recordings)
        detail = catalog.detail(catalog.resolve("3f2a9c"))
        print(catalog.explain(detail)["response"]["blocks"])
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zstandard

from .compression import decompress_frame
from .errors import Ambiguous, InvalidInput, NoDatabase, NotFound
from .matching import short_key
from .records import Headers, Recording, RecordingRow, decode, decode_row, request_body, row_columns
from .schema import SCHEMA_STEPS, check_file, readonly_connection

MIN_PREFIX_LENGTH = 4
MMAP_BYTES = 1 << 30
"""Reads through a memory map (read-only connections only): index scans run about twice as fast."""
_KEY_PREFIX = re.compile(r"^([0-9a-fA-F]+)(?:#(\d+))?$")


def display_time(created_at: str | None) -> str:
    """ISO timestamps in UTC as the seed's tool prints them: `2025-12-17 12:00:00`."""
    return created_at[:19].replace("T", " ") if created_at else "-"


@dataclass(frozen=True)
class CassetteRow:
    """One line of `claude-vcr cassettes`."""

    name: str
    recordings: int
    stored_size: int
    raw_size: int
    oldest: str | None
    newest: str | None
    created_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "recordings": self.recordings,
            "stored_size": self.stored_size,
            "raw_size": self.raw_size,
            "oldest": self.oldest,
            "newest": self.newest,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class CassetteStats:
    """What the seed's `stats` prints, plus stored against raw bytes; `cassette` None means all of them."""

    cassette: str | None
    recordings: int
    by_model: dict[str, int]
    streaming: int
    request_size: int
    response_size: int
    stored_size: int
    oldest: str | None
    newest: str | None

    @property
    def non_streaming(self) -> int:
        return self.recordings - self.streaming

    @property
    def raw_size(self) -> int:
        return self.request_size + self.response_size

    @property
    def ratio(self) -> float | None:
        """How many times smaller the stored (compressed) bytes are than the raw ones."""
        return self.raw_size / self.stored_size if self.stored_size else None

    def to_json(self) -> dict[str, Any]:
        return {
            "cassette": self.cassette,
            "recordings": self.recordings,
            "by_model": self.by_model,
            "streaming": self.streaming,
            "non_streaming": self.non_streaming,
            "request_size": self.request_size,
            "response_size": self.response_size,
            "raw_size": self.raw_size,
            "stored_size": self.stored_size,
            "compression_ratio": round(self.ratio, 2) if self.ratio else None,
            "oldest": self.oldest,
            "newest": self.newest,
        }


@dataclass(frozen=True)
class CassetteInfo:
    """The cassette row itself, which export and merge carry along with the recordings."""

    name: str
    key_scheme: str
    rules_json: str | None
    created_at: str


def connect_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection with the current schema, whatever the file's age; the file is never written.

    A db of an older claude-vcr is migrated in a private in-memory copy; a missing, damaged, foreign or
    newer one raises with the reason, as `Store` would.
    """
    path = Path(path)
    if not path.exists() or (path.is_file() and path.stat().st_size == 0):
        raise NoDatabase(f"no database at {path}" + (" (the file is empty)" if path.exists() else ""))
    applied = check_file(path)
    conn = readonly_connection(path)
    if applied == set(SCHEMA_STEPS):
        conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        return conn
    return _migrated_copy(conn)


def _migrated_copy(source: sqlite3.Connection) -> sqlite3.Connection:
    """An older db brought up to date in memory (the slow path: it imports sqlite-utils)."""
    from sqlite_utils import Database

    from .migrations import migrations

    memory = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
    try:
        source.backup(memory)
    finally:
        source.close()
    migrations.apply(Database(memory))
    return memory


class Catalog:
    """Queries over one open connection; `Catalog.open(path)` for a read-only one."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None = None) -> None:
        self.conn = conn
        self.path = path
        self._owned = False

    @classmethod
    def open(cls, path: str | Path) -> Catalog:
        catalog = cls(connect_readonly(path), Path(path))
        catalog._owned = True
        return catalog

    def close(self) -> None:
        if self._owned:
            self.conn.close()
            self._owned = False

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- cassettes ---------------------------------------------------------------------------------

    def cassette_names(self) -> list[str]:
        return [row[0] for row in self.conn.execute("SELECT name FROM cassettes ORDER BY name")]

    def cassette_info(self, name: str) -> CassetteInfo:
        row = self.conn.execute(
            "SELECT name, key_scheme, rules_json, created_at FROM cassettes WHERE name = ?", [name]
        ).fetchone()
        if row is None:
            raise NotFound(self._unknown_cassette(name))
        return CassetteInfo(*row)

    def _cassette_id(self, name: str) -> int:
        row = self.conn.execute("SELECT id FROM cassettes WHERE name = ?", [name]).fetchone()
        if row is None:
            raise NotFound(self._unknown_cassette(name))
        return row[0]

    def _unknown_cassette(self, name: str) -> str:
        names = self.cassette_names()
        known = f"; cassettes: {', '.join(names)}" if names else "; the database has no cassettes"
        return f"no cassette named {name!r}{known}"

    def cassettes(self) -> list[CassetteRow]:
        """Every cassette with its recording count, sizes and date range, by name."""
        rows = self.conn.execute(
            """
            SELECT c.id, c.name, coalesce(sum(t.recordings), 0), coalesce(sum(t.stored_size), 0),
                   coalesce(sum(t.request_size + t.response_size), 0), c.created_at
            FROM cassettes c LEFT JOIN recording_totals t ON t.cassette_id = c.id
            GROUP BY c.id ORDER BY c.name
            """
        ).fetchall()
        return [
            CassetteRow(name, count, stored, raw, *self._date_range(cassette_id), created)
            for cassette_id, name, count, stored, raw, created in rows
        ]

    def _date_range(self, cassette_id: int) -> tuple[str | None, str | None]:
        """Oldest and newest recording: two index lookups (SQLite optimises one min or max per query)."""
        oldest = self.conn.execute(
            "SELECT min(created_at) FROM recordings INDEXED BY recordings_catalog WHERE cassette_id = ?",
            [cassette_id],
        ).fetchone()[0]
        newest = self.conn.execute(
            "SELECT max(created_at) FROM recordings INDEXED BY recordings_catalog WHERE cassette_id = ?",
            [cassette_id],
        ).fetchone()[0]
        return oldest, newest

    # --- recordings --------------------------------------------------------------------------------

    def recordings(self, cassette: str | None = None) -> list[RecordingRow]:
        """One cassette's recordings (all cassettes by name if None), oldest first; never reads a body."""
        names = [cassette] if cassette is not None else self.cassette_names()
        found: list[RecordingRow] = []
        for name in names:
            rows = self.conn.execute(
                f"""
                SELECT {row_columns(cassette="?")} FROM recordings r INDEXED BY recordings_catalog
                WHERE r.cassette_id = ? ORDER BY r.created_at, r.key, r.ordinal
                """,
                [name, self._cassette_id(name)],
            )
            found.extend(map(decode_row, rows))
        return found

    def stats(self, cassette: str | None = None) -> list[CassetteStats]:
        """Stats per cassette: the one named, or every cassette by name."""
        if cassette is not None:
            return self._stats({self._cassette_id(cassette): cassette})
        return self._stats(dict(self.conn.execute("SELECT id, name FROM cassettes ORDER BY name")))

    def total_stats(self) -> CassetteStats:
        """All cassettes together."""
        return self.combine(self.stats())

    @staticmethod
    def combine(parts: list[CassetteStats]) -> CassetteStats:
        """Stats of several cassettes added up (`cassette` None)."""
        by_model: dict[str, int] = {}
        for part in parts:
            for model, count in part.by_model.items():
                by_model[model] = by_model.get(model, 0) + count
        oldest = [p.oldest for p in parts if p.oldest]
        newest = [p.newest for p in parts if p.newest]
        return CassetteStats(
            None,
            sum(p.recordings for p in parts),
            dict(sorted(by_model.items(), key=lambda item: (-item[1], item[0]))),
            sum(p.streaming for p in parts),
            sum(p.request_size for p in parts),
            sum(p.response_size for p in parts),
            sum(p.stored_size for p in parts),
            min(oldest) if oldest else None,
            max(newest) if newest else None,
        )

    def _stats(self, names: dict[int, str]) -> list[CassetteStats]:
        """From the per (cassette, model, stream) totals its triggers keep, plus two index lookups per
        cassette for the date range: a few rows read whatever the number of recordings."""
        where, params = ("WHERE cassette_id = ?", list(names)) if len(names) == 1 else ("", [])
        totals: dict[int, list[int]] = {}
        models: dict[int, dict[str, int]] = {}
        for cassette_id, model, stream, count, request_size, response_size, stored_size in self.conn.execute(
            "SELECT cassette_id, model, stream, recordings, request_size, response_size, stored_size "
            f"FROM recording_totals {where}",
            params,
        ):
            sums = totals.setdefault(cassette_id, [0, 0, 0, 0, 0])
            for position, value in enumerate(
                (count, count if stream else 0, request_size, response_size, stored_size)
            ):
                sums[position] += value
            counts = models.setdefault(cassette_id, {})
            counts[model or "unknown"] = counts.get(model or "unknown", 0) + count
        totals_with_dates = {
            cassette_id: (*sums, *self._date_range(cassette_id)) for cassette_id, sums in totals.items()
        }
        found = []
        for cassette_id, name in names.items():
            count, streaming, request_size, response_size, stored_size, oldest, newest = (
                totals_with_dates.get(cassette_id, (0, 0, 0, 0, 0, None, None))
            )
            by_model = dict(sorted(models.get(cassette_id, {}).items(), key=lambda item: (-item[1], item[0])))
            found.append(
                CassetteStats(
                    name,
                    count,
                    by_model,
                    streaming or 0,
                    request_size or 0,
                    response_size or 0,
                    stored_size or 0,
                    oldest,
                    newest,
                )
            )
        return found

    def find(self, prefix: str, cassette: str | None = None) -> list[RecordingRow]:
        """Recordings whose key starts with `prefix` (`KEY#N` picks a repeat), in any or one cassette."""
        match = _KEY_PREFIX.match(prefix.strip())
        if not match:
            raise InvalidInput(f"{prefix!r} is not a key prefix: use hex digits, as `claude-vcr list` shows")
        hex_prefix, ordinal = match.group(1).lower(), match.group(2)
        if len(hex_prefix) < MIN_PREFIX_LENGTH:
            raise InvalidInput(
                f"key prefix {prefix!r} is too short: give at least {MIN_PREFIX_LENGTH} hex digits"
            )
        sql = f"""
            SELECT {row_columns()} FROM recordings r JOIN cassettes c ON c.id = r.cassette_id
            WHERE r.key >= ? AND r.key < ?
        """
        params: list[Any] = [hex_prefix, hex_prefix + "~"]
        if cassette is not None:
            sql += " AND r.cassette_id = ?"
            params.append(self._cassette_id(cassette))
        if ordinal is not None:
            sql += " AND r.ordinal = ?"
            params.append(int(ordinal))
        sql += " ORDER BY c.name, r.key, r.ordinal"
        return [decode_row(row) for row in self.conn.execute(sql, params)]

    def resolve(self, prefix: str, cassette: str | None = None) -> RecordingRow:
        """The one recording a prefix names; an unknown or ambiguous prefix raises, listing what it matches."""
        matches = self.find(prefix, cassette)
        where = f" in cassette {cassette!r}" if cassette is not None else ""
        if not matches:
            raise NotFound(f"no recording with a key starting {prefix!r}{where}")
        if len(matches) > 1:
            shown = matches[:20]
            lines = [
                f"  {m.key}{f'#{m.ordinal}' if m.ordinal else ''}  {m.cassette}  {m.method} {m.path}  "
                f"{display_time(m.created_at)}"
                for m in shown
            ]
            if len(matches) > len(shown):
                lines.append(f"  ... and {len(matches) - len(shown)} more")
            hint = "give more of the key" + ("" if cassette else ", or --cassette NAME")
            message = f"{prefix!r} matches {len(matches)} recordings{where} ({hint}):\n" + "\n".join(lines)
            raise Ambiguous(message, matches)
        return matches[0]

    def detail(self, recording: RecordingRow | int) -> Recording:
        """One recording in full, bodies decompressed."""
        recording_id = recording if isinstance(recording, int) else recording.id
        found = next(self._details("WHERE r.id = ?", [recording_id]), None)
        if found is None:
            raise NotFound(f"no recording with id {recording_id}")
        return found

    def iter_details(self, cassette: str | None = None) -> Iterator[Recording]:
        """Every recording in full, by cassette name, key and ordinal, one at a time (memory stays flat)."""
        names = [cassette] if cassette is not None else self.cassette_names()
        for name in names:
            yield from self._details(
                "WHERE r.cassette_id = ? ORDER BY r.key, r.ordinal", [self._cassette_id(name)]
            )

    def _details(self, where: str, params: list[Any]) -> Iterator[Recording]:
        cursor = self.conn.cursor()
        cursor.row_factory = sqlite3.Row
        cursor.execute(
            f"SELECT c.name AS cassette_name, r.* FROM recordings r JOIN cassettes c ON c.id = r.cassette_id {where}",
            params,
        )
        decompressor = zstandard.ZstdDecompressor()
        for row in cursor:
            yield decode(row, row["cassette_name"], self.conn, decompressor)

    # --- for git -----------------------------------------------------------------------------------

    def key_versions(self) -> dict[tuple[str, str], tuple[str, str]]:
        """Per (cassette, key): a digest of all its recordings (every repeat) and the newest created_at.

        A three-way merge compares these across copies of a db. The digest covers every stored column but
        the row ids, over the compressed bytes as stored: no decompression, and rows that git carried
        unchanged compare equal. A key is one unit because a record run replaces all its repeats at once.
        """
        columns = [row[1] for row in self.conn.execute("PRAGMA table_info(recordings)")]
        content = [c for c in columns if c not in ("id", "cassette_id")]
        select = ", ".join(f"r.{c}" for c in content)
        rows = self.conn.execute(
            f"SELECT c.name, {select} FROM recordings r JOIN cassettes c ON c.id = r.cassette_id "
            "ORDER BY c.name, r.key, r.ordinal"
        )
        key_at, created_at = content.index("key"), content.index("created_at")
        digests: dict[tuple[str, str], Any] = {}
        newest: dict[tuple[str, str], str] = {}
        for name, *values in rows:
            identity = (name, values[key_at])
            digest = digests.get(identity)
            if digest is None:
                digest = digests[identity] = hashlib.sha256()
            for value in values:
                digest.update(value if isinstance(value, bytes) else repr(value).encode())
                digest.update(b"\x00")
            newest[identity] = max(newest.get(identity, ""), values[created_at])
        return {identity: (digest.hexdigest(), newest[identity]) for identity, digest in digests.items()}

    def cassette_versions(self) -> dict[str, tuple[str, str | None, str]]:
        """Each cassette's (key_scheme, rules_json, created_at), for the same three-way merge."""
        rows = self.conn.execute("SELECT name, key_scheme, rules_json, created_at FROM cassettes")
        return {name: (scheme, rules, created) for name, scheme, rules, created in rows}

    def dump_lines(self) -> Iterator[str]:
        """One line per recording, sorted, with digests of both bodies: what `git diff` shows of a db."""
        rows = self.conn.execute(
            """
            SELECT c.name, r.key, r.ordinal, r.method, r.path, r.model, r.stream, r.status,
                   r.response_size, r.created_at, r.request_codec, r.request_body, r.raw_hash, r.response_body
            FROM recordings r JOIN cassettes c ON c.id = r.cassette_id ORDER BY c.name, r.key, r.ordinal
            """
        )
        decompressor = zstandard.ZstdDecompressor()
        for name, key, ordinal, method, path, model, stream, status, size, created, *request, response in rows:
            body = request_body(self.conn, decompressor, *request[:2], (method, path), request[2])
            request_digest = hashlib.sha256(body).hexdigest()
            response_digest = hashlib.sha256(decompress_frame(decompressor, response)).hexdigest()
            yield (
                f"{name} {short_key(key, ordinal)} {method} {path} {model or '-'} "
                f"{'stream' if stream else 'json'} {status} {size}B {created} "
                f"req={request_digest[:8]} resp={response_digest[:8]}"
            )

    # --- for people --------------------------------------------------------------------------------

    def explain(self, detail: Recording) -> dict[str, Any]:
        """A recording decoded for a person (and for `show --json`): request summary, response events."""
        return explain(detail)


# --- a recording decoded for a person ----------------------------------------------------------------

PREVIEW_CHARS = 160


def _preview(text: str, limit: int = PREVIEW_CHARS) -> str:
    """One line of at most `limit` characters, newlines shown as `\\n`, so each item stays on its line."""
    flat = text.replace("\r", "\\r").replace("\n", "\\n")
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _content_preview(content: Any) -> str:
    """A message's content in one line: its text, and the kinds of its other blocks."""
    if isinstance(content, str):
        return _preview(content)
    if not isinstance(content, list):
        return _preview(json.dumps(content))
    parts: list[str] = []
    for block in content:
        if not isinstance(block, dict):
            parts.append(_preview(json.dumps(block), 40))
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            parts.append(
                f"[tool_use {block.get('name')} {json.dumps(block.get('input'), ensure_ascii=False)}]"
            )
        elif kind == "tool_result":
            inner = block.get("content")
            text = (
                inner
                if isinstance(inner, str)
                else " ".join(p.get("text", "") for p in inner or [] if isinstance(p, dict))
            )
            parts.append(f"[tool_result {block.get('tool_use_id')}: {text}]")
        else:
            parts.append(f"[{kind}]")
    return _preview(" ".join(parts))


def explain_request(method: str, path: str, headers: Headers, body: bytes) -> dict[str, Any]:
    """Method, path, headers (secrets never reach the db) and a summary of a Messages-style body."""
    from .headers import for_storage

    summary: dict[str, Any] = {
        "method": method,
        "path": path,
        "headers": for_storage(headers),
        "size": len(body),
    }
    try:
        parsed = json.loads(body) if body.strip() else None
    except (ValueError, UnicodeDecodeError):
        parsed = None
    if not isinstance(parsed, dict):
        if body:
            summary["text"] = _preview(body.decode("utf-8", "replace"), 400)
        return summary
    fields: dict[str, Any] = {}
    for name, value in parsed.items():
        if name == "system":
            text = (
                value
                if isinstance(value, str)
                else " ".join(b.get("text", "") for b in value if isinstance(b, dict))
            )
            blocks = 1 if isinstance(value, str) else len(value)
            summary["system"] = {"blocks": blocks, "chars": len(text), "preview": _preview(text, 100)}
        elif name == "tools" and isinstance(value, list):
            summary["tools"] = [t.get("name", t.get("type", "?")) for t in value if isinstance(t, dict)]
        elif name == "messages" and isinstance(value, list):
            summary["messages"] = [
                {"role": m.get("role"), "preview": _content_preview(m.get("content"))}
                for m in value
                if isinstance(m, dict)
            ]
        elif isinstance(value, (str, int, float, bool)) or value is None:
            fields[name] = value
        else:
            fields[name] = _preview(json.dumps(value, ensure_ascii=False), 100)
    summary["fields"] = fields
    return summary


def _event_line(payload: Any, event: str | None) -> str:
    """One SSE event in one line: its type and what it adds (text, tool JSON, usage, stop reason)."""
    if not isinstance(payload, dict):
        return f"{event or '(no event)'} {_preview(str(payload), 100)}"
    kind = payload.get("type", event)
    if kind == "message_start":
        message = payload.get("message") or {}
        usage = message.get("usage") or {}
        return f"message_start id={message.get('id')} model={message.get('model')} usage={json.dumps(usage)}"
    if kind == "content_block_start":
        block = payload.get("content_block") or {}
        extra = f" {block.get('name')} id={block.get('id')}" if "name" in block else ""
        return f"content_block_start [{payload.get('index')}] {block.get('type')}{extra}"
    if kind == "content_block_delta":
        delta = payload.get("delta") or {}
        dtype = delta.get("type")
        value = next(
            (delta[f] for f in ("text", "partial_json", "thinking", "signature") if f in delta), delta
        )
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else json.dumps(value)
        return f"content_block_delta [{payload.get('index')}] {dtype} {_preview(shown, 120)}"
    if kind == "content_block_stop":
        return f"content_block_stop [{payload.get('index')}]"
    if kind == "message_delta":
        delta = payload.get("delta") or {}
        return (
            f"message_delta stop_reason={delta.get('stop_reason')} usage={json.dumps(payload.get('usage'))}"
        )
    if kind == "error":
        error = payload.get("error") or {}
        return f"error {error.get('type')}: {error.get('message')}"
    if kind in ("ping", "message_stop"):
        return str(kind)
    return f"{kind} {_preview(json.dumps(payload), 120)}"


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Each content block with its text or tool input joined, as the SDKs hand it over."""
    shown: list[dict[str, Any]] = []
    for index, block in enumerate(message.get("content") or []):
        if not isinstance(block, dict):
            continue
        item: dict[str, Any] = {"index": index, "type": block.get("type")}
        for name in ("name", "id", "text", "thinking", "input"):
            if name in block:
                item[name] = block[name]
        shown.append(item)
    return shown


def _fold_tolerant(payloads: list[Any]) -> dict[str, Any]:
    """The blocks of a stream the SDK fold refuses (cut short, error event): joined as far as they go."""
    message: dict[str, Any] = {"content": []}
    json_parts: dict[int, str] = {}
    for payload in payloads:
        if not isinstance(payload, dict):
            continue
        kind = payload.get("type")
        if kind == "message_start":
            message.update({k: v for k, v in (payload.get("message") or {}).items() if k != "content"})
        elif kind == "content_block_start":
            block = dict(payload.get("content_block") or {})
            while len(message["content"]) <= payload.get("index", 0):
                message["content"].append({})
            message["content"][payload.get("index", 0)] = block
        elif kind == "content_block_delta":
            index, delta = payload.get("index", 0), payload.get("delta") or {}
            if index >= len(message["content"]):
                continue
            block = message["content"][index]
            if "text" in delta:
                block["text"] = block.get("text", "") + delta["text"]
            elif "thinking" in delta:
                block["thinking"] = block.get("thinking", "") + delta["thinking"]
            elif "partial_json" in delta:
                json_parts[index] = json_parts.get(index, "") + delta["partial_json"]
                block["input"] = json_parts[index]
        elif kind == "message_delta":
            message["stop_reason"] = (payload.get("delta") or {}).get("stop_reason")
            message["usage"] = payload.get("usage")
    for index, text in json_parts.items():
        try:
            message["content"][index]["input"] = json.loads(text)
        except ValueError:
            message["content"][index]["input"] = text  # cut short: shown as the raw JSON text
    return message


def explain_response(status: int, headers: Headers, body: bytes) -> dict[str, Any]:
    """Status, headers and the body decoded: SSE events one per line and the blocks they build, or JSON."""
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    summary: dict[str, Any] = {
        "status": status,
        "headers": headers,
        "size": len(body),
        "content_type": content_type,
    }
    if "text/event-stream" in content_type or body.startswith((b"event:", b"data:")):
        from .sse import accumulate, parse_sse

        events = parse_sse(body)
        summary["kind"] = "sse"
        summary["events"] = [
            _event_line(e.parsed if e.parsed is not None else e.data, e.event) for e in events
        ]
        payloads = [e.parsed for e in events if e.event is not None]
        try:
            message = accumulate(events)
            summary["complete"] = True
        except ValueError:
            message = _fold_tolerant(payloads)
            summary["complete"] = False
        summary["blocks"] = _blocks(message)
        summary["message"] = {
            k: message.get(k) for k in ("id", "model", "stop_reason", "usage") if message.get(k) is not None
        }
        return summary
    try:
        parsed = json.loads(body) if body.strip() else None
    except (ValueError, UnicodeDecodeError):
        parsed = None
    if parsed is not None:
        summary["kind"] = "json"
        summary["json"] = parsed
        if isinstance(parsed, dict) and parsed.get("type") == "message":
            summary["blocks"] = _blocks(parsed)
            summary["message"] = {
                k: parsed.get(k) for k in ("id", "model", "stop_reason", "usage") if parsed.get(k) is not None
            }
        return summary
    try:
        summary["kind"] = "text"
        summary["text"] = _preview(body.decode("utf-8"), 2000)
    except UnicodeDecodeError:
        summary["kind"] = "binary"
    return summary


def explain(detail: Recording) -> dict[str, Any]:
    """The whole of `show`: where the recording sits, its request and its response."""
    s = detail.row
    return {
        "cassette": s.cassette,
        "key": s.key,
        "short_key": s.short,
        "ordinal": s.ordinal,
        "key_scheme": detail.key_scheme,
        "created_at": s.created_at,
        "duration_ms": detail.duration_ms,
        "ttfb_ms": detail.ttfb_ms,
        "chunks": len(detail.timings),
        "model": s.model,
        "stream": s.stream,
        "stored_size": s.stored_size,
        "meta": detail.meta,
        "request": explain_request(s.method, s.path, detail.request_headers, detail.request_body),
        "response": explain_response(s.status, detail.response_headers, detail.response_body),
    }
