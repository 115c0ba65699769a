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
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zstandard

from .compression import (
    CHUNKED_CODEC,
    MAX_CHUNK,
    decode_json,
    decompressor,
    frame_digest,
    inflate,
    unpack_ids,
)
from .errors import Ambiguous, DatabaseError, InvalidInput, NoDatabase, NotFound
from .matching import short_key
from .records import (
    FINGERPRINTS_LIMIT,
    UNSTORED_COLUMNS,
    Recording,
    RecordingRow,
    StoredRules,
    UnstoredAnswer,
    decode,
    decode_row,
    request_body,
    row_columns,
)
from .schema import (
    RAW_PREFIX,
    SCHEMA_STEPS,
    FileLock,
    check_file,
    db_errors,
    one_line,
    readonly_connection,
    shared_lock,
)
from .untrusted import StoredValueError

MIN_PREFIX_LENGTH = 4
MMAP_BYTES = 1 << 30
"""Reads through a memory map (read-only connections only): index scans run about twice as fast."""
_KEY_PREFIX = re.compile(r"^([0-9a-fA-F]+)(?:#(\d+))?$")
_CASSETTE_ID = "(SELECT id FROM cassettes WHERE name = ?)"
"""A cassette's id looked up inside the statement that uses it (the hot replay paths: one statement, not two)."""


class DamagedRecording(DatabaseError):
    """A stored recording that cannot be decoded; the message names it (replay answers with it)."""


def live_chunk_ids(conn: sqlite3.Connection, schema: str = "main") -> set[bytes]:
    """Ids of the request chunks some recording still refers to (the rest can go)."""
    live: set[bytes] = set()
    rows = conn.execute(f"SELECT request_body FROM {schema}.recordings WHERE request_codec = ?", [CHUNKED_CODEC])
    for (packed,) in rows:
        live.update(unpack_ids(packed or b""))
    return live


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


@db_errors
class Catalog:
    """Queries over one open connection; `Catalog.open(path)` for a read-only one."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None = None) -> None:
        self.conn = conn
        self.path = path
        self._owned = False
        self._lock: FileLock | None = None
        self._decompressor = decompressor()
        """Reused by the per-request reads (replay, miss diagnosis); a catalog is used from one thread."""

    @classmethod
    def open(cls, path: str | Path) -> Catalog:
        """A read-only catalog; it holds the file's shared lock, so `compact` never replaces it mid-read."""
        lock = shared_lock(Path(path))
        try:
            conn = connect_readonly(path)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        catalog = cls(conn, Path(path))
        catalog._owned = True
        catalog._lock = lock
        return catalog

    def close(self) -> None:
        if self._owned:
            self.conn.close()
            self._owned = False
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- cassettes ---------------------------------------------------------------------------------

    def unused_chunks(self) -> Iterator[tuple[bytes, bytes]]:
        """(id, bytes) of each request chunk no recording refers to: left by an older version's `delete`, or
        planted. `scan` reads them too, so a key in one is never reported clean."""
        live = live_chunk_ids(self.conn)
        for identifier, data in self.conn.execute("SELECT id, data FROM chunks"):
            if identifier not in live:
                yield identifier, inflate(self._decompressor, data, MAX_CHUNK, "a stored request chunk")

    def replaced_answers(self, cassette: str | None = None) -> Iterator[tuple[int, str, str, int, bytes]]:
        """(id, cassette, key, ordinal, body) of each answer a record run replaced and the db keeps until
        `compact` (m012), its body inflated within the ceiling; `scan` and `redact` read them."""
        where, params = ("WHERE c.name = ?", [cassette]) if cassette is not None else ("", [])
        rows = self.conn.execute(
            "SELECT a.id, coalesce(c.name, '(no cassette)'), a.key, a.ordinal, a.response_body "
            f"FROM replaced_answers a LEFT JOIN cassettes c ON c.id = a.cassette_id {where} ORDER BY a.id",
            params,
        )
        for row_id, name, key, ordinal, frame in rows:
            yield row_id, str(name), str(key), int(ordinal), inflate(self._decompressor, frame, what="a replaced answer")

    def replaced_totals(self) -> tuple[int, int]:
        """(how many, stored bytes) of the replaced answers the db keeps until `compact`."""
        count, size = self.conn.execute(
            "SELECT count(*), coalesce(sum(length(response_body)), 0) FROM replaced_answers"
        ).fetchone()
        return int(count), int(size)

    def cassette_names(self) -> list[str]:
        return [row[0] for row in self.conn.execute("SELECT name FROM cassettes ORDER BY name")]

    def cassette_info(self, name: str) -> CassetteInfo:
        row = self.conn.execute(
            "SELECT name, key_scheme, rules_json, created_at FROM cassettes WHERE name = ?", [name]
        ).fetchone()
        if row is None:
            raise NotFound(self._unknown_cassette(name))
        return CassetteInfo(*row)

    def cassette_id(self, name: str) -> int | None:
        """A cassette's row id, or None; looked up each time (another process may delete and remake it)."""
        row = self.conn.execute("SELECT id FROM cassettes WHERE name = ?", [name]).fetchone()
        return None if row is None else row[0]

    def _cassette_id(self, name: str) -> int:
        found = self.cassette_id(name)
        if found is None:
            raise NotFound(self._unknown_cassette(name))
        return found

    def _unknown_cassette(self, name: str) -> str:
        """`no cassette named 'x' (did you mean 'y'?); cassettes: a, b and 3 more` (names.unknown_cassette)."""
        from .names import unknown_cassette

        return unknown_cassette(name, self.cassette_names())

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

    def page(
        self, cassette: str, *, text: str = "", offset: int = 0, limit: int = 100
    ) -> tuple[list[RecordingRow], int]:
        """One page of a cassette's recordings, oldest first, and how many match: `text` (any case) filters
        on key prefix, path, model or prompt excerpt. Reads the catalog index only."""
        where, params = "r.cassette_id = ?", [self._cassette_id(cassette)]
        if text.strip():
            escaped = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            needle = f"%{escaped}%"  # LIKE ignores ASCII case
            where += (
                " AND (r.key LIKE ? ESCAPE '\\' OR r.path LIKE ? ESCAPE '\\' OR r.model LIKE ? ESCAPE '\\'"
                " OR r.prompt_excerpt LIKE ? ESCAPE '\\')"
            )
            params += [needle.lstrip("%"), needle, needle, needle]
        total = self.conn.execute(
            f"SELECT count(*) FROM recordings r INDEXED BY recordings_catalog WHERE {where}", params
        ).fetchone()[0]
        rows = self.conn.execute(
            f"""
            SELECT {row_columns(cassette="?")} FROM recordings r INDEXED BY recordings_catalog
            WHERE {where} ORDER BY r.created_at, r.key, r.ordinal LIMIT ? OFFSET ?
            """,
            [cassette, *params, limit, offset],
        )
        return list(map(decode_row, rows)), total

    def stats(self, cassette: str | None = None) -> list[CassetteStats]:
        """Stats per cassette: the one named, or every cassette by name."""
        if cassette is not None:
            return self._stats({self._cassette_id(cassette): cassette})
        return self._stats(dict(self.conn.execute("SELECT id, name FROM cassettes ORDER BY name")))

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

    def detail(self, recording: RecordingRow | int, *, large_as_frame: bool = False) -> Recording:
        """One recording in full, bodies decompressed; with `large_as_frame` a response over 4 MB stays a
        frame, read through `response_reader()` (bounded by the row's recorded size)."""
        recording_id = recording if isinstance(recording, int) else recording.id
        found = next(self._details("WHERE r.id = ?", [recording_id], large_as_frame), None)
        if found is None:
            raise NotFound(f"no recording with id {recording_id}")
        return found

    def iter_details(
        self, cassette: str | None = None, *, large_as_frame: bool = False
    ) -> Iterator[Recording]:
        """Every recording in full, by cassette name, key and ordinal, one at a time (memory stays flat);
        `large_as_frame` as for `detail`."""
        names = [cassette] if cassette is not None else self.cassette_names()
        for name in names:
            yield from self._details(
                "WHERE r.cassette_id = ? ORDER BY r.key, r.ordinal", [self._cassette_id(name)], large_as_frame
            )

    def _details(self, where: str, params: list[Any], large_as_frame: bool = False) -> Iterator[Recording]:
        cursor = self.conn.cursor()
        cursor.row_factory = sqlite3.Row
        cursor.execute(
            f"SELECT c.name AS cassette_name, r.* FROM recordings r JOIN cassettes c ON c.id = r.cassette_id {where}",
            params,
        )
        reader = decompressor()
        for row in cursor:
            yield decode(row, row["cassette_name"], self.conn, reader, large_as_frame=large_as_frame)

    # --- what replay, miss diagnosis, rekey and the write side ask ----------------------------------

    def cassette_rules(self, cassette: str) -> StoredRules | None:
        """The rules a cassette was recorded with, or None for an unknown cassette."""
        row = self.conn.execute(
            "SELECT rules_json, key_scheme FROM cassettes WHERE name = ?", [cassette]
        ).fetchone()
        return None if row is None else StoredRules(*row)

    def lookup(self, cassette: str, key: str, ordinal: int = 0) -> RecordingRow | None:
        """The recording stored for this key, without its bodies, or None."""
        found = [r for r in self.find(key, cassette) if r.key == key and r.ordinal == ordinal]
        return found[0] if found else None

    def recording(self, cassette: str, key: str, ordinal: int = 0) -> Recording | None:
        """The recording stored for this key as replay reads it (a large response stays compressed), or None."""
        found = self._replayed(cassette, "AND key = ? AND ordinal = ?", [key, ordinal])
        return found[0] if found else None

    def recordings_of(self, cassette: str, key: str) -> list[Recording]:
        """Every recording of a key, in ordinal order: the answers to its repeats, as replay wants them (the
        request side left empty and unchecked: replay sends only the response)."""
        return self._replayed(cassette, "AND key = ? ORDER BY ordinal", [key], request=False)

    def _replayed(self, cassette: str, where: str, params: list[Any], request: bool = True) -> list[Recording]:
        """Recordings as replay wants them; a damaged one (a body zstd cannot read, a broken chunk) is
        reported by name."""
        cursor = self.conn.cursor()
        cursor.row_factory = sqlite3.Row
        rows = cursor.execute(
            f"SELECT * FROM recordings WHERE cassette_id = {_CASSETTE_ID} {where}", [cassette, *params]
        ).fetchall()
        decompressor = self._decompressor
        found = []
        for row in rows:
            try:
                found.append(decode(row, cassette, self.conn, decompressor, large_as_frame=True, request=request))
            except (zstandard.ZstdError, DatabaseError, ValueError, TypeError) as error:
                where_db = f" in {self.path}" if self.path else ""
                raise DamagedRecording(
                    f"claude-vcr: recording {short_key(row['key'], row['ordinal'])} of cassette {cassette!r}"
                    f"{where_db} is damaged ({one_line(error)}); re-record it or restore the db"
                ) from error
        return found

    def key_for_raw(self, cassette: str, raw: str) -> tuple[str, bool] | None:
        """(key, stream flag) of a recording whose request had exactly these bytes (`matching.raw_hash`).
        The index holds the hash's first digits; the row has all of it (`+` keeps SQLite from folding the
        full hash into the indexed expression, which would then no longer match the index)."""
        row = self.conn.execute(
            f"SELECT key, stream FROM recordings WHERE cassette_id = {_CASSETTE_ID} AND {RAW_PREFIX} = ? "
            "AND +raw_hash = ? LIMIT 1",
            [cassette, raw[:8], raw],
        ).fetchone()
        return None if row is None else (row[0], bool(row[1]))

    def candidates(self, cassette: str, method: str, path: str) -> list[tuple[int, str, int, dict[str, str]]]:
        """(id, key, ordinal, fingerprints) of the recordings a missed request could have meant: same method
        and path (none for an unknown cassette). Reads the small fingerprints column only, never the bodies."""
        decompressor = self._decompressor
        rows = self.conn.execute(
            "SELECT id, key, ordinal, fingerprints FROM recordings "
            f"WHERE cassette_id = {_CASSETTE_ID} AND method = ? AND path = ?",
            [cassette, method, path],
        ).fetchall()
        return [
            (row[0], row[1], row[2], decode_json(row[3], decompressor, FINGERPRINTS_LIMIT) or {}) for row in rows
        ]

    def request_body(self, recording_id: int) -> bytes:
        """One recording's request bytes, decompressed."""
        row = self.conn.execute(
            "SELECT request_codec, request_body, method, path, raw_hash FROM recordings WHERE id = ?",
            [recording_id],
        ).fetchone()
        if row is None:
            return b""
        codec, packed, method, path, raw = row
        return request_body(self.conn, self._decompressor, codec, packed, (method, path), raw)

    def requests(self, cassette: str) -> list[tuple[int, str, str, int, str, bytes]]:
        """(id, method, path, ordinal, created_at, request body) of every recording, oldest first."""
        rows = self.conn.execute(
            "SELECT id, method, path, ordinal, created_at, request_codec, request_body, raw_hash "
            f"FROM recordings WHERE cassette_id = {_CASSETTE_ID} ORDER BY created_at, id",
            [cassette],
        ).fetchall()
        decompressor = self._decompressor
        return [
            (r[0], r[1], r[2], r[3], r[4], request_body(self.conn, decompressor, r[5], r[6], (r[1], r[2]), r[7]))
            for r in rows
        ]

    def keys(self, cassette: str) -> list[tuple[int, str, int]]:
        """(id, key, ordinal) of every recording of a cassette (none for an unknown one)."""
        return self.conn.execute(
            f"SELECT id, key, ordinal FROM recordings WHERE cassette_id = {_CASSETTE_ID}", [cassette]
        ).fetchall()

    def count(self, cassette: str | None = None) -> int:
        """How many recordings, in one cassette or in all."""
        if cassette is None:
            return self.conn.execute("SELECT count(*) FROM recordings").fetchone()[0]
        return self.conn.execute(
            f"SELECT count(*) FROM recordings WHERE cassette_id = {_CASSETTE_ID}", [cassette]
        ).fetchone()[0]

    # --- notes of answers a record run did not store ----------------------------------------------

    def unstored_answer(self, cassette: str, key: str) -> UnstoredAnswer | None:
        """The note of a key's answer that a record run passed through unstored, or None (also for a note
        holding values claude-vcr never writes: a strict miss then says less, never something false)."""
        row = self.conn.execute(
            f"SELECT {UNSTORED_COLUMNS} FROM unstored_answers WHERE cassette = ? AND key = ?", [cassette, key]
        ).fetchone()
        try:
            return None if row is None else UnstoredAnswer.decode(row)
        except StoredValueError:
            return None

    def unstored_answers(self, cassette: str | None = None) -> list[UnstoredAnswer]:
        """Every note (of one cassette, or all), by cassette and key; a note with values claude-vcr never
        writes is refused (`StoredValueError`)."""
        return [UnstoredAnswer.decode(row) for row in self.unstored_rows(cassette)]

    def unstored_rows(self, cassette: str | None = None) -> list[tuple[Any, ...]]:
        """The notes' columns as stored, unchecked (`scan` reads every value, the refused ones too)."""
        where, params = ("WHERE cassette = ?", [cassette]) if cassette is not None else ("", [])
        return self.conn.execute(
            f"SELECT {UNSTORED_COLUMNS} FROM unstored_answers {where} ORDER BY cassette, key", params
        ).fetchall()

    def recorded_since(self, cassette: str, key: str, since: str) -> bool:
        """Whether the key has a recording made at or after `since` (a note older than it is stale)."""
        return (
            self.conn.execute(
                f"SELECT 1 FROM recordings WHERE cassette_id = {_CASSETTE_ID} AND key = ? AND created_at >= ?",
                [cassette, key, since],
            ).fetchone()
            is not None
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

    def unstored_versions(self) -> dict[tuple[str, str], tuple[str, str]]:
        """Per (cassette, key): a digest of its note as stored and its date, for the same three-way merge."""
        versions = {}
        for cassette, key, *values in self.conn.execute(f"SELECT {UNSTORED_COLUMNS} FROM unstored_answers"):
            digest = hashlib.sha256(repr(values).encode()).hexdigest()
            versions[(cassette, key)] = (digest, str(values[-1]))
        return versions

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
        reader = decompressor()
        for name, key, ordinal, method, path, model, stream, status, size, created, *request, response in rows:
            body = request_body(self.conn, reader, *request[:2], (method, path), request[2])
            request_digest = hashlib.sha256(body).hexdigest()
            response_digest = frame_digest(reader, response)
            yield (
                f"{name} {short_key(key, ordinal)} {method} {path} {model or '-'} "
                f"{'stream' if stream else 'json'} {status} {size}B {created} "
                f"req={request_digest[:8]} resp={response_digest[:8]}"
            )
        for note in self.unstored_answers():
            yield (
                f"{note.cassette} {short_key(note.key)} not-stored {note.status} {note.error_type or '-'} "
                f"{note.noted_at}"
            )
