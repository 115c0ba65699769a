"""The write side of the db: one SQLite file of zstd-compressed recordings, migrated when opened.

The proxy saves and replays through `StoreThread`; import, delete, clear and rekey change the db through
`Store`. Rows are encoded and decoded in `records`; merging and compacting files is `maintenance`.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from .catalog import Catalog, DamagedRecording, live_chunk_ids
from .compression import (
    CHUNK_LEVEL,
    CHUNKED_CODEC,
    CHUNKING_MIN_BYTES,
    WHOLE_CODEC,
    PackedChunks,
    chunk_id,
    compressor,
    decompressor,
    encode_json,
    fetch_chunks,
    pack_ids,
    split_chunks,
)
from .errors import ClaudeVCRError, DatabaseError, NoDatabase, NotFound
from .excerpts import Excerpt
from .records import (
    REPLACED_COLUMNS,
    UNSTORED_COLUMNS,
    Recording,
    StoredRules,
    UnstoredAnswer,
    encode,
    utc_now,
)
from .schema import (
    BUSY_TIMEOUT_MS,
    PAGE_SIZE,
    SCHEMA_STEPS,
    check_file,
    db_errors,
    describe_error,
    exclusive_lock,
    shared_lock,
)

__all__ = ["DamagedRecording", "Store", "StoreThread", "importing"]

T = TypeVar("T")

UNSTORED_PER_CASSETTE = 500
"""The most notes of unstored answers a cassette keeps, the newest: an overload storm while recording, or a
db from elsewhere, leaves a few tens of KB at most (a note is about 100 bytes)."""


@db_errors
class RulesChanged(Exception):
    """A cassette's stored rules changed (a `rekey`) after the run keyed the recording being saved."""

    def __init__(self, stored: StoredRules) -> None:
        super().__init__("the cassette's rules changed")
        self.stored = stored


class Store:
    """All SQL that changes the db lives here (and in `maintenance`); callers deal in `Recording`s and
    cassette names."""

    def __init__(
        self, path: str | Path, *, serving: bool = False, shared: bool = True, create: bool = True
    ) -> None:
        """`shared=False` is for a caller that holds the file's exclusive lock itself (`compact`);
        `create=False` refuses a missing file (strict replay creates no db)."""
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise NoDatabase(
                f"no database at {self.path}: strict replay answers only from recordings, and creates no db. "
                "Check --db (VCR_DB), or record first with --mode record or auto"
            )
        writable_check(self.path)
        self._lock = shared_lock(self.path) if shared else None
        try:
            applied = check_file(self.path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")  # takes effect on a new file only
            self.serving = serving
            self._conn.execute("PRAGMA foreign_keys = ON")
            if serving:
                retrying(lambda: self._conn.execute("PRAGMA journal_mode = WAL"))
                self._conn.execute("PRAGMA synchronous = NORMAL")
            if applied != set(SCHEMA_STEPS):
                with self.writing():  # under the write lock: two processes opening a new db migrate it once
                    migrate(self._conn)
            if shared and self._lock is None:  # the file was just made: lock it now that it exists
                self._lock = shared_lock(self.path)
        except BaseException as error:
            if getattr(self, "_conn", None) is not None:
                self._conn.close()
            if self._lock is not None:
                self._lock.release()
            if isinstance(error, sqlite3.Error):
                raise describe_error(self.path, error) from error
            raise
        self._columns = frozenset(row[1] for row in self._conn.execute("PRAGMA table_info(recordings)"))
        self._rules: dict[str, StoredRules] = {}
        """Rules this store gave each cassette: stored again if another process deletes the cassette."""
        self._freed: dict[tuple[int, str, int], int] = {}
        """Row ids of recordings a re-recording deleted, by (cassette id, key, ordinal): the new recording of the
        same key takes its old id back, so it lands where the old one was in the table and in every index (in
        a committed db the rest of the file keeps its bytes, and the commit costs git less)."""
        self._compressor = compressor()
        self._chunk_compressor = compressor(CHUNK_LEVEL)
        self._decompressor = decompressor()
        self.catalog = Catalog(self._conn, self.path)
        """The read side over this store's connection: every query that only reads goes through it."""

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
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    @property
    def conn(self) -> sqlite3.Connection:
        """The store's connection, for read-side queries (`Catalog(store.conn)`) and `maintenance`."""
        return self._conn

    def writing(self) -> _Writing:
        """One write transaction, taken with BEGIN IMMEDIATE: the write lock is asked for first, so SQLite's
        busy timeout applies while another process writes (a read that later upgrades to a write is refused
        at once instead). Nested inside another one, it is a savepoint."""
        return _Writing(self._conn, self.path)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _cassette_id(self, name: str, *, create: bool) -> int | None:
        """Looked up each time, never cached: another process may delete and recreate a cassette at any
        time, and a save then brings it back (with the rules this store gave it) instead of failing."""
        found = self.catalog.cassette_id(name)
        if found is not None or not create:
            return found
        stored = self._rules.get(name)
        cursor = self._conn.execute(
            "INSERT INTO cassettes (name, key_scheme, rules_json, created_at) VALUES (?, ?, ?, ?)",
            [name, stored.key_scheme if stored else "", stored.rules_json if stored else None, utc_now()],
        )
        return cursor.lastrowid

    def save(
        self,
        recording: Recording,
        *,
        keep_since: str | None = None,
        rules_json: str | None = None,
        append: bool = False,
        excerpt: Excerpt | None = None,
        chunks: PackedChunks | None = None,
    ) -> Recording:
        """Store a complete exchange in one transaction; a newer one of the same key and ordinal wins.
        `keep_since` (a record run's start): a recording of the same key and ordinal made since then by
        another run is kept, and this one takes the key's next ordinal. `rules_json` (the rules the key was
        made with): when the cassette's stored rules are others now (a `rekey` ran), `RulesChanged`.
        `append`: after the key's last ordinal, replacing nothing. `excerpt`: the request's prompt excerpt,
        and `chunks` its chunks cut and compressed, when already worked out (off this thread, for a large
        body)."""
        with self.writing():
            cassette_id = self._cassette_id(recording.cassette, create=True)
            if rules_json is not None:
                current = self._conn.execute(
                    "SELECT rules_json, key_scheme FROM cassettes WHERE id = ?", [cassette_id]
                ).fetchone()
                if current[0] and current[0] != rules_json:
                    raise RulesChanged(StoredRules(current[0], current[1]))
            if append:
                last = self._conn.execute(
                    "SELECT max(ordinal) FROM recordings WHERE cassette_id = ? AND key = ?",
                    [cassette_id, recording.key],
                ).fetchone()[0]
                recording.ordinal = 0 if last is None else last + 1
            elif keep_since is not None:
                taken = self._conn.execute(
                    "SELECT created_at >= ?, (SELECT max(ordinal) FROM recordings WHERE cassette_id = ? AND key = ?)"
                    " FROM recordings WHERE cassette_id = ? AND key = ? AND ordinal = ?",
                    [keep_since, cassette_id, recording.key, cassette_id, recording.key, recording.ordinal],
                ).fetchone()
                if taken is not None and taken[0]:
                    recording.ordinal = taken[1] + 1  # another run's, made while this one ran: both kept
            columns = encode(recording, self._compressor, self._columns, excerpt)
            codec, packed, new_chunk_bytes = self._store_request(recording.request_body, chunks)
            recording.stored_size = len(packed) + new_chunk_bytes + len(columns["response_body"])
            columns.update(request_codec=codec, request_body=packed, stored_size=recording.stored_size)
            columns["cassette_id"] = cassette_id
            self._conn.execute(
                "UPDATE cassettes SET key_scheme = ? WHERE id = ?", [recording.key_scheme, cassette_id]
            )
            place = (cassette_id, recording.key, recording.ordinal)
            self._forget("cassette_id = ? AND key = ? AND ordinal = ?", [*place], cassette_id, recording.key)
            freed = self._freed.pop(place, None)
            if freed is not None and self._conn.execute("SELECT 1 FROM recordings WHERE id = ?", [freed]).fetchone():
                freed = None  # another process's recording has it now
            if freed is not None:
                columns["id"] = freed
            names = ", ".join(f'"{name}"' for name in columns)
            marks = ", ".join("?" for _ in columns)
            cursor = self._conn.execute(
                f"INSERT INTO recordings ({names}) VALUES ({marks})", list(columns.values())
            )
            self._conn.execute(  # the key has an answer now: a note of one not stored is stale
                "DELETE FROM unstored_answers WHERE cassette = ? AND key = ?", [recording.cassette, recording.key]
            )
        recording.id = cursor.lastrowid
        return recording

    def _forget(self, where: str, params: list[Any], cassette_id: int, key: str) -> int:
        """Delete a key's recordings (`where` picks them), remembering their ids for the new ones."""
        gone = self._conn.execute(f"SELECT id, ordinal FROM recordings WHERE {where}", params).fetchall()
        if gone:  # kept for git's deltas until `compact` (m012), within a share of the recordings' bytes
            self._conn.execute(
                f"INSERT INTO replaced_answers ({REPLACED_COLUMNS})"
                f" SELECT {REPLACED_COLUMNS} FROM recordings WHERE {where}",
                params,
            )
        self._conn.execute(f"DELETE FROM recordings WHERE {where}", params)
        if gone:
            self._trim_replaced()
        if len(self._freed) > FREED_IDS_KEPT:
            self._freed.clear()  # keys forgotten and never recorded again: a bound, not a loss
        for row_id, ordinal in gone:
            self._freed[(cassette_id, key, ordinal)] = row_id
        return len(gone)

    def _trim_replaced(self) -> None:
        """The oldest replaced answers go once they hold more than REPLACED_SHARE of the recordings' stored
        bytes (and REPLACED_FLOOR): re-recording a suite again and again (a record mode that rewrites everything, while a test is
        being written) grows the file by at most that much, not by a copy per run."""
        (kept,) = self._conn.execute("SELECT coalesce(sum(length(response_body)), 0) FROM replaced_answers").fetchone()
        (live,) = self._conn.execute("SELECT coalesce(sum(stored_size), 0) FROM recording_totals").fetchone()
        over = kept - max(live * REPLACED_SHARE, REPLACED_FLOOR)
        if over <= 0:
            return
        doomed = []
        for row_id, size in self._conn.execute("SELECT id, length(response_body) FROM replaced_answers ORDER BY id"):
            if over <= 0:
                break
            doomed.append((row_id,))
            over -= size or 0
        self._conn.executemany("DELETE FROM replaced_answers WHERE id = ?", doomed)

    def _store_request(self, body: bytes, packed: PackedChunks | None = None) -> tuple[str, bytes, int]:
        """(codec, stored form, bytes of new chunks): large bodies become chunk ids, each chunk stored once.
        `packed`: the body's chunks already cut and compressed (`compression.pack_chunks`)."""
        if len(body) < CHUNKING_MIN_BYTES:
            return WHOLE_CODEC, self._compressor.compress(body), 0
        if packed is None:
            chunks = split_chunks(body)
            ids = [chunk_id(chunk) for chunk in chunks]
        else:
            chunks = [body[start:end] for start, end in zip([0, *packed.ends], packed.ends, strict=False)]
            ids = packed.ids
        stored = fetch_chunks(self._conn, ids)
        added = 0
        for number, (identifier, chunk) in enumerate(zip(ids, chunks, strict=True)):
            if identifier in stored:
                if self._decompressor.decompress(stored[identifier]) != chunk:  # a 64-bit id collision
                    return WHOLE_CODEC, self._compressor.compress(body), 0
                continue
            data = self._chunk_compressor.compress(chunk) if packed is None else packed.data[number]
            self._conn.execute("INSERT INTO chunks (id, data) VALUES (?, ?)", [identifier, data])
            stored[identifier] = data
            added += len(data)
        return CHUNKED_CODEC, pack_ids(ids), added

    def forget_key(self, cassette: str, key: str, before: str | None = None) -> int:
        """Drop the recordings of a key: a record run starts that request's sequence afresh. `before` (the
        run's start) drops only those made before it, never those a concurrent run has just made."""
        cassette_id = self._cassette_id(cassette, create=False)
        if cassette_id is None:
            return 0
        with self.writing():
            if before is None:
                return self._forget("cassette_id = ? AND key = ?", [cassette_id, key], cassette_id, key)
            return self._forget(
                "cassette_id = ? AND key = ? AND NOT coalesce(created_at >= ?, 0)",
                [cassette_id, key, before],
                cassette_id,
                key,
            )

    def note_unstored(self, note: UnstoredAnswer) -> bool:
        """Keep a note of an answer a record run passed through unstored (replacing an older note of the key),
        unless a recording of the key is as new (an import or merge bringing an old note); the cassette keeps
        its newest `UNSTORED_PER_CASSETTE`. Returns whether it was kept."""
        with self.writing():
            if self.catalog.recorded_since(note.cassette, note.key, note.noted_at):
                return False
            self._conn.execute(
                f"INSERT INTO unstored_answers ({UNSTORED_COLUMNS}) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (cassette, key) DO UPDATE SET status = excluded.status, "
                "error_type = excluded.error_type, noted_at = excluded.noted_at "
                "WHERE excluded.noted_at >= unstored_answers.noted_at",
                note.row(),
            )
            self.trim_unstored(note.cassette)
        return True

    def trim_unstored(self, cassette: str) -> int:
        """Drop a cassette's notes past the newest `UNSTORED_PER_CASSETTE`; returns how many went."""
        with self.writing():
            return self._conn.execute(
                "DELETE FROM unstored_answers WHERE cassette = ? AND key NOT IN (SELECT key FROM unstored_answers "
                "WHERE cassette = ? ORDER BY noted_at DESC, key DESC LIMIT ?)",
                [cassette, cassette, UNSTORED_PER_CASSETTE],
            ).rowcount

    def forget_unstored(self, cassette: str, keys: list[str] | None = None) -> int:
        """Drop notes of unstored answers: these keys' (None: the cassette's every one); returns how many."""
        with self.writing():
            if keys is None:
                return self._conn.execute("DELETE FROM unstored_answers WHERE cassette = ?", [cassette]).rowcount
            return sum(
                self._conn.execute(
                    "DELETE FROM unstored_answers WHERE cassette = ? AND key = ?", [cassette, key]
                ).rowcount
                for key in keys
            )

    def set_cassette_rules(self, cassette: str, stored: StoredRules) -> None:
        """Remember the rules a cassette's keys were computed with (creating the cassette if needed)."""
        with self.writing():
            cassette_id = self._cassette_id(cassette, create=True)
            self._conn.execute(
                "UPDATE cassettes SET rules_json = ?, key_scheme = ? WHERE id = ?",
                [stored.rules_json, stored.key_scheme, cassette_id],
            )
        self._rules[cassette] = stored

    def rekey(
        self,
        cassette: str,
        stored: StoredRules,
        keys: list[tuple[int, str, int, dict[str, str] | None]],
        notes: list[UnstoredAnswer] | None = None,
    ) -> None:
        """Give recordings new (key, ordinal, fingerprints) in one transaction, and the cassette its new rules;
        `notes` (None: left as they are): the cassette's notes of unstored answers under their new keys."""
        with self.writing():
            if notes is not None:
                self.forget_unstored(cassette)
                self._conn.executemany(
                    f"INSERT INTO unstored_answers ({UNSTORED_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                    [note.row() for note in notes],
                )
            cassette_id = self._cassette_id(cassette, create=True)
            self._move_replaced(cassette_id, keys)
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

    def _move_replaced(self, cassette_id: int, keys: list[tuple[int, str, int, Any]]) -> None:
        """The replaced answers a rekey's recordings keep follow them to their new (key, ordinal): first
        parked under a name no key has (so two places trading keys do not mix), then put in place."""
        places = {
            rid: (key, ordinal)
            for rid, key, ordinal in self._conn.execute(
                "SELECT id, key, ordinal FROM recordings WHERE cassette_id = ?", [cassette_id]
            )
        }
        moves = [(rid, key, ordinal) for rid, key, ordinal, _ in keys if places.get(rid, (key, ordinal)) != (key, ordinal)]
        self._conn.executemany(
            "UPDATE replaced_answers SET key = ?, ordinal = -1 WHERE cassette_id = ? AND key = ? AND ordinal = ?",
            [(f"moving {rid}", cassette_id, *places[rid]) for rid, _, _ in moves],
        )
        self._conn.executemany(
            "UPDATE replaced_answers SET key = ?, ordinal = ? WHERE cassette_id = ? AND key = ?",
            [(key, ordinal, cassette_id, f"moving {rid}") for rid, key, ordinal in moves],
        )

    def count(self, cassette: str | None = None) -> int:
        """How many recordings (the read side's answer; kept for `StoreThread.run(Store.count, ...)`)."""
        return self.catalog.count(cassette)

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
        self._conn.execute(
            "INSERT INTO cassettes (name, key_scheme, rules_json, created_at) VALUES (?, ?, ?, ?)",
            [name, key_scheme, rules_json, created_at or utc_now()],
        )
        return True

    def delete_recordings(self, ids: list[int]) -> int:
        """Delete recordings by id (as `Catalog.resolve` found them); returns how many went. Their request
        chunks no other recording uses go too, and the freed bytes are zeroed: a deleted secret leaves no
        copy in the file."""
        self.secure_delete()
        with self.writing():
            self._conn.executemany(  # the answers they replaced go with them
                "DELETE FROM replaced_answers WHERE (cassette_id, key, ordinal) IN "
                "(SELECT cassette_id, key, ordinal FROM recordings WHERE id = ?)",
                [(i,) for i in ids],
            )
            deleted = sum(self._conn.execute("DELETE FROM recordings WHERE id = ?", [i]).rowcount for i in ids)
            self._drop_unused_chunks()
        return deleted

    def rewrite(self, recording: Recording) -> None:
        """Store new contents for an existing recording (same id, cassette, key and ordinal): `redact`."""
        assert recording.id is not None, "rewrite changes a recording read from the db"
        columns = encode(recording, self._compressor, self._columns)
        for placed in ("key", "ordinal"):
            columns.pop(placed)
        with self.writing():
            codec, packed, new_chunk_bytes = self._store_request(recording.request_body)
            recording.stored_size = len(packed) + new_chunk_bytes + len(columns["response_body"])
            columns.update(request_codec=codec, request_body=packed, stored_size=recording.stored_size)
            assignments = ", ".join(f'"{name}" = ?' for name in columns)
            self._conn.execute(
                f"UPDATE recordings SET {assignments} WHERE id = ?", [*columns.values(), recording.id]
            )

    def drop_unused_chunks(self) -> int:
        """Delete request chunks no recording refers to any more (after `rewrite`, `delete`, `clear`);
        returns how many."""
        with self.writing():
            return self._drop_unused_chunks()

    def _drop_unused_chunks(self) -> int:
        live = live_chunk_ids(self._conn)
        unused = [row[0] for row in self._conn.execute("SELECT id FROM chunks") if row[0] not in live]
        self._conn.executemany("DELETE FROM chunks WHERE id = ?", [(identifier,) for identifier in unused])
        return len(unused)

    def drop_replaced(self, ids: list[int] | None = None) -> int:
        """Delete kept replaced answers (`replaced_answers`) by id, or all of them; returns how many went."""
        with self.writing():
            if ids is None:
                return self._conn.execute("DELETE FROM replaced_answers").rowcount
            return sum(self._conn.execute("DELETE FROM replaced_answers WHERE id = ?", [i]).rowcount for i in ids)

    def secure_delete(self) -> None:
        """From now on SQLite overwrites deleted content with zeros: a redacted secret leaves no trace."""
        self._conn.execute("PRAGMA secure_delete = ON")

    def clear_cassette(self, name: str) -> int:
        """Delete a cassette with all its recordings (its rules and notes of unstored answers go too); returns
        how many recordings went.
        As `delete_recordings`: unused request chunks go and freed bytes are zeroed."""
        self.secure_delete()
        with self.writing():
            cassette_id = self._cassette_id(name, create=False)
            notes = self.forget_unstored(name)
            if cassette_id is None:
                if notes:
                    return 0  # a run that met only errors made notes, and no cassette row
                raise NotFound(f"no cassette named {name!r}")
            self._conn.execute("DELETE FROM replaced_answers WHERE cassette_id = ?", [cassette_id])
            deleted = self._conn.execute(
                "DELETE FROM recordings WHERE cassette_id = ?", [cassette_id]
            ).rowcount
            self._conn.execute("DELETE FROM cassettes WHERE id = ?", [cassette_id])
            if deleted:
                self._drop_unused_chunks()
        self._rules.pop(name, None)
        return deleted


@contextmanager
def importing(path: str | Path) -> Iterator[Store]:
    """The store an import writes into. The import is one transaction, so a failure leaves a db that existed as
    it was; a db this import created is removed again ("as it was" is no file at all), unless another process
    has opened it meanwhile."""
    path = Path(path)
    created = not path.exists()
    try:
        with Store(path) as store:
            yield store
    except BaseException:
        if created:
            _remove_unless_open(path)
        raise


def _remove_unless_open(path: Path) -> None:
    try:
        lock = exclusive_lock(path, "import")
    except ClaudeVCRError:
        return  # another process has it open: it is theirs now
    path.unlink(missing_ok=True)
    if lock is not None:
        lock.release()


def migrate(conn: sqlite3.Connection) -> None:
    """Apply the schema steps a db lacks. sqlite-utils (a tenth of a second to import) loads only here: an
    up-to-date db, the common case, never needs it."""
    from sqlite_utils import Database

    from .migrations import migrations

    migrations.apply(Database(conn))


class StoreThread:
    """Runs every call of one `Store` on a single thread: the event loop never waits on the disk,
    and SQLite never sees two writers."""

    def __init__(self, store: Store, executor: ThreadPoolExecutor) -> None:
        self.store = store
        self._executor = executor
        self.saved = 0
        self.failed = 0
        """Saves that failed (each logged as it happened): `serve` reports them when it stops."""

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
        """Call `func(store, *args)` on the store thread: for library code that changes the store."""
        return await self._run(func, self.store, *args)

    async def read(self, func: Callable[..., T], *args: Any) -> T:
        """Call `func(catalog, *args)` on the store thread: for library code that only reads (miss diagnosis,
        conversation matching), typed on the read side."""
        return await self._run(func, self.store.catalog, *args)

    async def recordings_of(self, cassette: str, key: str) -> list[Recording]:
        return await self._run(self.store.catalog.recordings_of, cassette, key)

    async def key_for_raw(self, cassette: str, raw: str) -> tuple[str, bool] | None:
        return await self._run(self.store.catalog.key_for_raw, cassette, raw)

    async def forget_key(self, cassette: str, key: str, before: str | None = None) -> int:
        return await self._run(self.store.forget_key, cassette, key, before)

    async def cassette_rules(self, cassette: str) -> StoredRules | None:
        return await self._run(self.store.catalog.cassette_rules, cassette)

    async def set_cassette_rules(self, cassette: str, stored: StoredRules) -> None:
        try:
            await self._run(self.store.set_cassette_rules, cassette, stored)
        except Exception:
            self.failed += 1  # made just before a recording's save, which then does not happen
            raise

    async def note_unstored(self, note: UnstoredAnswer) -> bool:
        return await self._run(self.store.note_unstored, note)

    async def save(self, recording: Recording, **how: Any) -> Recording:
        """`Store.save` on the store thread (`how`: its keyword arguments), counted."""
        try:
            saved = await self._run(functools.partial(self.store.save, **how), recording)
        except Exception:
            self.failed += 1
            raise
        self.saved += 1
        return saved

    async def close(self) -> None:
        await self._run(self.store.close)
        self._executor.shutdown(wait=True)


class _Transaction:
    """`Store.transaction()`: one immediate SQLite transaction around many writes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._atomic: Any = None

    def __enter__(self) -> Store:
        self._atomic = self.store.writing()
        self._atomic.__enter__()
        return self.store

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        return self._atomic.__exit__(exc_type, exc, tb)


REPLACED_SHARE = 0.5
"""The most the replaced answers kept for git (m012) may hold, as a share of the recordings' stored bytes..."""
REPLACED_FLOOR = 1024 * 1024
"""...or this many bytes, if more: a small db keeps every one."""
FREED_IDS_KEPT = 100_000
"""How many forgotten row ids a store remembers for the recordings that replace them (a few MB at most)."""

WRITE_ATTEMPTS = 3
"""BEGIN IMMEDIATE waits up to the busy timeout for the write lock; after that it is tried this many times in
all before the write fails (and is reported: a save that fails is never silent)."""


def _locked(error: sqlite3.OperationalError) -> bool:
    return "locked" in str(error) or "busy" in str(error)


def retrying(step: Callable[[], T], attempts: int = WRITE_ATTEMPTS) -> T:
    """Run a statement that needs the write lock, again while SQLite says the db is locked (bounded)."""
    for attempt in range(attempts):
        try:
            return step()
        except sqlite3.OperationalError as error:
            if not _locked(error) or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


class _Writing:
    """`Store.writing()`: BEGIN IMMEDIATE ... COMMIT, or a savepoint inside an open transaction."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn = conn
        self._path = path
        self._savepoint: str | None = None

    def __enter__(self) -> None:
        try:
            if self._conn.in_transaction:
                self._savepoint = f"vcr_{id(self):x}"
                self._conn.execute(f"SAVEPOINT {self._savepoint}")
            else:
                retrying(lambda: self._conn.execute("BEGIN IMMEDIATE"))
        except sqlite3.Error as error:
            raise describe_error(self._path, error) from error

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self._end(exc_type)
        except sqlite3.Error as error:
            raise describe_error(self._path, error) from error

    def _end(self, exc_type: Any) -> None:
        if self._savepoint is not None:
            if exc_type is None:
                self._conn.execute(f"RELEASE {self._savepoint}")
            elif self._conn.in_transaction:  # an error may already have ended the whole transaction
                self._conn.execute(f"ROLLBACK TO {self._savepoint}")
                self._conn.execute(f"RELEASE {self._savepoint}")
            return
        if exc_type is None:
            try:
                retrying(lambda: self._conn.execute("COMMIT"))
                return
            except BaseException:
                self._rollback()
                raise
        self._rollback()

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # SQLite rolled back itself (disk full, I/O error): nothing left to undo


def writable_check(path: Path) -> None:
    """A command that writes refuses an unwritable file or folder in one line, before SQLite tries."""
    if path.exists():
        if not os.access(path, os.W_OK):
            raise DatabaseError(f"{path} is read-only; make it writable to change it (nothing was changed)")
        folder = path.parent
    else:
        folder = next((parent for parent in path.parents if parent.exists()), Path("."))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DatabaseError(
            f"{folder} is read-only: SQLite needs to write its journal beside {path.name} (nothing was changed)"
        )
