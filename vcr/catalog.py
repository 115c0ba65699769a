"""Read-only questions about a vcr.db: its cassettes, their recordings, stats, one recording in full.

Plain sqlite3 on a read-only connection, so answering never imports sqlite-utils (a quarter of a second
with numpy installed) and never creates or changes a file: `claude-vcr list` on 100,000 recordings answers
in tens of milliseconds, and git can run `claude-vcr dump` on any file it likes. Writes go through
`vcr.store.Store`.

    from .catalog import Catalog

    with Catalog.open("vcr.db") as catalog:
        for cassette in catalog.cassettes():
            print(cassette.name, cassette.recordings)
        detail = catalog.detail(catalog.resolve("3f2a9c"))
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from . import names
from .errors import Ambiguous, DatabaseError, NoDatabase, NotFound

MIGRATION_SET = "claude-vcr"
SHORT_KEY_LENGTH = 12
MIN_PREFIX_LENGTH = 4
SQLITE_MAGIC = b"SQLite format 3\x00"
MMAP_BYTES = 1 << 30
"""Reads through a memory map (read-only connections only): index scans run about twice as fast."""
_KEY_PREFIX = re.compile(r"^([0-9a-fA-F]+)(?:#(\d+))?$")
_SUMMARY_COLUMNS = (
    "r.id, c.name, r.key, r.ordinal, r.method, r.path, r.model, r.stream, r.status, "
    "r.request_size, r.response_size, r.stored_size, r.created_at"
)
_SUMMARY_NAMES = (
    "id",
    "cassette",
    "key",
    "ordinal",
    "method",
    "path",
    "model",
    "stream",
    "status",
    "request_size",
    "response_size",
    "stored_size",
    "created_at",
)
_DETAIL_COLUMNS = frozenset(
    {
        *_SUMMARY_NAMES,
        "cassette_name",
        "cassette_id",
        "key_scheme",
        "request_headers",
        "request_body",
        "response_headers",
        "response_body",
        "chunks",
        "duration_ms",
        "ttfb_ms",
        "meta",
        "summary",
        "request_codec",
    }
)
"""Recording columns `RecordingDetail` has a field for; any other column lands in its `extra`."""
Headers = list[tuple[str, str]]
Identity = tuple[str, str, int]
"""(cassette name, key, ordinal): what a recording is, across copies of a db."""


class CatalogError(DatabaseError):
    """A question the db cannot answer; the message is written for the person who asked."""


def validate_cassette_name(name: str) -> str:
    """`vcr.names`' rule, failing as the catalog's other errors do."""
    try:
        return names.validate_cassette_name(name)
    except names.BadCassetteName as error:
        raise CatalogError(str(error)) from error


def short_key(key: str, ordinal: int = 0) -> str:
    """How a key is shown: 12 hex digits, and `#N` for a repeat of the same request."""
    return key[:SHORT_KEY_LENGTH] + (f"#{ordinal}" if ordinal else "")


def display_time(created_at: str | None) -> str:
    """ISO timestamps in UTC as the seed's tool prints them: `2025-12-17 12:00:00`."""
    return created_at[:19].replace("T", " ") if created_at else "-"


@dataclass(frozen=True)
class CassetteSummary:
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


class RecordingSummary(NamedTuple):
    """What `list` shows of a recording: everything but headers and bodies (a tuple: lists are long)."""

    id: int
    cassette: str
    key: str
    ordinal: int
    method: str
    path: str
    model: str | None
    stream: bool
    status: int
    request_size: int
    response_size: int
    stored_size: int
    created_at: str

    @property
    def short(self) -> str:
        return short_key(self.key, self.ordinal)

    @property
    def identity(self) -> Identity:
        return (self.cassette, self.key, self.ordinal)

    def where(self) -> dict[str, Any]:
        """Which recording this is, as every `--json` output starts."""
        return {
            "cassette": self.cassette,
            "key": self.key,
            "short_key": self.short,
            "ordinal": self.ordinal,
            "method": self.method,
            "path": self.path,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.where(),
            "model": self.model,
            "stream": self.stream,
            "status": self.status,
            "request_size": self.request_size,
            "response_size": self.response_size,
            "stored_size": self.stored_size,
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
class RecordingDetail:
    """A recording in full, bodies decompressed: what `show` explains and `export` writes."""

    summary: RecordingSummary
    key_scheme: str
    request_headers: Headers
    request_body: bytes
    response_headers: Headers
    response_body: bytes
    chunks: list[tuple[int, float]]
    duration_ms: float | None
    ttfb_ms: float | None
    meta: dict[str, Any] | None
    """Where an imported recording came from (seed key, dump file), else None."""
    match_summary: dict[str, str] | None = None
    """Hashes of the request's parts that miss diagnosis compares (`matching.summarise`)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Columns of later schema steps this class does not name (such as `raw_hash`), so export carries them."""


@dataclass(frozen=True)
class CassetteInfo:
    """The cassette row itself, which export and merge carry along with the recordings."""

    name: str
    key_scheme: str
    rules_json: str | None
    created_at: str


def _summary(row: Sequence[Any]) -> RecordingSummary:
    return RecordingSummary(*row[:7], bool(row[7]), *row[8:13])


def _applied_steps(conn: sqlite3.Connection) -> set[str] | None:
    """The schema steps recorded in the db, or None when it has no migrations table at all."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "_sqlite_migrations" not in tables:
        return None
    rows = conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = ?", [MIGRATION_SET])
    return {row[0] for row in rows}


@functools.cache
def schema_steps() -> tuple[str, ...]:
    """The names of this version's schema steps, read from the migrations' source without importing it.

    `claude_vcr.migrations` imports sqlite-utils, a quarter of a second; a db whose steps are exactly these is read
    straight away. Empty (so every db takes the slow, checked path) if the source cannot be read.
    """
    try:
        spec = importlib.util.find_spec(__package__ + ".migrations")  # finds the package without running it
        source = spec.loader.get_source(__package__ + ".migrations") if spec and spec.loader else None  # type: ignore[attr-defined]
        tree = ast.parse(source or "")
    except (ImportError, OSError, SyntaxError, ValueError, AttributeError):
        return ()
    steps: list[str] = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            if (
                isinstance(decorator, ast.Call)
                and isinstance(decorator.func, ast.Name)
                and decorator.func.id == "migrations"
            ):
                named = [k.value for k in decorator.keywords if k.arg == "name"]
                steps.append(named[0].value if named and isinstance(named[0], ast.Constant) else node.name)
    return tuple(steps)


def connect_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection with the current schema, whatever the file's age; the file is never written.

    A db of an older claude-vcr is migrated in a private in-memory copy; a damaged, foreign or newer one
    raises CatalogError with the reason, as `Store` would.
    """
    path = Path(path)
    if not path.exists():
        raise NoDatabase(f"no database at {path}")
    if path.is_dir():
        raise CatalogError(f"{path} is a directory, not a claude-vcr database file")
    if path.stat().st_size == 0:
        raise NoDatabase(f"no database at {path} (the file is empty)")
    with path.open("rb") as handle:
        if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise CatalogError(f"{path} is not a SQLite database; claude-vcr left it untouched")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    try:
        applied = _applied_steps(conn)
    except sqlite3.DatabaseError as error:
        conn.close()
        raise CatalogError(f"{path} is damaged or not a SQLite database ({error}); left untouched") from error
    if applied is not None and applied == set(schema_steps()):
        conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        return conn
    conn.close()
    return _checked(path)


def _checked(path: Path) -> sqlite3.Connection:
    """The slow path, for a db whose schema is not exactly this version's: `Store`'s own checks, and an
    older db brought up to date in a private in-memory copy."""
    from sqlite_utils import Database

    from .migrations import migrations
    from .store import StoreError, _check_file

    try:
        _check_file(path)
    except StoreError as error:
        raise CatalogError(str(error)) from error
    source = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    if not migrations.pending(Database(source)):
        return source
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

    def cassettes(self) -> list[CassetteSummary]:
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
            CassetteSummary(name, count, stored, raw, *self._date_range(cassette_id), created)
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

    def recordings(self, cassette: str | None = None) -> list[RecordingSummary]:
        """One cassette's recordings (all cassettes by name if None), oldest first; never reads a body."""
        names = [cassette] if cassette is not None else self.cassette_names()
        found: list[RecordingSummary] = []
        for name in names:
            rows = self.conn.execute(
                """
                SELECT id, ?, key, ordinal, method, path, model, stream, status, request_size, response_size,
                       stored_size, created_at
                FROM recordings INDEXED BY recordings_catalog
                WHERE cassette_id = ? ORDER BY created_at, key, ordinal
                """,
                [name, self._cassette_id(name)],
            )
            found.extend(map(_summary, rows))
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

    def find(self, prefix: str, cassette: str | None = None) -> list[RecordingSummary]:
        """Recordings whose key starts with `prefix` (`KEY#N` picks a repeat), in any or one cassette."""
        match = _KEY_PREFIX.match(prefix.strip())
        if not match:
            raise CatalogError(f"{prefix!r} is not a key prefix: use hex digits, as `claude-vcr list` shows")
        hex_prefix, ordinal = match.group(1).lower(), match.group(2)
        if len(hex_prefix) < MIN_PREFIX_LENGTH:
            raise CatalogError(
                f"key prefix {prefix!r} is too short: give at least {MIN_PREFIX_LENGTH} hex digits"
            )
        sql = f"""
            SELECT {_SUMMARY_COLUMNS} FROM recordings r JOIN cassettes c ON c.id = r.cassette_id
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
        return [_summary(row) for row in self.conn.execute(sql, params)]

    def resolve(self, prefix: str, cassette: str | None = None) -> RecordingSummary:
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

    def detail(self, recording: RecordingSummary | int) -> RecordingDetail:
        """One recording in full, bodies decompressed."""
        recording_id = recording if isinstance(recording, int) else recording.id
        found = next(self._details("WHERE r.id = ?", [recording_id]), None)
        if found is None:
            raise NotFound(f"no recording with id {recording_id}")
        return found

    def iter_details(self, cassette: str | None = None) -> Iterator[RecordingDetail]:
        """Every recording in full, by cassette name, key and ordinal, one at a time (memory stays flat)."""
        names = [cassette] if cassette is not None else self.cassette_names()
        for name in names:
            yield from self._details(
                "WHERE r.cassette_id = ? ORDER BY r.key, r.ordinal", [self._cassette_id(name)]
            )

    def _details(self, where: str, params: list[Any]) -> Iterator[RecordingDetail]:
        from .compression import decode_json, decode_request

        cursor = self.conn.cursor()
        cursor.row_factory = sqlite3.Row
        cursor.execute(
            f"SELECT c.name AS cassette_name, r.* FROM recordings r JOIN cassettes c ON c.id = r.cassette_id {where}",
            params,
        )
        decompressor = _decompressor()
        for row in cursor:
            yield self._detail(row, decompressor, decode_json, decode_request)

    def _detail(
        self, row: sqlite3.Row, decompressor: Any, decode_json: Any, decode_request: Any
    ) -> RecordingDetail:
        from .compression import decompress_frame

        columns = row.keys()
        codec = row["request_codec"] if "request_codec" in columns else None
        summary = _summary([row["id"], row["cassette_name"], *(row[c] for c in _SUMMARY_NAMES[2:])])
        return RecordingDetail(
            summary=summary,
            key_scheme=row["key_scheme"],
            request_headers=[(k, v) for k, v in decode_json(row["request_headers"], decompressor)],
            request_body=decode_request(self.conn, codec, row["request_body"], decompressor),
            response_headers=[(k, v) for k, v in decode_json(row["response_headers"], decompressor)],
            response_body=decompress_frame(decompressor, row["response_body"]),
            chunks=[(size, ms) for size, ms in decode_json(row["chunks"], decompressor)],
            duration_ms=row["duration_ms"],
            ttfb_ms=row["ttfb_ms"],
            meta=json.loads(row["meta"]) if row["meta"] else None,
            match_summary=decode_json(row["summary"], decompressor) if "summary" in columns else None,
            extra={c: row[c] for c in columns if c not in _DETAIL_COLUMNS},
        )

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
                   r.response_size, r.created_at, r.request_codec, r.request_body, r.response_body
            FROM recordings r JOIN cassettes c ON c.id = r.cassette_id ORDER BY c.name, r.key, r.ordinal
            """
        )
        from .compression import decode_request, decompress_frame

        decompressor = _decompressor()
        for (
            name,
            key,
            ordinal,
            method,
            path,
            model,
            stream,
            status,
            size,
            created,
            codec,
            request,
            response,
        ) in rows:
            request_digest = hashlib.sha256(
                decode_request(self.conn, codec, request, decompressor)
            ).hexdigest()
            response_digest = hashlib.sha256(decompress_frame(decompressor, response)).hexdigest()
            yield (
                f"{name} {short_key(key, ordinal)} {method} {path} {model or '-'} "
                f"{'stream' if stream else 'json'} {status} {size}B {created} "
                f"req={request_digest[:8]} resp={response_digest[:8]}"
            )


def _decompressor() -> Any:
    """zstandard is imported only by the commands that read bodies."""
    import zstandard

    return zstandard.ZstdDecompressor()
