"""What keeps each commit of a vcr.db small for git (tests/benchmarks/bench_git.py): the indexes after
`m011_lean_indexes` (each query that needs one still gets one: stats by model and date, the replay fast path;
a db made before the step migrates and keeps replaying), and a re-recording that takes its key's row id back."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from claude_vcr.catalog import Catalog
from claude_vcr.store import Store

from tests.support.cassettes import recording, save_all
from tests.support.client import MESSAGES, body, post, reset
from tests.support.loopback import unreachable_url

LEAN = {"recordings_catalog", "recordings_by_raw_prefix"}
BEFORE_M010 = {
    "recordings_by_model": "CREATE INDEX recordings_by_model ON recordings (cassette_id, model)",
    "recordings_model": "CREATE INDEX recordings_model ON recordings (model)",
    "recordings_created_at": "CREATE INDEX recordings_created_at ON recordings (created_at)",
    "recordings_by_target": "CREATE INDEX recordings_by_target ON recordings (cassette_id, method, path)",
    "recordings_by_raw_hash": "CREATE INDEX recordings_by_raw_hash ON recordings (cassette_id, raw_hash)",
}
"""The indexes m001-m004 made and m011 drops, as those steps created them."""


def indexes(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'recordings'")
        return {name for (name,) in rows if not name.startswith("sqlite_")}
    finally:
        conn.close()


def make_pre_m011(db: Path) -> None:
    """Turn a current db into one as claude-vcr wrote it before m011: its five older indexes, not the prefix one."""
    conn = sqlite3.connect(db)
    conn.execute("DROP INDEX recordings_by_raw_prefix")
    for sql in BEFORE_M010.values():
        conn.execute(sql)
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm011_lean_indexes'")
    conn.commit()
    conn.close()


def plans(db: Path, ask) -> list[tuple[str, str]]:  # noqa: ANN001
    """(statement, its query plan) of each statement a catalog runs while answering `ask(catalog)`."""
    conn = sqlite3.connect(db)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    ask(Catalog(conn, db))
    conn.set_trace_callback(None)
    found = []
    for statement in statements:
        plan = " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}"))
        found.append((statement, plan))
    conn.close()
    return found


def test_a_db_made_before_m011_migrates_and_replays_through_the_fast_path(proxy, upstream, db_path):
    recorder = proxy(mode="record")
    answers = {}
    for text in ("first question", "second question"):
        answers[text] = post(recorder.url + MESSAGES, body(text))[2]
        reset(recorder.url)
    recorder.stop()
    make_pre_m011(db_path)
    assert indexes(db_path) == {"recordings_catalog", *BEFORE_M010}
    with Catalog.open(db_path) as catalog:  # read-only: migrated in a private copy, the file untouched
        assert catalog.count() == 2
    assert "recordings_by_raw_hash" in indexes(db_path)

    replayer = proxy(mode="replay", upstream=unreachable_url())
    for text, answer in answers.items():
        status, headers, replayed = post(replayer.url + MESSAGES, body(text))
        assert (status, headers["x-vcr-outcome"], replayed) == (200, "hit", answer)
    replayer.stop()
    assert len(upstream.script.message_calls()) == 2
    assert indexes(db_path) == LEAN

    conn = sqlite3.connect(db_path)
    cassette, key, stored_hash = conn.execute(
        "SELECT c.name, r.key, r.raw_hash FROM recordings r JOIN cassettes c ON c.id = r.cassette_id LIMIT 1"
    ).fetchone()
    conn.close()
    [(statement, plan)] = plans(db_path, lambda catalog: catalog.key_for_raw(cassette, stored_hash))
    assert "USING INDEX recordings_by_raw_prefix (cassette_id=? AND <expr>=?)" in plan, plan
    with Catalog.open(db_path) as catalog:
        assert catalog.key_for_raw(cassette, stored_hash) == (key, False)
        assert catalog.key_for_raw(cassette, stored_hash[:8] + "0" * 56) is None  # same prefix, other bytes


def test_stats_by_model_and_date_read_indexes_only(tmp_path):
    db = tmp_path / "vcr.db"
    save_all(
        db,
        [
            recording(i, model=model, created_at=f"2026-0{1 + i}-01T00:00:00.000Z")
            for i, model in enumerate(["claude-haiku-4-5", "claude-opus-5-5", "claude-opus-5-5"])
        ]
        + [recording(9, "other")],
    )
    asked = plans(db, lambda catalog: (catalog.stats(), catalog.stats("bulk"), catalog.cassettes()))
    touching = [(statement, plan) for statement, plan in asked if re.search(r"FROM recordings\b", statement)]
    assert len(touching) >= 4  # the date range of each cassette; model counts come from recording_totals
    for statement, plan in asked:
        assert not re.search(r"SCAN (recordings|r)\b", plan), (statement, plan)
    with Catalog.open(db) as catalog:
        [stats] = catalog.stats("bulk")
    assert stats.by_model == {"claude-opus-5-5": 2, "claude-haiku-4-5": 1}
    assert (stats.oldest, stats.newest) == ("2026-01-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z")


def ids(db: Path) -> dict[str, int]:
    """Row id of each recording, by the question it asked."""
    conn = sqlite3.connect(db)
    try:
        found = {}
        for row_id, excerpt in conn.execute("SELECT id, prompt_excerpt FROM recordings"):
            found[excerpt] = row_id
        return found
    finally:
        conn.close()


def test_a_record_run_re_recording_a_key_gives_its_recording_the_same_row_id(proxy, upstream, db_path):
    first = proxy(mode="record")
    for text in ("alpha question", "beta question", "gamma question"):
        post(first.url + MESSAGES, body(text))
        reset(first.url)
    first.stop()
    before = ids(db_path)
    second = proxy(mode="record")  # a new run: forgets each key it sends, then stores the new answer
    newer = post(second.url + MESSAGES, body("beta question"))[2]
    second.stop()
    assert ids(db_path) == before  # the new recording sits where the old one was
    replayer = proxy(mode="replay", upstream=unreachable_url())
    status, headers, replayed = post(replayer.url + MESSAGES, body("beta question"))
    assert (status, headers["x-vcr-outcome"], replayed) == (200, "hit", newer)
    replayer.stop()
    assert len(upstream.script.message_calls()) == 4


def test_a_save_replacing_a_key_keeps_its_id_and_a_taken_id_is_never_reused(tmp_path):
    db = tmp_path / "vcr.db"
    with Store(db) as store, Store(db) as other:
        kept = store.save(recording(1)).id
        gone = store.save(recording(2)).id
        store.save(recording(4))  # neither is the highest id, which SQLite would hand out again anyway
        assert store.save(recording(1, size=900)).id == kept
        assert store.forget_key("bulk", recording(2).key) == 1
        conn = other.conn
        conn.execute(  # another process's recording takes the freed id meanwhile
            "UPDATE recordings SET id = ? WHERE id = ?", [gone, other.save(recording(3)).id]
        )
        again = store.save(recording(2))
        assert again.id not in (kept, gone)
    with Catalog.open(db) as catalog:
        assert sorted(r.prompt_excerpt for r in catalog.recordings("bulk")) == [
            f"bulk question {i}" for i in (1, 2, 3, 4)
        ]
        [stats] = catalog.stats("bulk")
    assert stats.recordings == 4
