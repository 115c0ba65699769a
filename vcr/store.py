"""The cassette store: one SQLite file of zstd-compressed recordings, migrated when opened."""

from __future__ import annotations

import asyncio
import datetime
import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import zstandard
from sqlite_utils import Database

from vcr.migrations import MIGRATION_SET, migrations

SQLITE_MAGIC = b"SQLite format 3\x00"
COMPRESSION_LEVEL = 3
BUSY_TIMEOUT_MS = 10_000

T = TypeVar("T")
Headers = list[tuple[str, str]]


class StoreError(Exception):
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
    id: int | None = None

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
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.execute("PRAGMA journal_mode = DELETE")
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
        return self._decompressor.decompress(data)

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
        request_blob = self._compress(recording.request_body)
        response_blob = self._compress(recording.response_body)
        recording.stored_size = len(request_blob) + len(response_blob)
        with self.db.atomic():
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
                    created_at, duration_ms, ttfb_ms, request_size, response_size, stored_size
                ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
                    json.dumps(recording.request_headers),
                    request_blob,
                    json.dumps(recording.response_headers),
                    response_blob,
                    json.dumps([[size, round(ms, 1)] for size, ms in recording.chunks]),
                    recording.created_at,
                    recording.duration_ms,
                    recording.ttfb_ms,
                    len(recording.request_body),
                    len(recording.response_body),
                    recording.stored_size,
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
            request_headers=[tuple(h) for h in json.loads(row["request_headers"])],
            request_body=self._decompress(row["request_body"]),
            response_headers=[tuple(h) for h in json.loads(row["response_headers"])],
            response_body=self._decompress(row["response_body"]),
            chunks=[(size, ms) for size, ms in json.loads(row["chunks"])],
            created_at=row["created_at"],
            duration_ms=row["duration_ms"],
            ttfb_ms=row["ttfb_ms"],
            stored_size=row["stored_size"],
        )

    def count(self, cassette: str | None = None) -> int:
        """How many recordings, in one cassette or in all."""
        if cassette is None:
            return self._conn.execute("SELECT count(*) FROM recordings").fetchone()[0]
        return self._conn.execute(
            "SELECT count(*) FROM recordings r JOIN cassettes c ON c.id = r.cassette_id WHERE c.name = ?",
            [cassette],
        ).fetchone()[0]


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

    async def lookup(self, cassette: str, key: str, ordinal: int = 0) -> Recording | None:
        return await self._run(self.store.lookup, cassette, key, ordinal)

    async def save(self, recording: Recording) -> Recording:
        return await self._run(self.store.save, recording)

    async def close(self) -> None:
        await self._run(self.store.close)
        self._executor.shutdown(wait=True)
