"""What a claude-vcr db file is: its SQLite settings, the schema steps this version knows, and the checks
made before a file is opened. Stdlib only, so the read-only commands check a file without sqlite-utils.

`claude_vcr.migrations` holds the steps themselves and refuses to import unless its steps are exactly
`SCHEMA_STEPS`, in this order.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import zstandard

from .compression import InflateLimit
from .errors import DatabaseError
from .untrusted import StoredValueError

SQLITE_MAGIC = b"SQLite format 3\x00"
PAGE_SIZE = 512
"""Small pages hold a recording's few-KB compressed bodies with little slack (4 KB pages left a third of a
committed session's file empty; 512 B pages made a 30-turn session 1.5% smaller than 1 KB ones, and each
commit's git delta smaller too: tests/benchmarks/bench_git.py); `compact` converts older files."""
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
    "m009_body_dictionary",
    "m010_unstored_answers",
    "m011_lean_indexes",
    "m012_replaced_answers",
)
"""The names of this version's schema steps, in the order they apply; a db with exactly these is current."""


RAW_PREFIX = "substr(raw_hash, 1, 8)"
"""What the replay fast path's index holds of each request's raw hash, as m011 made it: a query uses the
index by repeating this expression exactly, then compares the full hash in the row."""

OWN_TABLES = frozenset(
    {
        "_sqlite_migrations",
        "cassettes",
        "recordings",
        "chunks",
        "recording_totals",
        "unstored_answers",
        "replaced_answers",
    }
)
OWN_INDEXES = frozenset(
    {
        "idx__sqlite_migrations_migration_set_name",
        "recordings_catalog",
        "recordings_by_raw_prefix",
        # made by m001-m004 and dropped by m002/m011: a db not yet migrated still has them
        "recordings_by_raw_hash",
        "recordings_by_model",
        "recordings_by_date",
        "recordings_model",
        "recordings_created_at",
        "recordings_by_target",
    }
)
OWN_TRIGGERS = {
    "recording_totals_insert": "d5ecf0f7fa4ddb43334c8b225815265b",
    "recording_totals_delete": "83b186eef04b71802af8201553b825bd",
    "recording_totals_update": "855788c82c627621518b1b0dfb8d9a49",
}
"""The triggers m006 creates, by the sha256 (first 128 bits) of their whitespace-normalised SQL: a trigger
runs on our own writes, so one of the same name with other SQL is as foreign as an unknown one."""


def trigger_digest(sql: str) -> str:
    """The digest `OWN_TRIGGERS` holds for a trigger's SQL (whitespace runs count as one space)."""
    return hashlib.sha256(" ".join(sql.split()).encode()).hexdigest()[:32]


def foreign_objects(schema: list[tuple[str, str, str | None]]) -> list[str]:
    """What in a db's `sqlite_master` rows (type, name, sql) no schema step of ours made, as `type name`:
    a view runs when read (a recursive one never ends), a trigger when we write (it could copy a body we
    are redacting into a table of its own), an unknown table or index holds what our commands never see."""
    foreign: list[str] = []
    for kind, name, sql in schema:
        if name.startswith("sqlite_"):
            continue  # SQLite's own (autoindexes, sqlite_sequence, sqlite_stat*): no code, no user data
        if kind == "table" and name in OWN_TABLES:
            continue
        if kind == "index" and name in OWN_INDEXES:
            continue
        if kind == "trigger" and OWN_TRIGGERS.get(name) == trigger_digest(sql or ""):
            continue
        foreign.append(f"{kind} {name}")
    return foreign


def applied_steps(conn: sqlite3.Connection) -> set[str]:
    """The schema steps recorded in the db (none for a db without a migrations table)."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "_sqlite_migrations" not in tables:
        return set()
    rows = conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = ?", [MIGRATION_SET])
    return {row[0] for row in rows}


def readonly_connection(path: Path) -> sqlite3.Connection:
    """A connection that cannot write to the file, whatever is in it; the schema is not trusted to call
    functions with side effects (defence in depth: `check_file` already refuses views and foreign triggers)."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    conn.execute("PRAGMA trusted_schema = OFF")
    return conn


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
    recover(path)
    try:
        conn = readonly_connection(path)
        try:
            conn.execute("PRAGMA schema_version").fetchone()
            schema = conn.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
            tables = {name for kind, name, _ in schema if kind == "table"}
            applied = applied_steps(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        raise DatabaseError(f"{path} is damaged or not a SQLite database ({one_line(error)}); left untouched") from error
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
    foreign = foreign_objects(schema)
    if foreign:
        names = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise DatabaseError(
            f"{path} holds schema objects claude-vcr did not make ({names}); a trigger or view in a db from "
            "elsewhere would run on our reads and writes, so the file was refused and left untouched. "
            "If you trust it, remove them with the sqlite3 shell (DROP TRIGGER/VIEW/TABLE name)"
        )
    return applied


# --- who has the file open: an advisory lock beside SQLite's own --------------------------------------

try:
    import fcntl
except ImportError:  # Windows: no flock; maintenance then relies on SQLite's locks alone
    fcntl = None  # type: ignore[assignment]

LOCK_POLL_SECONDS = 0.05


class FileLock:
    """A `flock` on the db file itself, held as long as a connection is open: every `Store` and `Catalog`
    holds a shared one, and a command that replaces the file (`compact`, the merge driver) needs an
    exclusive one, so it can tell that someone is using the file. flock locks are separate from the POSIX
    byte-range locks SQLite takes, so neither disturbs the other, and no side file is made."""

    def __init__(self, path: Path, handle: Any) -> None:
        self.path = path
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the descriptor drops the lock
            self._handle = None


def shared_lock(path: Path, timeout: float = BUSY_TIMEOUT_MS / 1000) -> FileLock | None:
    """A shared lock on an existing db file (None for a file not yet made), waiting up to `timeout` for a
    `compact` to finish; if the file was replaced while we waited, the lock is taken on the new file."""
    if fcntl is None:
        return None
    deadline = time.monotonic() + timeout
    while True:
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            return None
        except OSError:
            return None  # unreadable: SQLite says why when it opens the file
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    handle.close()
                    raise DatabaseError(
                        f"{path} is being rewritten by another claude-vcr command (compact or merge-driver); "
                        "try again when it has finished"
                    ) from None
                time.sleep(LOCK_POLL_SECONDS)
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return FileLock(path, handle)
        handle.close()  # compact put a new file in place while we waited: lock that one


def exclusive_lock(path: Path, command: str) -> FileLock | None:
    """The lock a command that replaces the file must hold; refused at once (never waited for) while any
    other claude-vcr process has the file open."""
    if fcntl is None or not path.exists():
        return None
    handle = path.open("rb")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise DatabaseError(
            f"{path} is open in another claude-vcr process (a serve, import or other command); "
            f"stop it before `{command}`, which replaces the file"
        ) from None
    return FileLock(path, handle)


def recover(path: Path) -> None:
    """Finish what a killed process left: a hot rollback journal is rolled back, a WAL is folded in, by a
    read-write open (a read-only one cannot, and would refuse the file). Needs a writable file and folder."""
    journal = path.with_name(path.name + "-journal")
    wal = path.with_name(path.name + "-wal")
    if not (_non_empty(journal) or _non_empty(wal)):
        return
    if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)):
        if _non_empty(journal):
            raise DatabaseError(
                f"{path} has an unfinished transaction left by a process that was killed ({journal.name}), "
                "and it or its folder is read-only, so it cannot be rolled back: make both writable and run "
                "the command again; left untouched"
            )
        return  # a WAL with a read-only file: the read-only open reads what is committed
    try:
        conn = sqlite3.connect(str(path), isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA schema_version").fetchone()  # a hot journal is rolled back here
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        raise DatabaseError(f"{path} is damaged or not a SQLite database ({one_line(error)}); left untouched") from error


def _non_empty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


DAMAGE = (
    sqlite3.Error,
    zstandard.ZstdError,
    UnicodeDecodeError,
    json.JSONDecodeError,
    InflateLimit,
    StoredValueError,
)
"""What reading or writing a db can raise from below claude-vcr: SQLite's own errors, a stored body zstd cannot
read, bytes that are not UTF-8, JSON that does not parse, a blob past its inflation limit, a stored value
no claude-vcr writes (`untrusted`). The library's edge turns each into a DatabaseError."""

C = TypeVar("C", bound=type)


def db_errors(cls: C) -> C:
    """Class decorator for the library's edge (`Catalog`, `Store`): every public method raises `DatabaseError`
    (one line, naming the file) instead of a raw sqlite3, zstandard or json error, as httpx wraps its transport's."""
    for name, member in list(vars(cls).items()):
        if not name.startswith("_") and inspect.isfunction(member):
            setattr(cls, name, _translating(member))
    return cls


def _translating(func: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.isgeneratorfunction(func):

        @functools.wraps(func)
        def generator(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                yield from func(self, *args, **kwargs)
            except DAMAGE as error:
                raise describe_error(getattr(self, "path", None), error) from error

        return generator

    @functools.wraps(func)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(self, *args, **kwargs)
        except DAMAGE as error:
            raise describe_error(getattr(self, "path", None), error) from error

    return call


@contextlib.contextmanager
def read_errors(path: Path | None) -> Iterator[None]:
    """The edge's translation (`db_errors`) for reading done outside the catalog's own methods: a large
    stored body decompressed a piece at a time as `show` or `lint` reads it."""
    try:
        yield
    except DAMAGE as error:
        raise describe_error(path, error) from error


def describe_error(path: Path | None, error: Exception) -> DatabaseError:
    """SQLite's own error, or undecodable bytes read from the db (text that is not UTF-8, JSON that does not
    parse, a body zstd cannot read), met while a command ran, as a one-line message that says what to do."""
    text = one_line(error)
    if path is None:
        path = Path("the database")
    if isinstance(error, zstandard.ZstdError):
        return DatabaseError(
            f"{path}: a stored body is damaged (zstd: {text}); restore the db from git or a backup, "
            "or delete the recording"
        )
    if isinstance(error, ValueError) or "malformed" in text or "not a database" in text or "corrupt" in text:
        return DatabaseError(
            f"{path} is damaged ({text}); the command stopped and changed nothing. Restore the file from git "
            f"or a backup, or save what is readable with `sqlite3 {path.name} .recover`"
        )
    if "readonly" in text or "read-only" in text:
        return DatabaseError(f"{path} (or its folder) is read-only ({text}); nothing was changed")
    if "full" in text:
        return DatabaseError(f"no space left for {path} ({text}); the transaction was rolled back, nothing changed")
    if "locked" in text or "busy" in text:
        return DatabaseError(
            f"{path} stayed locked by another process for over {BUSY_TIMEOUT_MS // 1000} s ({text}); "
            "nothing was changed, try again"
        )
    return DatabaseError(f"{path}: SQLite error ({text}); nothing was changed")


def one_line(error: BaseException) -> str:
    """An error's text on one line: SQLite quotes bytes of a damaged file, newlines included."""
    return " ".join(str(error).split())
