"""The cassette store: one SQLite file of zstd-compressed recordings, migrated when opened."""

from __future__ import annotations

import asyncio
import datetime
import io
import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import zstandard
from sqlite_utils import Database

from .compression import (
    CHUNKED_CODEC,
    CHUNKING_MIN_BYTES,
    LARGE_BODY,
    WHOLE_CODEC,
    MissingChunk,
    chunk_id,
    decode_json,
    decode_request,
    decompress_frame,
    encode_json,
    fetch_chunks,
    pack_ids,
    split_chunks,
    unpack_ids,
)
from .errors import DatabaseError
from .matching import raw_hash
from .migrations import MIGRATION_SET, migrations

SQLITE_MAGIC = b"SQLite format 3\x00"
COMPRESSION_LEVEL = 3
BUSY_TIMEOUT_MS = 10_000
PAGE_SIZE = 1024
"""Small pages hold a recording's few-KB compressed bodies with little slack (4 KB pages left a third of a
committed session's file empty); `compact` converts older files."""

T = TypeVar("T")
Headers = list[tuple[str, str]]


class StoreError(DatabaseError):
    """A db that claude-vcr will not open or change; the message says why and the file is untouched."""


def utc_now() -> str:
    """Timestamps sort as text: ISO 8601 in UTC with milliseconds."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


@dataclass
class Recording:
    """One stored exchange: the request as sent, the response bytes exactly as received."""

    cassette: str
    key: str
    key_scheme: str
    method: str
    path: str
    status: int
    request_headers: Headers
    request_body: bytes
    response_headers: Headers
    response_body: bytes
    chunks: list[tuple[int, float]] = field(default_factory=list)
    """(size in bytes, milliseconds since the request was sent) per chunk received."""
    model: str | None = None
    stream: bool = False
    ordinal: int = 0
    created_at: str = field(default_factory=utc_now)
    duration_ms: float | None = None
    ttfb_ms: float | None = None
    stored_size: int | None = None
    summary: dict[str, str] | None = None
    """Hashes of the normalised request's parts (see `matching.summarise`), for miss diagnosis."""
    raw_hash: str | None = None
    """`matching.raw_hash` of the request; worked out on save when not given."""
    response_frame: bytes | None = None
    """A large response (over `compression.LARGE_BODY`) stays a zstd frame: `response_body` is empty and
    `response_reader()` decompresses it as it is read."""
    response_length: int | None = None
    """The raw size of a response kept as a frame."""
    id: int | None = None

    def response_reader(self) -> BinaryIO:
        """The response bytes as a stream: no more than a read's worth decompressed at a time."""
        if self.response_frame is None:
            return io.BytesIO(self.response_body)
        return zstandard.ZstdDecompressor().stream_reader(self.response_frame)

    @property
    def response_bytes(self) -> int:
        return len(self.response_body) if self.response_frame is None else self.response_length or 0

    def header(self, name: str) -> str | None:
        """The first response header of that name, any case."""
        lowered = name.lower()
        return next((v for k, v in self.response_headers if k.lower() == lowered), None)


def _check_file(path: Path) -> None:
    """Refuse what is not SQLite before sqlite3 gets a chance to write to it."""
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a claude-vcr database file")
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb") as handle:
        magic = handle.read(len(SQLITE_MAGIC))
    if magic != SQLITE_MAGIC:
        raise StoreError(f"{path} is not a SQLite database; claude-vcr left it untouched")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            conn.execute("PRAGMA schema_version").fetchone()
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            applied: set[str] = set()
            if "_sqlite_migrations" in tables:
                applied = {
                    row[0]
                    for row in conn.execute(
                        "SELECT name FROM _sqlite_migrations WHERE migration_set = ?", [MIGRATION_SET]
                    )
                }
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        raise StoreError(f"{path} is damaged or not a SQLite database ({error}); left untouched") from error
    known = {m.name for m in migrations._migrations}
    unknown = sorted(applied - known)
    if unknown:
        raise StoreError(
            f"{path} was written by a newer claude-vcr (schema steps {', '.join(unknown)} are unknown to "
            f"this version); upgrade claude-vcr to use it. The file was not changed."
        )
    user_tables = {t for t in tables if not t.startswith(("sqlite_", "_sqlite_"))}
    if user_tables and not applied:
        raise StoreError(
            f"{path} is a SQLite database of another program (tables: {', '.join(sorted(user_tables))}); "
            "claude-vcr left it untouched"
        )


class Store:
    """All SQL lives here; callers deal in `Recording`s and cassette names."""

    def __init__(self, path: str | Path, *, serving: bool = False) -> None:
        self.path = Path(path)
        _check_file(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # takes effect on a new file only
        self.db = Database(self._conn)
        self.serving = serving
        self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._conn.execute("PRAGMA foreign_keys = ON")
        if serving:
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
        migrations.apply(self.db)
        self._cassette_ids: dict[str, int] = {}
        self._compressor = zstandard.ZstdCompressor(level=COMPRESSION_LEVEL)
        self._decompressor = zstandard.ZstdDecompressor()

    def close(self) -> None:
        """Fold the WAL back in, so the file is whole on its own again (nothing beside it for git)."""
        if self._conn is None:
            return
        if self.serving:
            self._conn.execute("PRAGMA busy_timeout = 200")
            try:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._conn.execute("PRAGMA journal_mode = DELETE")
            except sqlite3.OperationalError:
                pass  # another process still has the db open; the last one to close folds the WAL back
        self._conn.close()
        self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _compress(self, data: bytes) -> bytes:
        return self._compressor.compress(data)

    def _decompress(self, data: bytes | None) -> bytes:
        if not data:
            return b""
        return decompress_frame(self._decompressor, data)

    def _cassette_id(self, name: str, *, create: bool) -> int | None:
        cached = self._cassette_ids.get(name)
        if cached is not None:
            return cached
        row = self._conn.execute("SELECT id FROM cassettes WHERE name = ?", [name]).fetchone()
        if row is None:
            if not create:
                return None
            cursor = self._conn.execute(
                "INSERT INTO cassettes (name, key_scheme, created_at) VALUES (?, ?, ?)",
                [name, "", utc_now()],
            )
            row = (cursor.lastrowid,)
        self._cassette_ids[name] = row[0]
        return row[0]

    def save(self, recording: Recording) -> Recording:
        """Store a complete exchange in one transaction; a newer one of the same key and ordinal wins."""
        if recording.response_frame is not None:
            response_blob = recording.response_frame
        else:
            response_blob = self._compress(recording.response_body)
        with self.db.atomic():
            request_codec, request_blob, new_chunk_bytes = self._store_request(recording.request_body)
            recording.stored_size = len(request_blob) + new_chunk_bytes + len(response_blob)
            cassette_id = self._cassette_id(recording.cassette, create=True)
            self._conn.execute(
                "UPDATE cassettes SET key_scheme = ? WHERE id = ?", [recording.key_scheme, cassette_id]
            )
            self._conn.execute(
                "DELETE FROM recordings WHERE cassette_id = ? AND key = ? AND ordinal = ?",
                [cassette_id, recording.key, recording.ordinal],
            )
            cursor = self._conn.execute(
                """
                INSERT INTO recordings (
                    cassette_id, key, ordinal, key_scheme, method, path, model, stream, status,
                    request_headers, request_body, response_headers, response_body, chunks,
                    created_at, duration_ms, ttfb_ms, request_size, response_size, stored_size, summary,
                    raw_hash, request_codec
                ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    cassette_id,
                    recording.key,
                    recording.ordinal,
                    recording.key_scheme,
                    recording.method,
                    recording.path,
                    recording.model,
                    int(recording.stream),
                    recording.status,
                    encode_json(recording.request_headers, self._compressor),
                    request_blob,
                    encode_json(recording.response_headers, self._compressor),
                    response_blob,
                    encode_json([[size, round(ms, 1)] for size, ms in recording.chunks], self._compressor),
                    recording.created_at,
                    recording.duration_ms,
                    recording.ttfb_ms,
                    len(recording.request_body),
                    recording.response_bytes,
                    recording.stored_size,
                    None if recording.summary is None else encode_json(recording.summary, self._compressor),
                    recording.raw_hash or raw_hash(recording.method, recording.path, recording.request_body),
                    request_codec,
                ],
            )
        recording.id = cursor.lastrowid
        return recording

    def lookup(self, cassette: str, key: str, ordinal: int = 0) -> Recording | None:
        """The recording stored for this key, or None."""
        cassette_id = self._cassette_id(cassette, create=False)
        if cassette_id is None:
            return None
        self._conn.row_factory = sqlite3.Row
        try:
            row = self._conn.execute(
                "SELECT * FROM recordings WHERE cassette_id = ? AND key = ? AND ordinal = ?",
                [cassette_id, key, ordinal],
            ).fetchone()
        finally:
            self._conn.row_factory = None
        return None if row is None else self._recording(cassette, row)

    def _store_request(self, body: bytes) -> tuple[str, bytes, int]:
        """(codec, stored form, bytes of new chunks): large bodies become chunk ids, each chunk stored once."""
        if len(body) < CHUNKING_MIN_BYTES:
            return WHOLE_CODEC, self._compress(body), 0
        chunks = split_chunks(body)
        ids = [chunk_id(chunk) for chunk in chunks]
        stored = fetch_chunks(self._conn, ids)
        added = 0
        for identifier, chunk in zip(ids, chunks, strict=True):
            if identifier in stored:
                if self._decompressor.decompress(stored[identifier]) != chunk:  # a 64-bit id collision
                    return WHOLE_CODEC, self._compress(body), 0
                continue
            data = self._compress(chunk)
            self._conn.execute("INSERT INTO chunks (id, data) VALUES (?, ?)", [identifier, data])
            stored[identifier] = data
            added += len(data)
        return CHUNKED_CODEC, pack_ids(ids), added

    def _request_body(
        self,
        codec: str | None,
        blob: bytes | None,
        expected_hash: str | None = None,
        target: tuple[str, str] | None = None,
    ) -> bytes:
        """A stored request body; a chunked one is checked against the request's full hash when known."""
        try:
            body = decode_request(self._conn, codec, blob, self._decompressor)
        except MissingChunk as error:
            raise StoreError(f"{self.path}: {error}") from error
        if codec == CHUNKED_CODEC and expected_hash and target and raw_hash(*target, body) != expected_hash:
            raise StoreError(f"{self.path}: a request body does not match its hash (damaged chunks)")
        return body

    def _recording(self, cassette: str, row: sqlite3.Row) -> Recording:
        return Recording(
            id=row["id"],
            cassette=cassette,
            key=row["key"],
            key_scheme=row["key_scheme"],
            ordinal=row["ordinal"],
            method=row["method"],
            path=row["path"],
            model=row["model"],
            stream=bool(row["stream"]),
            status=row["status"],
            request_headers=[tuple(h) for h in decode_json(row["request_headers"], self._decompressor)],
            request_body=self._request_body(
                row["request_codec"], row["request_body"], row["raw_hash"], (row["method"], row["path"])
            ),
            response_headers=[tuple(h) for h in decode_json(row["response_headers"], self._decompressor)],
            response_body=b""
            if row["response_size"] > LARGE_BODY
            else self._decompress(row["response_body"]),
            response_frame=row["response_body"] if row["response_size"] > LARGE_BODY else None,
            response_length=row["response_size"],
            chunks=[(size, ms) for size, ms in decode_json(row["chunks"], self._decompressor)],
            created_at=row["created_at"],
            duration_ms=row["duration_ms"],
            ttfb_ms=row["ttfb_ms"],
            stored_size=row["stored_size"],
            summary=decode_json(row["summary"], self._decompressor),
            raw_hash=row["raw_hash"],
        )

    def recordings_of(self, cassette: str, key: str) -> list[Recording]:
        """Every recording of a key, in ordinal order: the answers to its repeats."""
        cassette_id = self._cassette_id(cassette, create=False)
        if cassette_id is None:
            return []
        self._conn.row_factory = sqlite3.Row
        try:
            rows = self._conn.execute(
                "SELECT * FROM recordings WHERE cassette_id = ? AND key = ? ORDER BY ordinal",
                [cassette_id, key],
            ).fetchall()
        finally:
            self._conn.row_factory = None
        return [self._recording(cassette, row) for row in rows]

    def key_for_raw(self, cassette: str, raw: str) -> tuple[str, bool] | None:
        """(key, stream flag) of a recording whose request had exactly these bytes (`matching.raw_hash`)."""
        cassette_id = self._cassette_id(cassette, create=False)
        if cassette_id is None:
            return None
        row = self._conn.execute(
            "SELECT key, stream FROM recordings WHERE cassette_id = ? AND raw_hash = ? LIMIT 1",
            [cassette_id, raw],
        ).fetchone()
        return None if row is None else (row[0], bool(row[1]))

    def forget_key(self, cassette: str, key: str) -> int:
        """Drop every recording of a key: a record run starts that request's sequence afresh."""
        cassette_id = self._cassette_id(cassette, create=False)
        if cassette_id is None:
            return 0
        with self.db.atomic():
            cursor = self._conn.execute(
                "DELETE FROM recordings WHERE cassette_id = ? AND key = ?", [cassette_id, key]
            )
        return cursor.rowcount

    def cassette_rules(self, cassette: str) -> tuple[str | None, str] | None:
        """(rules JSON, key scheme) a cassette was recorded with, or None for a cassette not yet made."""
        row = self._conn.execute(
            "SELECT rules_json, key_scheme FROM cassettes WHERE name = ?", [cassette]
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def set_cassette_rules(self, cassette: str, rules_json: str, key_scheme: str) -> None:
        """Remember the rules a cassette's keys were computed with (creating the cassette if needed)."""
        with self.db.atomic():
            cassette_id = self._cassette_id(cassette, create=True)
            self._conn.execute(
                "UPDATE cassettes SET rules_json = ?, key_scheme = ? WHERE id = ?",
                [rules_json, key_scheme, cassette_id],
            )

    def candidates(self, cassette: str, method: str, path: str) -> list[tuple[int, str, int, dict[str, str]]]:
        """(id, key, ordinal, summary) of the recordings a missed request could have meant: same method and
        path. Reads the small summary column only, never the bodies."""
        cassette_id = self._cassette_id(cassette, create=False)
        if cassette_id is None:
            return []
        rows = self._conn.execute(
            "SELECT id, key, ordinal, summary FROM recordings WHERE cassette_id = ? AND method = ? AND path = ?",
            [cassette_id, method, path],
        ).fetchall()
        return [(row[0], row[1], row[2], decode_json(row[3], self._decompressor) or {}) for row in rows]

    def request_body(self, recording_id: int) -> bytes:
        """One recording's request bytes, decompressed."""
        row = self._conn.execute(
            "SELECT request_codec, request_body FROM recordings WHERE id = ?", [recording_id]
        ).fetchone()
        return b"" if row is None else self._request_body(row[0], row[1])

    def cassette_names(self) -> list[str]:
        return [row[0] for row in self._conn.execute("SELECT name FROM cassettes ORDER BY name")]

    def requests(self, cassette: str) -> list[tuple[int, str, str, int, str, bytes]]:
        """(id, method, path, ordinal, created_at, request body) of every recording, oldest first."""
        cassette_id = self._cassette_id(cassette, create=False)
        if cassette_id is None:
            return []
        rows = self._conn.execute(
            "SELECT id, method, path, ordinal, created_at, request_codec, request_body FROM recordings "
            "WHERE cassette_id = ? ORDER BY created_at, id",
            [cassette_id],
        ).fetchall()
        return [(r[0], r[1], r[2], r[3], r[4], self._request_body(r[5], r[6])) for r in rows]

    def keys(self, cassette: str) -> list[tuple[int, str, int]]:
        """(id, key, ordinal) of every recording of a cassette."""
        cassette_id = self._cassette_id(cassette, create=False)
        if cassette_id is None:
            return []
        return self._conn.execute(
            "SELECT id, key, ordinal FROM recordings WHERE cassette_id = ?", [cassette_id]
        ).fetchall()

    def rekey(
        self,
        cassette: str,
        rules_json: str,
        key_scheme: str,
        keys: list[tuple[int, str, int, dict[str, str] | None]],
    ) -> None:
        """Give recordings new (key, ordinal, summary) in one transaction, and the cassette its new rules."""
        with self.db.atomic():
            cassette_id = self._cassette_id(cassette, create=True)
            # park every ordinal out of the way first, so the unique (cassette, key, ordinal) never trips midway
            self._conn.execute("UPDATE recordings SET ordinal = -id WHERE cassette_id = ?", [cassette_id])
            self._conn.executemany(
                "UPDATE recordings SET key = ?, ordinal = ?, summary = ?, key_scheme = ? WHERE id = ?",
                [
                    (
                        key,
                        ordinal,
                        None if summary is None else encode_json(summary, self._compressor),
                        key_scheme,
                        rid,
                    )
                    for rid, key, ordinal, summary in keys
                ],
            )
            self._conn.execute(
                "UPDATE cassettes SET rules_json = ?, key_scheme = ? WHERE id = ?",
                [rules_json, key_scheme, cassette_id],
            )

    def count(self, cassette: str | None = None) -> int:
        """How many recordings, in one cassette or in all."""
        if cassette is None:
            return self._conn.execute("SELECT count(*) FROM recordings").fetchone()[0]
        return self._conn.execute(
            "SELECT count(*) FROM recordings r JOIN cassettes c ON c.id = r.cassette_id WHERE c.name = ?",
            [cassette],
        ).fetchone()[0]

    # --- management, import and git: `claude-vcr delete/clear/import/compact/merge-driver` -------------

    def transaction(self) -> _Transaction:
        """Many writes as one: an import that fails part-way leaves the db exactly as it was."""
        return _Transaction(self)

    def ensure_cassette(
        self, name: str, *, key_scheme: str = "", rules_json: str | None = None, created_at: str | None = None
    ) -> bool:
        """Create a cassette with these attributes unless it exists (an import keeps the exported ones)."""
        if self._cassette_id(name, create=False) is not None:
            return False
        cursor = self._conn.execute(
            "INSERT INTO cassettes (name, key_scheme, rules_json, created_at) VALUES (?, ?, ?, ?)",
            [name, key_scheme, rules_json, created_at or utc_now()],
        )
        self._cassette_ids[name] = cursor.lastrowid
        return True

    def save_imported(
        self, recording: Recording, meta: dict[str, Any] | None, columns: dict[str, Any] | None = None
    ) -> Recording:
        """`save`, plus where an imported recording came from (seed key, dump file) in its meta column, and
        `columns`: values of columns `Recording` has no field for (an export of a later schema step)."""
        with self.db.atomic():
            self.save(recording)
            if meta is not None:
                self._conn.execute(
                    "UPDATE recordings SET meta = ? WHERE id = ?",
                    [
                        json.dumps(meta, sort_keys=True, ensure_ascii=False, separators=(",", ":")),
                        recording.id,
                    ],
                )
            if columns:
                existing = {row[1] for row in self._conn.execute("PRAGMA table_info(recordings)")}
                for name, value in sorted(columns.items()):
                    if name in existing and name not in ("id", "cassette_id", "key", "ordinal"):
                        self._conn.execute(
                            f'UPDATE recordings SET "{name}" = ? WHERE id = ?', [value, recording.id]
                        )
        return recording

    def delete_recordings(self, ids: list[int]) -> int:
        """Delete recordings by id (as `Catalog.resolve` found them); returns how many went."""
        with self.db.atomic():
            return sum(self._conn.execute("DELETE FROM recordings WHERE id = ?", [i]).rowcount for i in ids)

    def clear_cassette(self, name: str) -> int:
        """Delete a cassette with all its recordings (its rules go too); returns how many recordings went."""
        cassette_id = self._cassette_id(name, create=False)
        if cassette_id is None:
            raise StoreError(f"no cassette named {name!r}")
        with self.db.atomic():
            deleted = self._conn.execute(
                "DELETE FROM recordings WHERE cassette_id = ?", [cassette_id]
            ).rowcount
            self._conn.execute("DELETE FROM cassettes WHERE id = ?", [cassette_id])
        self._cassette_ids.pop(name, None)
        return deleted

    def merge_from(
        self,
        other: str | Path,
        *,
        take: list[tuple[str, str]],
        drop: list[tuple[str, str]],
        take_cassettes: list[str],
        drop_cassettes: list[str],
    ) -> None:
        """Apply another copy's changes in one transaction: each (cassette, key) in `take` is replaced by the
        other's recordings of it (every repeat, bytes copied as stored, never recompressed), each in `drop`
        deleted, cassette rows in `take_cassettes` copied, and cassettes in `drop_cassettes` deleted if empty.
        `other` must have this db's schema (open it with `Store` first)."""
        self._conn.execute("ATTACH DATABASE ? AS merge_other", [str(other)])
        try:
            columns = [
                row[1]
                for row in self._conn.execute("PRAGMA main.table_info(recordings)")
                if row[1] not in ("id", "cassette_id")
            ]
            names = ", ".join(columns)
            selected = ", ".join(f"r.{column}" for column in columns)
            with self.db.atomic():
                # request chunks first: copied rows point at them (compact drops any left unused)
                self._conn.execute(
                    "INSERT OR IGNORE INTO main.chunks SELECT id, data FROM merge_other.chunks"
                )
                for name in take_cassettes:
                    self._copy_cassette(name)
                for name, key in take:
                    cassette_id = self._cassette_id(name, create=False)
                    if cassette_id is None:
                        cassette_id = self._copy_cassette(name)
                    self._conn.execute(
                        "DELETE FROM main.recordings WHERE cassette_id = ? AND key = ?", [cassette_id, key]
                    )
                    self._conn.execute(
                        f"""
                        INSERT INTO main.recordings (cassette_id, {names})
                        SELECT ?, {selected} FROM merge_other.recordings r
                        JOIN merge_other.cassettes c ON c.id = r.cassette_id
                        WHERE c.name = ? AND r.key = ? ORDER BY r.ordinal
                        """,
                        [cassette_id, name, key],
                    )
                for name, key in drop:
                    self._conn.execute(
                        "DELETE FROM main.recordings WHERE key = ? AND cassette_id = "
                        "(SELECT id FROM main.cassettes WHERE name = ?)",
                        [key, name],
                    )
                for name in drop_cassettes:
                    self._conn.execute(
                        "DELETE FROM main.cassettes WHERE name = ? AND NOT EXISTS "
                        "(SELECT 1 FROM main.recordings r WHERE r.cassette_id = cassettes.id)",
                        [name],
                    )
        finally:
            self._cassette_ids.clear()
            self._conn.execute("DETACH DATABASE merge_other")

    def _copy_cassette(self, name: str) -> int:
        """The other copy's cassette row (rules, key scheme, date) here, created or updated; returns its id."""
        row = self._conn.execute(
            "SELECT key_scheme, rules_json, created_at FROM merge_other.cassettes WHERE name = ?", [name]
        ).fetchone()
        if row is None:
            raise StoreError(f"merge: cassette {name!r} is missing from {self.path}'s other side")
        cassette_id = self._cassette_id(name, create=False)
        if cassette_id is None:
            cursor = self._conn.execute(
                "INSERT INTO main.cassettes (name, key_scheme, rules_json, created_at) VALUES (?, ?, ?, ?)",
                [name, *row],
            )
            cassette_id = cursor.lastrowid
            self._cassette_ids[name] = cassette_id
        else:
            self._conn.execute(
                "UPDATE main.cassettes SET key_scheme = ?, rules_json = ?, created_at = ? WHERE id = ?",
                [*row, cassette_id],
            )
        return cassette_id

    def compact_into(self, dest: str | Path) -> None:
        """Write this db to `dest` without dead pages and in one canonical order.

        Cassettes are renumbered by name and recordings by (cassette, key, ordinal) before `VACUUM INTO`, so
        the same content gives the same bytes whatever order it was recorded, imported or merged in. (Ids are
        kept as they are if a table of another version points at them.) `dest` must not exist.
        """
        import os

        dest = Path(dest)
        if dest.exists():
            raise StoreError(f"{dest} already exists; compact writes a new file")
        staging = dest.with_name(dest.name + ".staging")
        staging.unlink(missing_ok=True)
        conn = self._conn
        page_size = PAGE_SIZE
        user_version = conn.execute("PRAGMA main.user_version").fetchone()[0]
        schema = conn.execute(
            "SELECT type, name, sql FROM main.sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
            "ORDER BY rowid"
        ).fetchall()
        tables = [name for kind, name, _ in schema if kind == "table"]
        referencing = {
            row[2]
            for table in tables
            if table not in ("cassettes", "recordings")
            for row in conn.execute(f'PRAGMA main.foreign_key_list("{table}")')
        }
        ours = {"cassettes", "recordings"}
        renumber = ours <= set(tables) and not referencing & ours
        target = sqlite3.connect(str(staging), isolation_level=None)
        try:
            target.execute(f"PRAGMA page_size = {int(page_size)}")
            target.execute(f"PRAGMA user_version = {int(user_version)}")
            for _, _, sql in schema:
                target.execute(sql)
        finally:
            target.close()
        conn.execute("ATTACH DATABASE ? AS compact_target", [str(staging)])
        try:
            with self.db.atomic():
                for table in tables:
                    if renumber and table in ("cassettes", "recordings"):
                        continue
                    if table == "recording_totals":  # rebuilt by its triggers as recordings are copied
                        continue
                    order = (
                        "id" if table == "chunks" else "rowid"
                    )  # chunks: the same order whatever came first
                    try:
                        conn.execute(
                            f'INSERT INTO compact_target."{table}" SELECT * FROM main."{table}" ORDER BY {order}'
                        )
                    except sqlite3.OperationalError:  # a WITHOUT ROWID table: already in primary-key order
                        conn.execute(f'INSERT INTO compact_target."{table}" SELECT * FROM main."{table}"')
                if renumber:
                    self._copy_renumbered(conn)
                self._drop_unused_chunks(conn)
        finally:
            conn.execute("DETACH DATABASE compact_target")
        staged = sqlite3.connect(str(staging), isolation_level=None)
        try:
            staged.execute("VACUUM INTO ?", [str(dest)])
        finally:
            staged.close()
            staging.unlink(missing_ok=True)
        with dest.open("rb+") as handle:  # VACUUM INTO does not sync its output
            os.fsync(handle.fileno())

    @staticmethod
    def _drop_unused_chunks(conn: sqlite3.Connection) -> None:
        """Request chunks no recording refers to any more (deleted, re-recorded) leave the compacted copy."""
        live: set[bytes] = set()
        rows = conn.execute(
            "SELECT request_body FROM compact_target.recordings WHERE request_codec = ?", [CHUNKED_CODEC]
        )
        for (packed,) in rows:
            live.update(unpack_ids(packed or b""))
        conn.execute("DROP TABLE IF EXISTS temp.live_chunks")
        conn.execute("CREATE TEMP TABLE live_chunks (id BLOB PRIMARY KEY) WITHOUT ROWID")
        conn.executemany("INSERT INTO temp.live_chunks (id) VALUES (?)", [(i,) for i in live])
        conn.execute("DELETE FROM compact_target.chunks WHERE id NOT IN (SELECT id FROM temp.live_chunks)")
        conn.execute("DROP TABLE temp.live_chunks")

    @staticmethod
    def _copy_renumbered(conn: sqlite3.Connection) -> None:
        """Cassettes by name and recordings by (cassette, key, ordinal) into compact_target, ids from 1."""
        cassette_columns = [r[1] for r in conn.execute("PRAGMA main.table_info(cassettes)") if r[1] != "id"]
        recording_columns = [
            r[1]
            for r in conn.execute("PRAGMA main.table_info(recordings)")
            if r[1] not in ("id", "cassette_id")
        ]
        conn.execute("DROP TABLE IF EXISTS temp.compact_cassettes")
        conn.execute("DROP TABLE IF EXISTS temp.compact_recordings")
        conn.execute(
            "CREATE TEMP TABLE compact_cassettes (new_id INTEGER PRIMARY KEY, old_id INTEGER NOT NULL)"
        )
        conn.execute(
            "CREATE TEMP TABLE compact_recordings "
            "(new_id INTEGER PRIMARY KEY, old_id INTEGER NOT NULL, cassette_id INTEGER NOT NULL)"
        )
        conn.execute(
            "INSERT INTO temp.compact_cassettes (old_id) SELECT id FROM main.cassettes ORDER BY name"
        )
        conn.execute(
            """
            INSERT INTO temp.compact_recordings (old_id, cassette_id)
            SELECT r.id, m.new_id FROM main.recordings r JOIN temp.compact_cassettes m ON m.old_id = r.cassette_id
            ORDER BY m.new_id, r.key, r.ordinal
            """
        )
        names = ", ".join(cassette_columns)
        selected = ", ".join(f"c.{column}" for column in cassette_columns)
        conn.execute(
            f"""
            INSERT INTO compact_target.cassettes (id, {names})
            SELECT m.new_id, {selected} FROM temp.compact_cassettes m JOIN main.cassettes c ON c.id = m.old_id
            ORDER BY m.new_id
            """
        )
        names = ", ".join(recording_columns)
        selected = ", ".join(f"r.{column}" for column in recording_columns)
        conn.execute(
            f"""
            INSERT INTO compact_target.recordings (id, cassette_id, {names})
            SELECT m.new_id, m.cassette_id, {selected}
            FROM temp.compact_recordings m JOIN main.recordings r ON r.id = m.old_id
            ORDER BY m.new_id
            """
        )
        conn.execute("DROP TABLE temp.compact_cassettes")
        conn.execute("DROP TABLE temp.compact_recordings")


class StoreThread:
    """Runs every call of one `Store` on a single thread: the event loop never waits on the disk,
    and SQLite never sees two writers."""

    def __init__(self, store: Store, executor: ThreadPoolExecutor) -> None:
        self.store = store
        self._executor = executor

    @classmethod
    async def open(cls, path: str | Path) -> StoreThread:
        """Open (and migrate) the db on the thread that will use it from now on."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vcr-store")
        try:
            store = await asyncio.get_running_loop().run_in_executor(
                executor, lambda: Store(path, serving=True)
            )
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(store, executor)

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Call `func(store, *args)` on the store thread: for library code that reads the store."""
        return await self._run(func, self.store, *args)

    async def recordings_of(self, cassette: str, key: str) -> list[Recording]:
        return await self._run(self.store.recordings_of, cassette, key)

    async def key_for_raw(self, cassette: str, raw: str) -> tuple[str, bool] | None:
        return await self._run(self.store.key_for_raw, cassette, raw)

    async def forget_key(self, cassette: str, key: str) -> int:
        return await self._run(self.store.forget_key, cassette, key)

    async def cassette_rules(self, cassette: str) -> tuple[str | None, str] | None:
        return await self._run(self.store.cassette_rules, cassette)

    async def set_cassette_rules(self, cassette: str, rules_json: str, key_scheme: str) -> None:
        await self._run(self.store.set_cassette_rules, cassette, rules_json, key_scheme)

    async def save(self, recording: Recording) -> Recording:
        return await self._run(self.store.save, recording)

    async def close(self) -> None:
        await self._run(self.store.close)
        self._executor.shutdown(wait=True)


class _Transaction:
    """`Store.transaction()`: one SQLite transaction; on failure the store also forgets cassette ids it
    cached inside it, since those rows were rolled back."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._atomic: Any = None

    def __enter__(self) -> Store:
        self._atomic = self.store.db.atomic()
        self._atomic.__enter__()
        return self.store

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        if exc_type is not None:
            self.store._cassette_ids.clear()
        return self._atomic.__exit__(exc_type, exc, tb)


def compact(path: str | Path) -> tuple[int, int]:
    """Rewrite a db in place without dead pages, in canonical order (see `Store.compact_into`); returns its
    size before and after. Nothing else may have the file open: it is replaced by a rename."""
    path = Path(path)
    before = path.stat().st_size
    fresh = path.with_name(path.name + ".compacting")
    fresh.unlink(missing_ok=True)
    try:
        with Store(path) as store:
            store.compact_into(fresh)
        fresh.replace(path)
    finally:
        fresh.unlink(missing_ok=True)
    return before, path.stat().st_size
