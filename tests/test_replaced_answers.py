"""A record run that records a key again keeps the answer it replaced until `compact` (schema step m012), so
the next committed version of vcr.db still holds its bytes for git's delta (tests/benchmarks/bench_git.py).
Nothing reads it as a recording, and every path that removes a recording or a secret removes it too."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import zstandard
from claude_vcr import eventstream
from claude_vcr import store as store_module
from claude_vcr.compression import decompressor
from claude_vcr.interchange.gitdb import merge
from claude_vcr.store import REPLACED_SHARE, Store

from tests.support import hostile
from tests.support.cassettes import recording, save_all
from tests.support.client import TEST_API_KEY, call, params
from tests.support.loopback import unreachable_url


def kept(db: Path) -> list[tuple[str, str, int, bytes]]:
    """(cassette, key, ordinal, stored frame) of every replaced answer the file keeps."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT c.name, a.key, a.ordinal, a.response_body FROM replaced_answers a "
            "JOIN cassettes c ON c.id = a.cassette_id ORDER BY a.id"
        ).fetchall()
    finally:
        conn.close()


def record_twice(proxy, db_path: Path, text: str = "Hi there") -> tuple[bytes, bytes]:
    """The same request recorded by two record runs: the scripted upstream answers each differently."""
    answers = []
    for _ in range(2):
        recorder = proxy(mode="record")
        answers.append(call(recorder.url + "/c/basic", **params(text)))
        recorder.stop()
    assert answers[0] != answers[1]
    return answers[0], answers[1]


def test_a_re_recording_keeps_what_it_replaced_until_compact_and_replay_serves_the_new_one(proxy, db_path):
    first, second = record_twice(proxy, db_path)
    [(cassette, _, ordinal, frame)] = kept(db_path)
    assert (cassette, ordinal) == ("basic", 0) and decompressor().decompress(frame) == first
    replayer = proxy(mode="replay", upstream=unreachable_url())
    assert call(replayer.url + "/c/basic", **params("Hi there")) == second
    replayer.stop()
    assert len(hostile.run("dump", db_path).stdout.strip().splitlines()) == 1  # one recording, for git diff too
    stats = hostile.run("stats", "--db", db_path)
    assert "Replaced answers kept for git's history: 1 (" in stats.stdout, stats.stdout
    assert json.loads(hostile.run("stats", "--json", "--db", db_path).stdout)["replaced_answers"]["count"] == 1
    assert frame in db_path.read_bytes()
    done = hostile.run("compact", "--db", db_path)
    assert done.returncode == 0 and "(1 replaced answers kept for git's history dropped)" in done.stdout
    assert kept(db_path) == [] and frame not in db_path.read_bytes()
    replayer = proxy(mode="replay", upstream=unreachable_url())
    assert call(replayer.url + "/c/basic", **params("Hi there")) == second


def test_each_replacement_is_kept_and_a_new_key_replaces_nothing(db_path):
    save_all(db_path, [recording(1, cassette="c", size=10), recording(2, cassette="c")])
    save_all(db_path, [recording(1, cassette="c", size=20)])
    save_all(db_path, [recording(1, cassette="c", size=30), recording(3, cassette="c")])
    sizes = [len(decompressor().decompress(frame)) for *_, frame in kept(db_path)]
    assert len(sizes) == 2 and sizes[0] < sizes[1]  # the first two answers of key 1, oldest first


def test_a_db_made_before_m012_migrates_and_keeps_what_its_next_re_recording_replaces(db_path):
    save_all(db_path, [recording(1, cassette="c", size=10)])
    conn = sqlite3.connect(db_path)  # as claude-vcr wrote it before m012: no table, no step
    conn.execute("DROP TABLE replaced_answers")
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm012_replaced_answers'")
    conn.commit()
    conn.close()
    assert hostile.run("stats", "--db", db_path).returncode == 0  # read-only: migrated in a private copy
    save_all(db_path, [recording(1, cassette="c", size=20)])
    [(_, key, _, frame)] = kept(db_path)
    assert key == recording(1).key
    assert decompressor().decompress(frame) == recording(1, cassette="c", size=10).response_body
    scan = hostile.run("scan", "--db", db_path)  # the schema check takes the table as the tool's own
    assert scan.returncode == 0 and "No credential-shaped strings found." in scan.stdout, scan.stdout + scan.stderr


def test_recording_a_suite_again_and_again_grows_the_file_by_half_at_most(db_path, monkeypatch):
    """A record mode that rewrites everything, run while a test is written: the kept answers stay within
    REPLACED_SHARE of the recordings' stored bytes (past REPLACED_FLOOR, here lowered), the newest kept."""
    monkeypatch.setattr(store_module, "REPLACED_FLOOR", 0)
    for run in range(12):
        save_all(db_path, [recording(i, cassette="c", size=400 + run) for i in range(10)])
    conn = sqlite3.connect(db_path)
    (kept_bytes,) = conn.execute("SELECT sum(length(response_body)) FROM replaced_answers").fetchone()
    (live_bytes,) = conn.execute("SELECT sum(stored_size) FROM recordings").fetchone()
    conn.close()
    assert 0 < kept_bytes <= REPLACED_SHARE * live_bytes
    newest = max(len(decompressor().decompress(frame)) for *_, frame in kept(db_path))
    assert newest == len(recording(0, cassette="c", size=400 + 10).response_body)  # the run before the last


@pytest.mark.parametrize("how", ["delete", "clear"])
def test_delete_and_clear_take_the_replaced_answers_with_the_recording(proxy, db_path, how):
    record_twice(proxy, db_path)
    [(_, key, _, frame)] = kept(db_path)
    assert frame in db_path.read_bytes()
    args = ["delete", key[:12], "--db", db_path] if how == "delete" else ["clear", "basic", "--yes", "--db", db_path]
    result = hostile.run(*args)
    assert result.returncode == 0, result.stderr
    assert kept(db_path) == [] and frame not in db_path.read_bytes()  # nor in a freed page


LEAKED_JSON = json.dumps({"type": "message", "content": [{"type": "text", "text": f"key {TEST_API_KEY}"}]})
LEAKED_BEDROCK = eventstream.from_events(
    [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"key {TEST_API_KEY}"}}]
)  # base64 payloads in binary frames: found only once read as the events they carry


@pytest.mark.parametrize("leaked", [LEAKED_JSON.encode(), LEAKED_BEDROCK], ids=["json", "bedrock"])
def test_scan_finds_a_secret_in_a_replaced_answer_and_redact_drops_it(db_path, leaked):
    save_all(db_path, [recording(1, cassette="c", size=10)])
    save_all(db_path, [recording(1, cassette="c", size=20)])
    frame = zstandard.ZstdCompressor().compress(leaked)  # as a db from elsewhere may hold it
    hostile.execute(db_path, "UPDATE replaced_answers SET response_body = ?", params=(frame,))
    scan = hostile.run("scan", "--db", db_path)
    assert "replaced answer" in scan.stdout and "anthropic-key" in scan.stdout, scan.stdout
    redact = hostile.run("redact", "--yes", "--db", db_path)
    assert redact.returncode == 0 and "Dropped 1 replaced answer(s)" in redact.stdout, redact.stdout
    assert kept(db_path) == [] and frame not in db_path.read_bytes()
    assert "No credential-shaped strings found." in hostile.run("scan", "--db", db_path).stdout


def test_a_bomb_in_a_replaced_answer_is_refused_in_one_line(db_path):
    save_all(db_path, [recording(1, cassette="c", size=10)])
    save_all(db_path, [recording(1, cassette="c", size=20)])
    hostile.execute(
        db_path,
        "UPDATE replaced_answers SET response_body = ?",
        params=(hostile.bomb_frame(4 * hostile.GIB, declared=True),),
    )
    result = hostile.run("scan", "--db", db_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "replaced answer" in result.stderr


def test_rekey_moves_replaced_answers_with_their_recordings(proxy, db_path, tmp_path):
    record_twice(proxy, db_path)
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"ignore": ["max_tokens"]}))
    assert hostile.run("rekey", "--rules", rules, "--db", db_path).returncode == 0
    conn = sqlite3.connect(db_path)
    [(new_key,)] = conn.execute("SELECT key FROM recordings").fetchall()
    conn.close()
    [(_, key, ordinal, _)] = kept(db_path)
    assert (key, ordinal) == (new_key, 0)
    assert hostile.run("delete", new_key[:12], "--db", db_path).returncode == 0
    assert kept(db_path) == []


def test_the_merge_driver_drops_what_theirs_deleted_and_keeps_what_theirs_replaced(tmp_path):
    """Base: key 1 recorded twice (one kept answer), key 2. Theirs deletes key 1 and records key 2 again; ours
    changes neither. The merge takes both: key 1 goes with its kept answer, ours' key 2 is kept as replaced.
    Theirs' own kept answers are history of their branch and are not brought over."""
    base, ours, theirs = tmp_path / "base.db", tmp_path / "ours.db", tmp_path / "theirs.db"
    save_all(base, [recording(1, cassette="c", size=10), recording(2, cassette="c", size=10)])
    save_all(base, [recording(1, cassette="c", size=20)])
    for side in (ours, theirs):
        side.write_bytes(base.read_bytes())
    save_all(theirs, [recording(2, cassette="c", size=30)])
    with Store(theirs) as store:
        store.delete_recordings([r.id for r in store.catalog.recordings("c") if r.key == recording(1).key])
    assert [k for _, k, _, _ in kept(ours)] == [recording(1).key]
    merge(base, ours, theirs)
    [(_, key, _, frame)] = kept(ours)
    assert key == recording(2).key
    assert decompressor().decompress(frame) == recording(2, cassette="c", size=10).response_body
