"""Fault injection: processes killed with SIGKILL, writers racing on one db, maintenance while recording,
hot journals, damaged pages and blobs, read-only files and a full disk, all through real processes and the
real SQLite file. Loops are small and bounded here; tests/benchmarks/bench_reliability.py runs the same
scenarios (tests/support/faults.py) at a larger size for BENCHMARKS.md."""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import faults
from tests.support.faults import Serve, claude_vcr, holding_upstream, one_line_error, post, request_body


@pytest.fixture(autouse=True)
def no_serve_left() -> Iterator[None]:
    """A test that fails part-way leaves no `serve` process running."""
    yield
    faults.kill_leftovers()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- kill -9 ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mid_stream", [True, False], ids=["mid-stream", "after-answers"])
def test_serve_killed_loses_no_acknowledged_recording(tmp_path, mid_stream):
    report = faults.kill_serve_runs(tmp_path, 5, mid_stream=mid_stream)
    assert report.runs == 5
    assert report.reopened == 5 and report.integrity_ok == 5
    assert report.acknowledged == 5 * 4  # held streams were cut off by the kill, so never acknowledged
    assert report.lost == 0


def test_a_killed_import_leaves_a_hot_journal_the_next_command_rolls_back(tmp_path):
    killed = faults.kill_command(tmp_path, "import")
    assert killed.caught_midway, "the import finished before the kill: no hot journal was made"
    assert killed.reopened and killed.integrity == "ok"
    assert killed.recordings_after == killed.recordings_before  # the db as before the killed import
    assert killed.leftovers == []


def test_a_killed_compact_leaves_the_db_whole_and_the_next_compact_clean(tmp_path):
    killed = faults.kill_command(tmp_path, "compact")
    assert killed.caught_midway
    assert killed.reopened and killed.integrity == "ok"
    assert killed.recordings_after == killed.recordings_before
    assert killed.leftovers == []


@pytest.mark.parametrize("command", ["redact", "rekey"])
def test_a_killed_redact_or_rekey_leaves_the_db_whole(tmp_path, command):
    """Both rewrite every recording in one transaction: killed in it, the next command rolls it back."""
    killed = faults.kill_command(tmp_path, command)
    assert killed.caught_midway, f"the {command} finished before the kill: no hot journal was made"
    assert killed.reopened and killed.integrity == "ok"
    assert killed.recordings_after == killed.recordings_before
    assert killed.leftovers == []


# --- many writers, maintenance meanwhile ----------------------------------------------------------------


def test_two_recording_serves_lose_nothing(tmp_path):
    report = faults.concurrent_writers(tmp_path, writers=2, per_writer=60, clients=8)
    assert report.acknowledged == 120
    assert report.lost == 0 and report.failed_saves == 0
    assert report.exit_codes == [0, 0] and report.integrity == "ok"
    assert len(faults.stored_keys(tmp_path / "writers.db")) == 120


def test_import_rekey_clear_during_recording_lose_nothing_and_compact_is_refused(tmp_path):
    report = faults.concurrent_writers(
        tmp_path, writers=2, per_writer=30, clients=6, maintenance=lambda db: faults.busy_maintenance(db, 1)
    )
    assert report.maintenance == ["import:0", "rekey:0", "clear:0", "compact:1"]
    assert report.acknowledged == 60 and report.lost == 0 and report.failed_saves == 0
    assert report.exit_codes == [0, 0] and report.integrity == "ok"


def test_compact_refuses_a_db_in_use_and_leaves_it_alone(tmp_path):
    db = tmp_path / "vcr.db"
    with holding_upstream() as (_, url):
        serve = Serve(db, url)
        assert post(serve.url, request_body("before")).acknowledged
        before = digest(db)
        message = one_line_error(claude_vcr("compact", "--db", db))
        assert "open in another claude-vcr process" in message and "stop it" in message
        assert digest(db) == before and not list(tmp_path.glob("vcr.db.compacting*"))
        (tmp_path / "base").write_bytes(b"")
        (tmp_path / "theirs").write_bytes(b"")
        merged = one_line_error(claude_vcr("merge-driver", tmp_path / "base", db, tmp_path / "theirs"))
        assert "stop it before `claude-vcr merge-driver`" in merged
        assert digest(db) == before
        assert post(serve.url, request_body("after")).acknowledged  # the proxy records on, into the same file
        assert serve.stop() == 0
    assert len(faults.stored_keys(db)) == 2
    assert claude_vcr("compact", "--db", db).returncode == 0  # stopped: now it may


def test_clear_and_delete_of_the_cassette_being_recorded(tmp_path):
    """Recordings after a `clear` land: the cassette comes back, with the rules its keys are made with."""
    db = tmp_path / "vcr.db"
    with holding_upstream() as (_, url):
        serve = Serve(db, url)
        first = [post(serve.url, request_body(f"first-{i}")) for i in range(3)]
        assert all(reply.acknowledged for reply in first)
        assert claude_vcr("delete", first[0].key[:12], "--db", db).returncode == 0
        assert claude_vcr("clear", faults.CASSETTE, "--yes", "--db", db).returncode == 0
        later = [post(serve.url, request_body(f"later-{i}")) for i in range(3)]
        assert all(reply.acknowledged for reply in later)
        assert serve.stop() == 0
        assert faults.SAVE_FAILED not in serve.log()
    assert faults.stored_keys(db) == {reply.key for reply in later}
    conn = sqlite3.connect(db)
    rules = conn.execute("SELECT rules_json FROM cassettes WHERE name = ?", [faults.CASSETTE]).fetchone()[0]
    conn.close()
    assert rules and json.loads(rules)
    with holding_upstream() as (_, url):  # and they replay
        replay = Serve(db, url, mode="replay")
        assert post(replay.url, request_body("later-1")).outcome == "hit"
        replay.stop()


# --- damaged files and blobs -----------------------------------------------------------------------------


COMMANDS = [
    ("cassettes",),
    ("list",),
    ("stats",),
    ("dump",),
    ("lint",),
    ("export", "{out}"),
    ("rekey",),
    ("clear", faults.CASSETTE, "--yes"),
    ("import", "{seed}"),
    ("compact",),
]


def run_all(db: Path, tmp_path: Path, seed: Path) -> dict[str, subprocess.CompletedProcess]:
    done = {}
    for command in COMMANDS:
        args = [a.format(out=tmp_path / f"out-{command[0]}", seed=seed) for a in command]
        done[command[0]] = claude_vcr(*args, "--db", db)
    return done


@pytest.fixture
def recorded(tmp_path) -> Iterator[tuple[Path, list[str], Path]]:
    """A db with 30 recordings made by a real proxy (keys returned), and a seed directory to import."""
    db = tmp_path / "vcr.db"
    with holding_upstream() as (_, url):
        serve = Serve(db, url)
        replies = faults.send_many(serve.url, [f"r{i}" for i in range(30)], 4)
        assert serve.stop() == 0
    seed = tmp_path / "seed"
    made = tmp_path / "seed.db"
    faults._fill(made, "imported", 3)
    assert claude_vcr("export", seed, "--db", made).returncode == 0
    yield db, [reply.key for reply in replies], seed


def test_damaged_pages_each_command_one_line_and_the_file_untouched(tmp_path, recorded):
    db, _, seed = recorded
    size = db.stat().st_size
    page = 1024
    noise = random.Random(12)
    with db.open("r+b") as handle:  # interior pages, past the schema on page 1
        for at in range(page * 4, size - page, page * 7):
            handle.seek(at)
            handle.write(noise.randbytes(page))
    before = digest(db)
    results = run_all(db, tmp_path, seed)
    refused = 0
    for name, done in results.items():
        assert "Traceback" not in done.stdout + done.stderr, (name, done.stderr)
        if done.returncode:
            assert "damaged" in one_line_error(done), (name, done.stderr)
            refused += 1
    assert refused >= len(COMMANDS) - 2  # cassettes may answer from the few pages it reads
    assert digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("vcr.db")) == ["vcr.db"]


def test_damaged_blob_commands_say_so_and_replay_answers_an_api_error(tmp_path, recorded):
    db, keys, _ = recorded
    conn = sqlite3.connect(db)
    conn.execute("UPDATE recordings SET response_body = ? WHERE key = ?", [b"\x28\xb5\x2f\xfd" + os.urandom(64), keys[0]])
    conn.commit()
    conn.close()
    before = digest(db)
    for args in (("show", keys[0][:12]), ("dump",), ("export", tmp_path / "out"), ("lint",)):
        done = claude_vcr(*args, "--db", db)
        assert "Traceback" not in done.stdout + done.stderr
        assert "damaged" in one_line_error(done), (args, done.stderr)
    assert digest(db) == before
    with holding_upstream() as (_, url):
        serve = Serve(db, url, mode="replay")
        damaged = post(serve.url, request_body("r0"))
        assert damaged.status == 502
        error = json.loads(damaged.body)
        assert error["type"] == "error" and error["error"]["type"] == "api_error"
        assert keys[0][:12] in error["error"]["message"] and "damaged" in error["error"]["message"]
        assert post(serve.url, request_body("r1")).outcome == "hit"  # and it serves on
        serve.stop()
        assert "Traceback" not in serve.log()


# --- read-only and full disks: a small tmpfs --------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 2 MB tmpfs (root only; skipped where mounting is not allowed)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_read_only_file_and_folder_each_writing_command_one_line(tmp_path, recorded, small_disk):
    db, keys, seed = recorded
    target = small_disk / "vcr.db"
    target.write_bytes(db.read_bytes())
    assert subprocess.run(["mount", "-o", "remount,ro", str(small_disk)]).returncode == 0
    before = digest(target)
    for args in (
        ("delete", keys[0][:12]),
        ("clear", faults.CASSETTE, "--yes"),
        ("rekey",),
        ("import", seed),
        ("compact",),
    ):
        assert "read-only" in one_line_error(claude_vcr(*args, "--db", target)), args
    serve = subprocess.run(
        [*faults.serve_command(target), "--mode", "record"], capture_output=True, text=True, env=faults.env(),
        timeout=faults.DEADLINE,
    )
    assert "read-only" in one_line_error(serve)
    assert claude_vcr("list", "--db", target).returncode == 0  # reading still works
    assert digest(target) == before


def test_a_full_disk_is_an_error_line_a_summary_and_a_failing_exit_status(tmp_path, small_disk):
    db = small_disk / "vcr.db"
    with holding_upstream() as (_, url):
        serve = Serve(db, url, logs=tmp_path)
        fits = post(serve.url, request_body("fits"))
        assert fits.acknowledged
        filler = small_disk / "filler"
        try:
            with filler.open("wb") as handle:  # take every byte left
                while True:
                    handle.write(b"\0" * 4096)
                    handle.flush()
        except OSError:
            pass
        replies = [post(serve.url, request_body(f"no-room-{i}")) for i in range(3)]
        code = serve.stop()
        log = serve.log()
    failed = log.count(faults.SAVE_FAILED)
    assert failed >= 1 and "full" in log
    assert code == 1 and f"{failed} could not be stored" in log
    assert "Traceback" not in log
    assert all(reply.status == 200 for reply in replies)
    filler.unlink()
    assert faults.integrity(db) == "ok"
    assert fits.key in faults.stored_keys(db)


def test_a_save_that_fails_is_an_error_line_counted_when_serve_stops_and_its_exit_status(tmp_path):
    """Any failure (here a trigger that refuses inserts, standing in for what SQLite may refuse) is never silent."""
    db = tmp_path / "vcr.db"
    with holding_upstream() as (_, url):
        serve = Serve(db, url)
        assert post(serve.url, request_body("kept")).acknowledged
        conn = sqlite3.connect(db)
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON recordings BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )
        conn.commit()
        conn.close()
        for i in range(2):
            post(serve.url, request_body(f"refused-{i}"))
        code = serve.stop()
        log = serve.log()
    assert log.count(faults.SAVE_FAILED) == 2 and "injected failure" in log
    assert "1 recording(s) stored, 2 could not be stored" in log
    assert code == 1 and "Traceback" not in log


def test_compact_keeps_the_file_permissions(tmp_path, recorded):
    db, _, _ = recorded
    db.chmod(0o640)
    assert claude_vcr("compact", "--db", db).returncode == 0
    assert db.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("vcr.db")) == ["vcr.db"]
