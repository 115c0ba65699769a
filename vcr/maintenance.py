"""Whole-file work on a db, apart from recording and reading: merging another copy's changes in (git's merge
driver), and compacting into canonical order (`claude-vcr compact`), which renumbers rows and drops request
chunks no recording uses any more.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from .catalog import Catalog, live_chunk_ids
from .compression import CHUNKED_CODEC, unpack_ids
from .errors import DatabaseError
from .records import REPLACED_COLUMNS, UNSTORED_COLUMNS
from .schema import DAMAGE, PAGE_SIZE, describe_error, exclusive_lock
from .store import Store, writable_check


def _content_columns(conn: sqlite3.Connection, table: str, schema: str = "main") -> list[str]:
    """A table's columns but the row ids, which differ between copies of the same content."""
    return [
        row[1] for row in conn.execute(f"PRAGMA {schema}.table_info({table})") if row[1] not in ("id", "cassette_id")
    ]


def merge_from(
    store: Store,
    other: str | Path,
    *,
    take: list[tuple[str, str]],
    drop: list[tuple[str, str]],
    take_cassettes: list[str],
    drop_cassettes: list[str],
    take_notes: Sequence[tuple[str, str]] = (),
    drop_notes: Sequence[tuple[str, str]] = (),
) -> None:
    """Apply another copy's changes in one transaction: each (cassette, key) in `take` is replaced by the
    other's recordings of it (every repeat, bytes copied as stored, never recompressed), each in `drop`
    deleted, cassette rows in `take_cassettes` copied, and cassettes in `drop_cassettes` deleted if empty.
    Notes of unstored answers likewise (`take_notes`, `drop_notes`); then a note older than a recording of
    its key goes, as a save removes it, and each cassette keeps its newest `UNSTORED_PER_CASSETTE`.
    `other` must have this db's schema (open it with `Store` first)."""
    conn = store.conn
    conn.execute("ATTACH DATABASE ? AS merge_other", [str(other)])
    try:
        columns = _content_columns(conn, "recordings")
        names = ", ".join(columns)
        selected = ", ".join(f"r.{column}" for column in columns)
        with store.writing():
            _copy_chunks_of(conn, take)  # first: copied rows point at them
            for name in take_cassettes:
                _copy_cassette(conn, name, store.path)
            for name, key in take:
                cassette_id = Catalog(conn).cassette_id(name)
                if cassette_id is None:
                    cassette_id = _copy_cassette(conn, name, store.path)
                conn.execute(  # ours, replaced by theirs: kept for git's deltas as a record run keeps it
                    f"INSERT INTO main.replaced_answers ({REPLACED_COLUMNS}) SELECT {REPLACED_COLUMNS} "
                    "FROM main.recordings WHERE cassette_id = ? AND key = ?",
                    [cassette_id, key],
                )
                conn.execute("DELETE FROM main.recordings WHERE cassette_id = ? AND key = ?", [cassette_id, key])
                conn.execute(
                    f"""
                    INSERT INTO main.recordings (cassette_id, {names})
                    SELECT ?, {selected} FROM merge_other.recordings r
                    JOIN merge_other.cassettes c ON c.id = r.cassette_id
                    WHERE c.name = ? AND r.key = ? ORDER BY r.ordinal
                    """,
                    [cassette_id, name, key],
                )
            for name, key in drop:
                for table in ("replaced_answers", "recordings"):  # deleted on their side: with what it replaced
                    conn.execute(
                        f"DELETE FROM main.{table} WHERE key = ? AND cassette_id = "
                        "(SELECT id FROM main.cassettes WHERE name = ?)",
                        [key, name],
                    )
            for name in drop_cassettes:
                conn.execute(
                    "DELETE FROM main.cassettes WHERE name = ? AND NOT EXISTS "
                    "(SELECT 1 FROM main.recordings r WHERE r.cassette_id = cassettes.id)",
                    [name],
                )
            conn.execute("DELETE FROM main.replaced_answers WHERE cassette_id NOT IN (SELECT id FROM main.cassettes)")
            _merge_notes(store, take_notes, drop_notes)
    finally:
        conn.execute("DETACH DATABASE merge_other")


def _merge_notes(store: Store, take: Sequence[tuple[str, str]], drop: Sequence[tuple[str, str]]) -> None:
    """The notes part of `merge_from`, inside its transaction."""
    conn = store.conn
    for name, key in take:
        conn.execute(
            f"INSERT OR REPLACE INTO main.unstored_answers ({UNSTORED_COLUMNS}) SELECT {UNSTORED_COLUMNS} "
            "FROM merge_other.unstored_answers WHERE cassette = ? AND key = ?",
            [name, key],
        )
    conn.executemany("DELETE FROM main.unstored_answers WHERE cassette = ? AND key = ?", drop)
    conn.execute(
        "DELETE FROM main.unstored_answers WHERE EXISTS (SELECT 1 FROM main.recordings r "
        "JOIN main.cassettes c ON c.id = r.cassette_id WHERE c.name = unstored_answers.cassette "
        "AND r.key = unstored_answers.key AND r.created_at >= unstored_answers.noted_at)"
    )
    for (name,) in conn.execute("SELECT DISTINCT cassette FROM main.unstored_answers").fetchall():
        store.trim_unstored(name)


def _copy_chunks_of(conn: sqlite3.Connection, take: list[tuple[str, str]]) -> None:
    """The other copy's request chunks that the recordings to take use, and no others (in its order)."""
    needed: set[bytes] = set()
    for name, key in take:
        rows = conn.execute(
            "SELECT r.request_body FROM merge_other.recordings r JOIN merge_other.cassettes c ON c.id = r.cassette_id "
            "WHERE c.name = ? AND r.key = ? AND r.request_codec = ?",
            [name, key, CHUNKED_CODEC],
        )
        for (packed,) in rows:
            needed.update(unpack_ids(packed or b""))
    conn.execute("DROP TABLE IF EXISTS temp.merge_chunks")
    conn.execute("CREATE TEMP TABLE merge_chunks (id BLOB PRIMARY KEY) WITHOUT ROWID")
    conn.executemany("INSERT INTO temp.merge_chunks (id) VALUES (?)", [(i,) for i in sorted(needed)])
    conn.execute(
        "INSERT OR IGNORE INTO main.chunks (id, data) SELECT c.id, c.data FROM merge_other.chunks c "
        "WHERE c.id IN (SELECT id FROM temp.merge_chunks) ORDER BY c.rowid"
    )
    conn.execute("DROP TABLE temp.merge_chunks")


def _copy_cassette(conn: sqlite3.Connection, name: str, path: Path) -> int:
    """The other copy's cassette row (rules, key scheme, date) here, created or updated; returns its id."""
    row = conn.execute(
        "SELECT key_scheme, rules_json, created_at FROM merge_other.cassettes WHERE name = ?", [name]
    ).fetchone()
    if row is None:
        raise DatabaseError(f"merge: cassette {name!r} is missing from {path}'s other side")
    cassette_id = Catalog(conn).cassette_id(name)
    if cassette_id is None:
        cursor = conn.execute(
            "INSERT INTO main.cassettes (name, key_scheme, rules_json, created_at) VALUES (?, ?, ?, ?)",
            [name, *row],
        )
        return cursor.lastrowid  # type: ignore[return-value]
    conn.execute(
        "UPDATE main.cassettes SET key_scheme = ?, rules_json = ?, created_at = ? WHERE id = ?",
        [*row, cassette_id],
    )
    return cassette_id


def compact_into(store: Store, dest: str | Path) -> None:
    """Write the store's db to `dest` without dead pages and in one canonical order.

    Cassettes are renumbered by name and recordings by (cassette, key, ordinal) before `VACUUM INTO`, so
    the same content gives the same bytes whatever order it was recorded, imported or merged in. (Ids are
    kept as they are if a table of another version points at them.) `dest` must not exist.
    """
    dest = Path(dest)
    if dest.exists():
        raise DatabaseError(f"{dest} already exists; compact writes a new file")
    staging = dest.with_name(dest.name + ".staging")
    staging.unlink(missing_ok=True)
    try:
        _stage(store, staging)
        staged = sqlite3.connect(str(staging), isolation_level=None)
        try:
            staged.execute("VACUUM INTO ?", [str(dest)])
        finally:
            staged.close()
        with dest.open("rb+") as handle:  # VACUUM INTO does not sync its output
            os.fsync(handle.fileno())
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    finally:
        staging.unlink(missing_ok=True)


def _stage(store: Store, staging: Path) -> None:
    """The store's rows into a new file at `staging`, renumbered (see `compact_into`)."""
    conn = store.conn
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
        target.execute(f"PRAGMA page_size = {int(PAGE_SIZE)}")
        target.execute(f"PRAGMA user_version = {int(user_version)}")
        for _, _, sql in schema:
            target.execute(sql)
    finally:
        target.close()
    conn.execute("ATTACH DATABASE ? AS compact_target", [str(staging)])
    try:
        with store.writing():
            for table in tables:
                if renumber and table in ours:
                    continue
                if table == "recording_totals":  # rebuilt by its triggers as recordings are copied
                    continue
                if table == "replaced_answers":  # kept for git's deltas until now: compact is where they go
                    continue
                order = "id" if table == "chunks" else "rowid"  # chunks: the same order whatever came first
                try:
                    conn.execute(
                        f'INSERT INTO compact_target."{table}" SELECT * FROM main."{table}" ORDER BY {order}'
                    )
                except sqlite3.OperationalError:  # a WITHOUT ROWID table: already in primary-key order
                    conn.execute(f'INSERT INTO compact_target."{table}" SELECT * FROM main."{table}"')
            if renumber:
                _copy_renumbered(conn)
            _drop_unused_chunks(conn)
    finally:
        conn.execute("DETACH DATABASE compact_target")


def _drop_unused_chunks(conn: sqlite3.Connection) -> None:
    """Request chunks no recording refers to any more (deleted, re-recorded) leave the compacted copy."""
    live = live_chunk_ids(conn, "compact_target")
    conn.execute("DROP TABLE IF EXISTS temp.live_chunks")
    conn.execute("CREATE TEMP TABLE live_chunks (id BLOB PRIMARY KEY) WITHOUT ROWID")
    conn.executemany("INSERT INTO temp.live_chunks (id) VALUES (?)", [(i,) for i in live])
    conn.execute("DELETE FROM compact_target.chunks WHERE id NOT IN (SELECT id FROM temp.live_chunks)")
    conn.execute("DROP TABLE temp.live_chunks")


def _copy_renumbered(conn: sqlite3.Connection) -> None:
    """Cassettes by name and recordings by (cassette, key, ordinal) into compact_target, ids from 1."""
    cassette_columns = [r[1] for r in conn.execute("PRAGMA main.table_info(cassettes)") if r[1] != "id"]
    recording_columns = _content_columns(conn, "recordings")
    conn.execute("DROP TABLE IF EXISTS temp.compact_cassettes")
    conn.execute("DROP TABLE IF EXISTS temp.compact_recordings")
    conn.execute("CREATE TEMP TABLE compact_cassettes (new_id INTEGER PRIMARY KEY, old_id INTEGER NOT NULL)")
    conn.execute(
        "CREATE TEMP TABLE compact_recordings "
        "(new_id INTEGER PRIMARY KEY, old_id INTEGER NOT NULL, cassette_id INTEGER NOT NULL)"
    )
    conn.execute("INSERT INTO temp.compact_cassettes (old_id) SELECT id FROM main.cassettes ORDER BY name")
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


class Compacted(NamedTuple):
    """What `compact` did: the file's size before and after, and the replaced answers it dropped."""

    before: int
    after: int
    replaced: int


def compact(path: str | Path) -> Compacted:
    """Rewrite a db in place without dead pages, in canonical order (see `compact_into`), dropping the
    replaced answers kept for git's history (m012). The file is replaced by a rename, so it is refused while any other claude-vcr process
    has the file open (`schema.exclusive_lock`); a read-only file or folder is refused, the new file keeps
    the old one's permissions, and nothing is left beside it if anything fails."""
    path = Path(path)
    writable_check(path)
    lock = exclusive_lock(path, "claude-vcr compact")
    try:
        before = path.stat().st_size
        fresh = path.with_name(path.name + ".compacting")
        fresh.unlink(missing_ok=True)
        try:
            with Store(path, shared=False) as store:
                replaced = store.catalog.replaced_totals()[0]
                try:
                    compact_into(store, fresh)
                except DAMAGE as error:  # the library's edge: one DatabaseError, naming the file
                    raise describe_error(path, error) from error
            shutil.copymode(path, fresh)
            fresh.replace(path)
            _sync_folder(path.parent)
        finally:
            fresh.unlink(missing_ok=True)
    finally:
        if lock is not None:
            lock.release()
    return Compacted(before, path.stat().st_size, replaced)


def _sync_folder(folder: Path) -> None:
    """Make a rename durable: the folder's entry is synced too."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
