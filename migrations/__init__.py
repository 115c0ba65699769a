"""Schema steps for vcr.db, applied in order when a db is opened (installed as `claude_vcr.migrations`).

A released step is never edited: a change to the schema is a new step appended below, and its name
appended to `claude_vcr.schema.SCHEMA_STEPS` (this module refuses to import until the two agree).
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

from ..schema import MIGRATION_SET, SCHEMA_STEPS

migrations = Migrations(MIGRATION_SET)


@migrations()
def m001_cassettes_and_recordings(db: Database) -> None:
    db.execute(
        """
        CREATE TABLE cassettes (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            key_scheme TEXT NOT NULL,
            rules_json TEXT,
            created_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE recordings (
            id INTEGER PRIMARY KEY,
            cassette_id INTEGER NOT NULL REFERENCES cassettes(id) ON DELETE CASCADE,
            key TEXT NOT NULL,
            ordinal INTEGER NOT NULL DEFAULT 0,
            key_scheme TEXT NOT NULL,
            method TEXT NOT NULL,
            path TEXT NOT NULL,
            model TEXT,
            stream INTEGER NOT NULL DEFAULT 0,
            status INTEGER NOT NULL,
            request_headers TEXT NOT NULL,
            request_body BLOB,
            response_headers TEXT NOT NULL,
            response_body BLOB,
            chunks TEXT NOT NULL,
            created_at TEXT NOT NULL,
            duration_ms REAL,
            ttfb_ms REAL,
            request_size INTEGER NOT NULL,
            response_size INTEGER NOT NULL,
            stored_size INTEGER NOT NULL,
            UNIQUE (cassette_id, key, ordinal)
        )
        """
    )
    db.execute("CREATE INDEX recordings_by_model ON recordings (cassette_id, model)")
    db.execute("CREATE INDEX recordings_by_date ON recordings (cassette_id, created_at)")
    db.execute("CREATE INDEX recordings_model ON recordings (model)")
    db.execute("CREATE INDEX recordings_created_at ON recordings (created_at)")


@migrations()
def m002_recording_meta_and_catalog_index(db: Database) -> None:
    # Where an imported recording came from (seed cache key, dump file, flow id): a JSON object or NULL.
    db.execute("ALTER TABLE recordings ADD COLUMN meta TEXT")
    # `list` and `stats` read only this index, never the rows with their blobs (which overflow to many
    # pages each): 100,000 recordings answer in milliseconds. It starts with (cassette_id, created_at),
    # so the older index on exactly those columns is dropped.
    db.execute(
        """
        CREATE INDEX recordings_catalog ON recordings (
            cassette_id, created_at, key, ordinal, method, path, model, stream, status,
            request_size, response_size, stored_size
        )
        """
    )
    db.execute("DROP INDEX recordings_by_date")


@migrations()
def m003_match_summaries(db: Database) -> None:
    # Short hashes of each request's parts, so a replay miss finds the closest recording without reading bodies.
    db.execute("ALTER TABLE recordings ADD COLUMN summary TEXT")
    db.execute("CREATE INDEX recordings_by_target ON recordings (cassette_id, method, path)")


@migrations()
def m004_raw_request_hash(db: Database) -> None:
    # sha256 of method, path and exact body: a request seen before finds its key without parsing JSON.
    db.execute("ALTER TABLE recordings ADD COLUMN raw_hash TEXT")
    db.execute("CREATE INDEX recordings_by_raw_hash ON recordings (cassette_id, raw_hash)")


@migrations()
def m005_request_chunks(db: Database) -> None:
    # Request bodies as content-defined chunks stored once each (see vcr/compression.py): Claude Code
    # re-sends ~40 KB of tools and system prompt, and the whole history, in every turn.
    # A rowid table: its leaves hold ~1 KB chunks whole, where a WITHOUT ROWID b-tree would spill them.
    db.execute("CREATE TABLE chunks (id BLOB NOT NULL UNIQUE, data BLOB NOT NULL)")
    db.execute("ALTER TABLE recordings ADD COLUMN request_codec TEXT NOT NULL DEFAULT 'zstd'")


_TOTALS_COLUMNS = "recordings, request_size, response_size, stored_size"


@migrations()
def m006_recording_totals(db: Database) -> None:
    # Per (cassette, model, stream) counts and sizes, kept by triggers: `stats` and `cassettes` read a few
    # rows here instead of scanning an index entry per recording (100,000 recordings in a few ms).
    db.execute(
        """
        CREATE TABLE recording_totals (
            cassette_id INTEGER NOT NULL,
            model TEXT NOT NULL,
            stream INTEGER NOT NULL,
            recordings INTEGER NOT NULL,
            request_size INTEGER NOT NULL,
            response_size INTEGER NOT NULL,
            stored_size INTEGER NOT NULL,
            PRIMARY KEY (cassette_id, model, stream)
        ) WITHOUT ROWID
        """
    )
    add = f"""
        INSERT INTO recording_totals (cassette_id, model, stream, {_TOTALS_COLUMNS})
        VALUES (NEW.cassette_id, coalesce(NEW.model, ''), NEW.stream, 1, NEW.request_size, NEW.response_size,
                NEW.stored_size)
        ON CONFLICT (cassette_id, model, stream) DO UPDATE SET
            recordings = recordings + 1,
            request_size = request_size + excluded.request_size,
            response_size = response_size + excluded.response_size,
            stored_size = stored_size + excluded.stored_size;
    """
    remove = """
        UPDATE recording_totals SET
            recordings = recordings - 1,
            request_size = request_size - OLD.request_size,
            response_size = response_size - OLD.response_size,
            stored_size = stored_size - OLD.stored_size
        WHERE cassette_id = OLD.cassette_id AND model = coalesce(OLD.model, '') AND stream = OLD.stream;
        DELETE FROM recording_totals
        WHERE cassette_id = OLD.cassette_id AND model = coalesce(OLD.model, '') AND stream = OLD.stream
          AND recordings = 0;
    """
    db.execute(f"CREATE TRIGGER recording_totals_insert AFTER INSERT ON recordings BEGIN {add} END")
    db.execute(f"CREATE TRIGGER recording_totals_delete AFTER DELETE ON recordings BEGIN {remove} END")
    db.execute(
        "CREATE TRIGGER recording_totals_update AFTER UPDATE OF cassette_id, model, stream, request_size, "
        f"response_size, stored_size ON recordings BEGIN {remove} {add} END"
    )
    db.execute(
        f"""
        INSERT INTO recording_totals (cassette_id, model, stream, {_TOTALS_COLUMNS})
        SELECT cassette_id, coalesce(model, ''), stream, count(*), sum(request_size), sum(response_size),
               sum(stored_size)
        FROM recordings GROUP BY cassette_id, coalesce(model, ''), stream
        """
    )


@migrations()
def m007_timings_and_fingerprints(db: Database) -> None:
    # Names that say one thing each: the arrival timings of a response's pieces ([[size, ms since sent], ...])
    # were `chunks`, the name of the table of request body chunks; the hashes of a request's parts that miss
    # diagnosis compares were `summary`.
    db.execute("ALTER TABLE recordings RENAME COLUMN chunks TO timings")
    db.execute("ALTER TABLE recordings RENAME COLUMN summary TO fingerprints")


@migrations()
def m008_prompt_excerpt(db: Database) -> None:
    # The first words of each request's last user message (`excerpts.prompt_excerpt`), worked out on save, so
    # `list` and the viewer show the prompt while reading only the catalog index, never a request body.
    # The catalog index is rebuilt with the column at its end; existing rows are backfilled here.
    import zstandard

    from ..compression import decode_request
    from ..excerpts import prompt_excerpt

    db.execute("ALTER TABLE recordings ADD COLUMN prompt_excerpt TEXT")
    decompressor = zstandard.ZstdDecompressor()
    rows = db.execute("SELECT id, request_codec, request_body FROM recordings").fetchall()
    for recording_id, codec, blob in rows:
        try:
            text = prompt_excerpt(decode_request(db.conn, codec, blob, decompressor))
        except Exception:  # a damaged body keeps no excerpt; `lint` and `show` report the damage
            text = None
        if text is not None:
            db.execute("UPDATE recordings SET prompt_excerpt = ? WHERE id = ?", [text, recording_id])
    db.execute("DROP INDEX recordings_catalog")
    db.execute(
        """
        CREATE INDEX recordings_catalog ON recordings (
            cassette_id, created_at, key, ordinal, method, path, model, stream, status,
            request_size, response_size, stored_size, prompt_excerpt
        )
        """
    )


@migrations()
def m009_body_dictionary(db: Database) -> None:
    # From here on bodies, request chunks and long metadata are zstd frames compressed against the dictionary
    # shipped in `claude_vcr.zstd_dictionary` (see `compression.compressor`); each frame names it by id, and
    # older frames (no dictionary) stay readable as they are. The step changes no table: its record is what
    # makes an older claude-vcr refuse the db with a clear message instead of failing on its first body.
    del db


@migrations()
def m010_unstored_answers(db: Database) -> None:
    # A note per request whose answer a record run passed through unstored (a 429, a 529, a stream cut by
    # `overloaded_error`): which request (cassette name and key), the status and error type, and when. Never
    # a body or a header. A later strict miss of that key, in another process, says why it has no recording
    # and how to store such answers. Keyed by cassette name, not id: a run that met only errors has no
    # cassette row, and `compact` copies the table as it is, in key order.
    db.execute(
        """
        CREATE TABLE unstored_answers (
            cassette TEXT NOT NULL,
            key TEXT NOT NULL,
            status INTEGER NOT NULL,
            error_type TEXT,
            noted_at TEXT NOT NULL,
            PRIMARY KEY (cassette, key)
        ) WITHOUT ROWID
        """
    )


@migrations()
def m011_lean_indexes(db: Database) -> None:
    # Every index is written on every save, and in a committed vcr.db its entries are part of what each commit
    # costs git (tests/benchmarks/bench_git.py). Four go, which no query needs: stats by model read
    # `recording_totals` (its primary key starts with cassette_id, model), dates read `recordings_catalog`
    # (it starts with cassette_id, created_at), and miss diagnosis reads every row of a cassette's path anyway
    # (the fingerprints are in the row; nearly all of a cassette's recordings share one method and path).
    # The replay fast path's index keeps only the first 8 hex digits of each raw hash (a quarter of the
    # entry); the query (`Catalog.key_for_raw`, `schema.RAW_PREFIX`) compares the full hash in the row.
    for name in ("recordings_by_model", "recordings_model", "recordings_created_at", "recordings_by_target"):
        db.execute(f"DROP INDEX IF EXISTS {name}")
    db.execute("DROP INDEX IF EXISTS recordings_by_raw_hash")
    db.execute("CREATE INDEX recordings_by_raw_prefix ON recordings (cassette_id, substr(raw_hash, 1, 8))")


@migrations()
def m012_replaced_answers(db: Database) -> None:
    # The answers a record run replaced (a key recorded again), kept until `compact`: git stores each committed
    # version of vcr.db as a delta from the next, and an answer gone from the next version is carried whole by
    # every such delta, which made a history of re-recordings cost more than the same files in the seed's
    # layout (tests/benchmarks/bench_git.py). The response body only, as it was stored (the bulk of a row, and
    # what a re-recording changes); no index, since only `delete`, `clear`, `scan`, `redact` and `stats` read
    # it, whole. Never replayed, listed or exported.
    db.execute(
        """
        CREATE TABLE replaced_answers (
            id INTEGER PRIMARY KEY,
            cassette_id INTEGER NOT NULL,
            key TEXT NOT NULL,
            ordinal INTEGER NOT NULL,
            response_body BLOB
        )
        """
    )


def _registered_steps() -> tuple[str, ...]:
    return tuple(step.name for step in migrations._migrations)


if _registered_steps() != SCHEMA_STEPS:
    raise ImportError(
        f"claude_vcr.migrations registers {_registered_steps()} but claude_vcr.schema lists {SCHEMA_STEPS}"
    )
