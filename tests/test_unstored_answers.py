"""A record run keeps a note of each answer it passed through unstored (a 429, a 529, a stream cut by
`overloaded_error`): a strict miss of that request in a later process says what it got while recording, when,
and which option stores such answers. The note (key, status, error type, date; never a body or a header)
goes through every maintenance path: a later stored answer, clear, compact, the merge driver, export and
import, scan and redact, dump, rekey, and a cap per cassette."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from claude_vcr.catalog import Catalog
from claude_vcr.records import UnstoredAnswer
from claude_vcr.store import UNSTORED_PER_CASSETTE, Store

from tests.support.cassettes import rows, unstored_notes
from tests.support.cli import cli
from tests.support.client import MESSAGES, body, post
from tests.support.faults import Serve, holding_upstream
from tests.support.loopback import unreachable_url


def miss_message(url: str, text: str, *, stream: bool = False) -> str:
    status, headers, raw = post(url + MESSAGES, body(text, stream=stream))
    assert status == 400 and headers["x-vcr-outcome"] == "miss", raw
    return json.loads(raw)["error"]["message"]


def test_a_strict_miss_in_a_new_serve_process_names_the_529_met_while_recording(upstream, tmp_path):
    db = tmp_path / "vcr.db"
    recorder = Serve(db, upstream.url, cassette="flaky")
    try:
        assert post(recorder.url + MESSAGES, body("STATUS:529 busy"))[0] == 529
        assert post(recorder.url + MESSAGES, body("OVERLOADED", stream=True))[0] == 200
        assert post(recorder.url + MESSAGES, body("fine"))[0] == 200
    finally:
        assert recorder.stop() == 0
    notes = unstored_notes(db)
    assert sorted((cassette, status, kind) for cassette, _, status, kind, _ in notes) == [
        ("flaky", 200, "overloaded_error"),
        ("flaky", 529, "overloaded_error"),
    ]
    day = notes[0][4][:10]
    assert len(rows(db)) == 1  # only the answer that was stored

    replayer = Serve(db, unreachable_url(), mode="replay", cassette="flaky")  # a new process: nothing in memory
    try:
        busy = miss_message(replayer.url, "STATUS:529 busy")
        cut = miss_message(replayer.url, "OVERLOADED", stream=True)
        never = miss_message(replayer.url, "never sent while recording")
        assert post(replayer.url + MESSAGES, body("fine"))[0] == 200
    finally:
        assert replayer.stop() == 0
    assert (
        f"While recording on {day}, this request got a 529 (overloaded_error), which was not stored: "
        "record it again, or pass --record-errors to store such errors." in busy
    )
    assert f"While recording on {day}, this request got a stream that ended in an error event (overloaded_error)" in cut
    assert "While recording" not in never
    miss_lines = [line for line in replayer.log().splitlines() if "got a 529" in line]
    assert len(miss_lines) == 1 and "--record-errors" in miss_lines[0]  # the one line serve prints for the miss


def test_a_later_stored_answer_of_the_key_removes_the_note(proxy, db_path):
    first = proxy(mode="record")
    assert post(first.url + MESSAGES, body("STATUS:429 slow down"))[0] == 429
    first.stop()
    [(_, key, status, kind, _)] = unstored_notes(db_path)
    assert (status, kind) == (429, "rate_limit_error")
    with holding_upstream() as (_, url):  # the API answers it now
        second = proxy(mode="record", upstream=url)
        status, headers, _ = post(second.url + MESSAGES, body("STATUS:429 slow down"))
        second.stop()
    assert status == 200 and headers["x-vcr-key"] == key
    assert unstored_notes(db_path) == [] and [r["key"] for r in rows(db_path)] == [key]
    replay = proxy(mode="replay", upstream=unreachable_url())
    assert post(replay.url + MESSAGES, body("STATUS:429 slow down"))[1]["x-vcr-outcome"].startswith("hit")


def test_record_errors_stores_the_answer_and_notes_nothing(proxy, db_path):
    recorder = proxy(mode="record", record_errors=True)
    assert post(recorder.url + MESSAGES, body("STATUS:529 busy"))[1]["x-vcr-outcome"] == "recorded"
    recorder.stop()
    assert unstored_notes(db_path) == [] and [r["status"] for r in rows(db_path)] == [529]


def record_notes(proxy, cassette: str, *texts: str, mode: str = "record") -> None:
    recorder = proxy(mode=mode, cassette=cassette)
    for text in texts:
        post(recorder.url + MESSAGES, body(text))
    recorder.stop()


def test_clear_removes_a_cassettes_notes_and_compact_keeps_the_others_in_canonical_bytes(proxy, db_path, tmp_path):
    record_notes(proxy, "a", "fine", "STATUS:429 a")
    record_notes(proxy, "b", "fine b", "STATUS:529 b", "STATUS:503 b")
    assert [note[0] for note in unstored_notes(db_path)] == ["a", "b", "b"]
    assert cli("clear", "a", "--yes", "--db", db_path).exit_code == 0
    kept = unstored_notes(db_path)
    assert [note[0] for note in kept] == ["b", "b"]
    assert "Compacted" in cli("compact", "--db", db_path).output
    assert unstored_notes(db_path) == kept
    again = tmp_path / "again.db"
    again.write_bytes(db_path.read_bytes())
    cli("compact", "--db", again)
    cli("compact", "--db", db_path)
    assert again.read_bytes() == db_path.read_bytes()


def test_a_run_that_met_only_errors_leaves_notes_without_a_cassette_and_a_rewrite_clears_them(proxy, db_path):
    record_notes(proxy, "only_errors", "STATUS:529 x")
    assert [note[0] for note in unstored_notes(db_path)] == ["only_errors"]
    with Store(db_path) as store:
        assert store.catalog.cassette_id("only_errors") is None
        assert store.clear_cassette("only_errors") == 0  # what `rewrite` does first
    assert unstored_notes(db_path) == []


def test_the_clear_command_clears_a_cassette_that_holds_only_notes(proxy, db_path):
    record_notes(proxy, "only_errors", "STATUS:529 x")
    asked = cli("clear", "only_errors", "--db", db_path, input="n\n")
    assert "Delete the 1 notes of answers not stored in cassette 'only_errors'?" in asked.output
    assert len(unstored_notes(db_path)) == 1
    done = cli("clear", "only_errors", "--yes", "--db", db_path)
    assert done.exit_code == 0 and "Cleared cassette only_errors: 0 recordings deleted, 1 notes" in done.output
    assert unstored_notes(db_path) == []
    assert "no cassette named 'only_errors'" in cli("clear", "only_errors", "--yes", "--db", db_path).output


def test_dump_shows_each_note_as_a_line(proxy, db_path):
    record_notes(proxy, "c", "fine", "STATUS:529 x")
    [(_, key, _, _, noted_at)] = unstored_notes(db_path)
    lines = cli("dump", "--db", db_path).output.splitlines()
    assert len(lines) == 2 and lines[0].startswith("c ") and " 200 " in lines[0]
    assert lines[1] == f"c {key[:12]} not-stored 529 overloaded_error {noted_at}"


def test_export_and_import_carry_the_notes(proxy, db_path, tmp_path):
    record_notes(proxy, "c", "fine", "STATUS:529 x", "STATUS:429 y")
    notes = unstored_notes(db_path)
    assert cli("export", tmp_path / "out", "--db", db_path).exit_code == 0
    index = json.loads((tmp_path / "out" / "c" / "index.json").read_text())
    assert sorted(note["status"] for note in index["vcr"]["unstored_answers"]) == [429, 529]
    assert "body" not in json.dumps(index["vcr"]["unstored_answers"])
    fresh = tmp_path / "fresh.db"
    assert cli("import", tmp_path / "out", "--db", fresh).exit_code == 0
    assert unstored_notes(fresh) == notes
    index["vcr"]["unstored_answers"].append({"key": "../../etc", "status": 529, "noted_at": notes[0][4]})
    index["vcr"]["unstored_answers"].append({"key": "a" * 64, "status": "\x1b[31m", "noted_at": notes[0][4]})
    (tmp_path / "out" / "c" / "index.json").write_text(json.dumps(index))
    imported = cli("import", tmp_path / "out", "--db", tmp_path / "third.db")
    assert imported.exit_code == 0 and "skipped 2: malformed note of an unstored answer" in imported.output
    assert unstored_notes(tmp_path / "third.db") == notes


def three_sides(tmp_path: Path, base: Path) -> tuple[Path, Path]:
    ours, theirs = tmp_path / "ours.db", tmp_path / "theirs.db"
    ours.write_bytes(base.read_bytes())
    theirs.write_bytes(base.read_bytes())
    return ours, theirs


def test_the_merge_driver_merges_notes_three_way_and_deterministically(proxy, db_path, tmp_path):
    record_notes(proxy, "m", "fine", "STATUS:529 old")
    ours, theirs = three_sides(tmp_path, db_path)
    [(_, old_key, *_)] = unstored_notes(db_path)
    with holding_upstream() as (_, url):  # ours: the request is answered now, its note goes
        recorder = proxy(mode="auto", cassette="m", db=ours, upstream=url)
        post(recorder.url + MESSAGES, body("STATUS:529 old"))
        recorder.stop()
    recorder = proxy(mode="auto", cassette="m", db=theirs)  # theirs: a new request met a 429
    post(recorder.url + MESSAGES, body("STATUS:429 new"))
    recorder.stop()
    their_notes = [note for note in unstored_notes(theirs) if note[1] != old_key]
    again = tmp_path / "again.db"
    again.write_bytes(ours.read_bytes())
    assert cli("merge-driver", db_path, ours, theirs).exit_code == 0
    assert unstored_notes(ours) == their_notes  # theirs' new note taken; ours' removal kept
    cli("merge-driver", db_path, again, theirs)
    assert again.read_bytes() == ours.read_bytes()


def test_a_note_theirs_brings_for_a_key_ours_recorded_later_is_dropped(proxy, db_path, tmp_path):
    base = tmp_path / "base.db"
    Store(base).close()
    ours, theirs = three_sides(tmp_path, base)
    record_notes(proxy, "m", "STATUS:529 q")
    theirs.write_bytes(db_path.read_bytes())
    with holding_upstream() as (_, url):
        recorder = proxy(mode="record", cassette="m", db=ours, upstream=url)
        post(recorder.url + MESSAGES, body("STATUS:529 q"))
        recorder.stop()
    assert cli("merge-driver", base, ours, theirs).exit_code == 0
    assert unstored_notes(ours) == [] and len(rows(ours)) == 1


def test_scan_covers_the_notes_and_redact_drops_one_holding_a_secret(proxy, db_path):
    record_notes(proxy, "s", "fine", "STATUS:529 x")
    assert cli("scan", "--db", db_path).exit_code == 0
    secret = "sk-ant-api03-" + "Q" * 93 + "AA"
    with sqlite3.connect(db_path) as conn:  # a db from elsewhere: nothing of ours writes text there
        conn.execute(
            "INSERT INTO unstored_answers VALUES ('s', ?, 529, ?, '2026-01-01T00:00:00.000Z')", ["b" * 64, secret]
        )
    conn.close()
    scanned = cli("scan", "--db", db_path, "--json")
    assert scanned.exit_code == 1 and secret not in scanned.output
    [finding] = json.loads(scanned.output)
    assert finding["side"] == "unstored-answer note" and finding["kind"].startswith("anthropic")
    redacted = cli("redact", "--yes", "--db", db_path)
    assert "Dropped 1 note(s) of unstored answers holding a credential-shaped string" in redacted.output
    assert cli("scan", "--db", db_path).exit_code == 0 and len(unstored_notes(db_path)) == 1


def test_rekey_moves_a_note_with_its_keys_recordings_and_drops_one_it_cannot_place(proxy, db_path, tmp_path):
    with holding_upstream() as (_, url):
        record_notes(proxy, "r", "STATUS:529 again", mode="record")  # no answer stored: a note alone
        first = proxy(mode="auto", cassette="r", upstream=url)
        post(first.url + MESSAGES, body("STATUS:429 twice"))  # answered, stored as #0
        first.stop()
    second = proxy(mode="auto", cassette="r")
    for _ in range(2):  # the first replays #0, the repeat goes upstream and meets a 429
        post(second.url + MESSAGES, body("STATUS:429 twice"))
    second.stop()
    notes = {note[2]: note for note in unstored_notes(db_path)}
    assert set(notes) == {429, 529}
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"ignore": ["metadata", "max_tokens"]}))
    rekeyed = cli("rekey", "--cassette", "r", "--rules", rules, "--db", db_path)
    assert rekeyed.exit_code == 0, rekeyed.output
    assert "1 note(s) of unstored answers dropped" in rekeyed.output
    [(_, key, status, _, noted_at)] = unstored_notes(db_path)
    assert (status, noted_at) == (429, notes[429][4]) and key == rows(db_path)[0]["key"]


def test_a_rekey_under_the_same_rules_as_redact_runs_leaves_the_notes_alone(proxy, db_path):
    record_notes(proxy, "k", "fine", "STATUS:529 x")
    before = unstored_notes(db_path)
    rekeyed = cli("rekey", "--cassette", "k", "--db", db_path)
    assert rekeyed.exit_code == 0 and "dropped" not in rekeyed.output
    assert unstored_notes(db_path) == before and len(before) == 1


def test_a_cassette_keeps_only_its_newest_notes(tmp_path):
    db = tmp_path / "vcr.db"
    with Store(db) as store:
        for index in range(UNSTORED_PER_CASSETTE + 20):
            store.note_unstored(
                UnstoredAnswer("c", f"{index:064x}", 529, None, f"2026-01-01T00:{index // 60:02d}:{index % 60:02d}.000Z")
            )
        store.note_unstored(UnstoredAnswer("other", "f" * 64, 429, None, "2025-01-01T00:00:00.000Z"))
    notes = unstored_notes(db)
    assert len(notes) == UNSTORED_PER_CASSETTE + 1
    assert min(note[1] for note in notes if note[0] == "c") == f"{20:064x}"  # the 20 oldest went


def test_a_note_with_values_claude_vcr_never_writes_is_ignored_by_a_miss_and_refused_by_dump(proxy, db_path):
    record_notes(proxy, "h", "fine")
    key = "c" * 64
    with sqlite3.connect(db_path) as conn:
        conn.execute("INSERT INTO unstored_answers VALUES ('h', ?, 'x', 'overloaded_error', 'yesterday')", [key])
    conn.close()
    with Catalog.open(db_path) as catalog:
        assert catalog.unstored_answer("h", key) is None
    dumped = cli("dump", "--db", db_path)
    assert dumped.exit_code == 1 and "refused" in dumped.output and "Traceback" not in dumped.output


def test_explain_of_a_saved_miss_says_the_answer_was_not_stored(proxy, db_path, tmp_path):
    record_notes(proxy, "e", "fine", "STATUS:529 x")
    saved = tmp_path / "miss.json"
    saved.write_text(json.dumps({"method": "POST", "path": MESSAGES, "cassette": "e", "body": body("STATUS:529 x")}))
    explained = cli("explain", saved, "--db", db_path)
    assert explained.exit_code == 1
    assert "this request got a 529 (overloaded_error), which was not stored" in explained.output
    assert "pass --record-errors to store such errors" in explained.output
