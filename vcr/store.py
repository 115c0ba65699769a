"""The write side of the db: one SQLite file of zstd-compressed recordings, migrated when opened.

The proxy saves and replays through `StoreThread`; import, delete, clear and rekey change the db through
`Store`. Rows are encoded and decoded in `records`; merging and compacting files is `maintenance`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import zstandard
from sqlite_utils import Database

from .compression import (
    CHUNKED_CODEC,
    CHUNKING_MIN_BYTES,
    WHOLE_CODEC,
    chunk_id,
    decode_json,
    encode_json,
    fetch_chunks,
    pack_ids,
    split_chunks,
    unpack_ids,
)
from .errors import NoDatabase, NotFound
from .migrations import migrations
from .records import Recording, StoredRules, decode, encode, request_body, utc_now
from .schema import BUSY_TIMEOUT_MS, PAGE_SIZE, check_file

COMPRESSION_LEVEL = 3

T = TypeVar("T")


class Store:
    """All SQL that changes the db lives here (and in `maintenance`); callers deal in `Recording`s and
    cassette names."""

    def __init__(self, path: str | Path, *, serving: bool = False, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise NoDatabase(
                f"no database at {self.path}: strict replay answers only from recordings, and creates no db. "
                "Check --db (VCR_DB), or record first with --mode record or auto"
            )
        check_file(self.path)
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
        self._columns = frozenset(row[1] for row in self._conn.execute("PRAGMA table_info(recordings)"))
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

    def forget_cassette_ids(self) -> None:
        """Cassette ids cached so far may be stale: rows were rolled back, copied in or renumbered."""
        self._cassette_ids.clear()

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
        columns = encode(recording, self._compressor, self._columns)
        with self.db.atomic():
            codec, packed, new_chunk_bytes = self._store_request(recording.request_body)
            recording.stored_size = len(packed) + new_chunk_bytes + len(columns["response_body"])
            columns.update(request_codec=codec, request_body=packed, stored_size=recording.stored_size)
            cassette_id = self._cassette_id(recording.cassette, create=True)
            columns["cassette_id"] = cassette_id
            self._conn.execute(
                "UPDATE cassettes SET key_scheme = ? WHERE id = ?", [recording.key_scheme, cassette_id]
            )
            self._conn.execute(
                "DELETE FROM recordings WHERE cassette_id = ? AND key = ? AND ordinal = ?",
                [cassette_id, recording.key, recording.ordinal],
            )
            names = ", ".join(f'"{name}"' for name in columns)
            marks = ", ".join("?" for _ in columns)
            cursor = self._conn.execute(
                f"INSERT INTO recordings ({names}) VALUES ({marks})", list(columns.values())
            )
        recording.id = cursor.lastrowid
        return recording

    def _store_request(self, body: bytes) -> tuple[str, bytes, int]:
        """(codec, stored form, bytes of new chunks): large bodies become chunk ids, each chunk stored once."""
        if len(body) < CHUNKING_MIN_BYTES:
            return WHOLE_CODEC, self._compressor.compress(body), 0
        chunks = split_chunks(body)
        ids = [chunk_id(chunk) for chunk in chunks]
        stored = fetch_chunks(self._conn, ids)
        added = 0
        for identifier, chunk in zip(ids, chunks, strict=True):
            if identifier in stored:
                if self._decompressor.decompress(stored[identifier]) != chunk:  # a 64-bit id collision
                    return WHOLE_CODEC, self._compressor.compress(body), 0
                continue
            data = self._compressor.compress(chunk)
            self._conn.execute("INSERT INTO chunks (id, data) VALUES (?, ?)", [identifier, data])
            stored[identifier] = data
            added += len(data)
        return CHUNKED_CODEC, pack_ids(ids), added

    def lookup(self, cassette: str, key: str, ordinal: int = 0) -> Recording | None:
        """The recording stored for this key, or None."""
        found = self._recordings(cassette, "AND key = ? AND ordinal = ?", [key, ordinal])
        return found[0] if found else None

    def recordings_of(self, cassette: str, key: str) -> list[Recording]:
        """Every recording of a key, in ordinal order: the answers to its repeats."""
        return self._recordings(cassette, "AND key = ? ORDER BY ordinal", [key])

    def _recordings(self, cassette: str, where: str, params: list[Any]) -> list[Recording]:
        """Recordings of a cassette as replay wants them: large responses stay compressed."""
        cassette_id = self._cassette_id(cassette, create=False)
        if cassette_id is None:
            return []
        cursor = self._conn.cursor()
        cursor.row_factory = sqlite3.Row
        rows = cursor.execute(
            f"SELECT * FROM recordings WHERE cassette_id = ? {where}", [cassette_id, *params]
        ).fetchall()
        return [
            decode(row, cassette, self._conn, self._decompressor, large_as_frame=True) for row in rows
        ]

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

    def cassette_rules(self, cassette: str) -> StoredRules | None:
        """The rules a cassette was recorded with, or None for a cassette not yet made."""
        row = self._conn.execute(
            "SELECT rules_json, key_scheme FROM cassettes WHERE name = ?", [cassette]
        ).fetchone()
        return None if row is None else StoredRules(*row)

    def set_cassette_rules(self, cassette: str, stored: StoredRules) -> None:
        """Remember the rules a cassette's keys were computed with (creating the cassette if needed)."""
        with self.db.atomic():
            cassette_id = self._cassette_id(cassette, create=True)
            self._conn.execute(
                "UPDATE cassettes SET rules_json = ?, key_scheme = ? WHERE id = ?",
                [stored.rules_json, stored.key_scheme, cassette_id],
            )

    def candidates(self, cassette: str, method: str, path: str) -> list[tuple[int, str, int, dict[str, str]]]:
        """(id, key, ordinal, fingerprints) of the recordings a missed request could have meant: same method
        and path. Reads the small fingerprints column only, never the bodies."""
        cassette_id = self._cassette_id(cassette, create=False)
        if cassette_id is None:
            return []
        rows = self._conn.execute(
            "SELECT id, key, ordinal, fingerprints FROM recordings "
            "WHERE cassette_id = ? AND method = ? AND path = ?",
            [cassette_id, method, path],
        ).fetchall()
        return [(row[0], row[1], row[2], decode_json(row[3], self._decompressor) or {}) for row in rows]

    def request_body(self, recording_id: int) -> bytes:
        """One recording's request bytes, decompressed."""
        row = self._conn.execute(
            "SELECT request_codec, request_body, method, path, raw_hash FROM recordings WHERE id = ?",
            [recording_id],
        ).fetchone()
        return b"" if row is None else self._request_body(*row)

    def _request_body(self, codec: str, packed: bytes, method: str, path: str, raw: str | None) -> bytes:
        return request_body(self._conn, self._decompressor, codec, packed, (method, path), raw)

    def requests(self, cassette: str) -> list[tuple[int, str, str, int, str, bytes]]:
        """(id, method, path, ordinal, created_at, request body) of every recording, oldest first."""
        cassette_id = self._cassette_id(cassette, create=False)
        if cassette_id is None:
            return []
        rows = self._conn.execute(
            "SELECT id, method, path, ordinal, created_at, request_codec, request_body, raw_hash "
            "FROM recordings WHERE cassette_id = ? ORDER BY created_at, id",
            [cassette_id],
        ).fetchall()
        return [(r[0], r[1], r[2], r[3], r[4], self._request_body(r[5], r[6], r[1], r[2], r[7])) for r in rows]

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
        stored: StoredRules,
        keys: list[tuple[int, str, int, dict[str, str] | None]],
    ) -> None:
        """Give recordings new (key, ordinal, fingerprints) in one transaction, and the cassette its new rules."""
        with self.db.atomic():
            cassette_id = self._cassette_id(cassette, create=True)
            # park every ordinal out of the way first, so the unique (cassette, key, ordinal) never trips midway
            self._conn.execute("UPDATE recordings SET ordinal = -id WHERE cassette_id = ?", [cassette_id])
            self._conn.executemany(
                "UPDATE recordings SET key = ?, ordinal = ?, fingerprints = ?, key_scheme = ? WHERE id = ?",
                [
                    (
                        key,
                        ordinal,
                        None if fingerprints is None else encode_json(fingerprints, self._compressor),
                        stored.key_scheme,
                        rid,
                    )
                    for rid, key, ordinal, fingerprints in keys
                ],
            )
            self._conn.execute(
                "UPDATE cassettes SET rules_json = ?, key_scheme = ? WHERE id = ?",
                [stored.rules_json, stored.key_scheme, cassette_id],
            )

    def count(self, cassette: str | None = None) -> int:
        """How many recordings, in one cassette or in all."""
        if cassette is None:
            return self._conn.execute("SELECT count(*) FROM recordings").fetchone()[0]
        return self._conn.execute(
            "SELECT count(*) FROM recordings r JOIN cassettes c ON c.id = r.cassette_id WHERE c.name = ?",
            [cassette],
        ).fetchone()[0]

    # --- management and import: `claude-vcr delete/clear/import` ------------------------------------------

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

    def delete_recordings(self, ids: list[int]) -> int:
        """Delete recordings by id (as `Catalog.resolve` found them); returns how many went."""
        with self.db.atomic():
            return sum(self._conn.execute("DELETE FROM recordings WHERE id = ?", [i]).rowcount for i in ids)

    def rewrite(self, recording: Recording) -> None:
        """Store new contents for an existing recording (same id, cassette, key and ordinal): `redact`."""
        assert recording.id is not None, "rewrite changes a recording read from the db"
        columns = encode(recording, self._compressor, self._columns)
        for placed in ("key", "ordinal"):
            columns.pop(placed)
        with self.db.atomic():
            codec, packed, new_chunk_bytes = self._store_request(recording.request_body)
            recording.stored_size = len(packed) + new_chunk_bytes + len(columns["response_body"])
            columns.update(request_codec=codec, request_body=packed, stored_size=recording.stored_size)
            assignments = ", ".join(f'"{name}" = ?' for name in columns)
            self._conn.execute(
                f"UPDATE recordings SET {assignments} WHERE id = ?", [*columns.values(), recording.id]
            )

    def drop_unused_chunks(self) -> int:
        """Delete request chunks no recording refers to any more (after `rewrite`); returns how many."""
        live: set[bytes] = set()
        rows = self._conn.execute("SELECT request_body FROM recordings WHERE request_codec = ?", [CHUNKED_CODEC])
        for (packed,) in rows:
            live.update(unpack_ids(packed or b""))
        unused = [row[0] for row in self._conn.execute("SELECT id FROM chunks") if row[0] not in live]
        with self.db.atomic():
            self._conn.executemany("DELETE FROM chunks WHERE id = ?", [(identifier,) for identifier in unused])
        return len(unused)

    def secure_delete(self) -> None:
        """From now on SQLite overwrites deleted content with zeros: a redacted secret leaves no trace."""
        self._conn.execute("PRAGMA secure_delete = ON")

    def clear_cassette(self, name: str) -> int:
        """Delete a cassette with all its recordings (its rules go too); returns how many recordings went."""
        cassette_id = self._cassette_id(name, create=False)
        if cassette_id is None:
            raise NotFound(f"no cassette named {name!r}")
        with self.db.atomic():
            deleted = self._conn.execute(
                "DELETE FROM recordings WHERE cassette_id = ?", [cassette_id]
            ).rowcount
            self._conn.execute("DELETE FROM cassettes WHERE id = ?", [cassette_id])
        self._cassette_ids.pop(name, None)
        return deleted


class StoreThread:
    """Runs every call of one `Store` on a single thread: the event loop never waits on the disk,
    and SQLite never sees two writers."""

    def __init__(self, store: Store, executor: ThreadPoolExecutor) -> None:
        self.store = store
        self._executor = executor

    @classmethod
    async def open(cls, path: str | Path, *, create: bool = True) -> StoreThread:
        """Open (and migrate) the db on the thread that will use it from now on; `create=False` refuses
        a missing file (and makes no folder)."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vcr-store")
        try:
            store = await asyncio.get_running_loop().run_in_executor(
                executor, lambda: Store(path, serving=True, create=create)
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

    async def cassette_rules(self, cassette: str) -> StoredRules | None:
        return await self._run(self.store.cassette_rules, cassette)

    async def set_cassette_rules(self, cassette: str, stored: StoredRules) -> None:
        await self._run(self.store.set_cassette_rules, cassette, stored)

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
            self.store.forget_cassette_ids()
        return self._atomic.__exit__(exc_type, exc, tb)
