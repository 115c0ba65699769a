"""What a claude-vcr db file is: its SQLite settings, the schema steps this version knows, and the checks
made before a file is opened. Stdlib only, so the read-only commands check a file without sqlite-utils.

`claude_vcr.migrations` holds the steps themselves and refuses to import unless its steps are exactly
`SCHEMA_STEPS`, in this order.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .errors import DatabaseError

SQLITE_MAGIC = b"SQLite format 3\x00"
PAGE_SIZE = 1024
"""Small pages hold a recording's few-KB compressed bodies with little slack (4 KB pages left a third of a
committed session's file empty); `compact` converts older files."""
BUSY_TIMEOUT_MS = 10_000
MIGRATION_SET = "claude-vcr"
SCHEMA_STEPS = (
    "m001_cassettes_and_recordings",
    "m002_recording_meta_and_catalog_index",
    "m003_match_summaries",
    "m004_raw_request_hash",
    "m005_request_chunks",
    "m006_recording_totals",
    "m007_timings_and_fingerprints",
    "m008_prompt_excerpt",
)
"""The names of this version's schema steps, in the order they apply; a db with exactly these is current."""


def applied_steps(conn: sqlite3.Connection) -> set[str]:
    """The schema steps recorded in the db (none for a db without a migrations table)."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "_sqlite_migrations" not in tables:
        return set()
    rows = conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = ?", [MIGRATION_SET])
    return {row[0] for row in rows}


def readonly_connection(path: Path) -> sqlite3.Connection:
    """A connection that cannot write to the file, whatever is in it."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)


def check_file(path: Path) -> set[str] | None:
    """Refuse what claude-vcr must not open before sqlite3 gets a chance to write to it: a directory, a file
    that is not SQLite, a damaged, foreign or newer db. Returns the db's schema steps, or None for a file not
    yet made (missing or empty)."""
    if path.is_dir():
        raise DatabaseError(f"{path} is a directory, not a claude-vcr database file")
    if not path.exists() or path.stat().st_size == 0:
        return None
    with path.open("rb") as handle:
        magic = handle.read(len(SQLITE_MAGIC))
    if magic != SQLITE_MAGIC:
        raise DatabaseError(f"{path} is not a SQLite database; claude-vcr left it untouched")
    try:
        conn = readonly_connection(path)
        try:
            conn.execute("PRAGMA schema_version").fetchone()
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            applied = applied_steps(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        raise DatabaseError(f"{path} is damaged or not a SQLite database ({error}); left untouched") from error
    unknown = sorted(applied - set(SCHEMA_STEPS))
    if unknown:
        raise DatabaseError(
            f"{path} was written by a newer claude-vcr (schema steps {', '.join(unknown)} are unknown to "
            f"this version); upgrade claude-vcr to use it. The file was not changed."
        )
    user_tables = {t for t in tables if not t.startswith(("sqlite_", "_sqlite_"))}
    if user_tables and not applied:
        raise DatabaseError(
            f"{path} is a SQLite database of another program (tables: {', '.join(sorted(user_tables))}); "
            "claude-vcr left it untouched"
        )
    return applied
