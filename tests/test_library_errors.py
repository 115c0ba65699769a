"""The library's edge: a damaged recording read through the public API raises one `ClaudeVCRError` with one
line naming the file (never a bare zstandard, json or sqlite3 error), and the CLI prints just that line."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import claude_vcr
import pytest
from claude_vcr.diagnosis import explain, read_request_file
from claude_vcr.interchange.seed import import_directory
from claude_vcr.lint import lint  # `claude_vcr.lint` is the module once a submodule imported it
from claude_vcr.store import importing

from tests.support.faults import claude_vcr as run_cli
from tests.support.faults import one_line_error

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
KEYS = ["a" * 64, "b" * 64, "c" * 64]


def recording(index: int) -> claude_vcr.Recording:
    body = json.dumps(
        {"model": "claude-opus-5-5", "max_tokens": 5, "messages": [{"role": "user", "content": f"q{index}"}]}
    )
    return claude_vcr.Recording(
        cassette="c",
        key=KEYS[index],
        key_scheme="v2",
        method="POST",
        path="/v1/messages",
        status=200,
        request_headers=[("anthropic-version", "2023-06-01")],
        request_body=body.encode(),
        response_headers=[("content-type", "application/json")],
        response_body=json.dumps({"id": f"msg_{index}", "type": "message", "content": []}).encode(),
        model="claude-opus-5-5",
        fingerprints={"model": "abc"},
    )


@pytest.fixture
def damaged(tmp_path: Path) -> Path:
    """A real vcr.db of three recordings: the first with garbage in its compressed response, the second with
    garbage in its compressed fingerprints (JSON), the third whole."""
    db = tmp_path / "vcr.db"
    with claude_vcr.Store(db) as store:
        for index in range(3):
            store.save(recording(index))
    conn = sqlite3.connect(db)
    conn.execute(
        "UPDATE recordings SET response_body = ? WHERE key = ?", [ZSTD_MAGIC + os.urandom(64), KEYS[0]]
    )
    conn.execute("UPDATE recordings SET fingerprints = ? WHERE key = ?", [b"{not json", KEYS[1]])
    conn.commit()
    conn.close()
    return db


def assert_one_line(error: BaseException, db: Path) -> None:
    text = str(error)
    assert isinstance(error, claude_vcr.ClaudeVCRError), type(error)
    assert "\n" not in text and "damaged" in text and str(db) in text, text


def test_a_damaged_blob_read_through_the_public_api_raises_one_clear_error(damaged: Path):
    with claude_vcr.Catalog.open(damaged) as catalog:
        row = catalog.resolve(KEYS[0][:12])
        with pytest.raises(claude_vcr.DatabaseError) as raised:
            catalog.detail(row)
        assert_one_line(raised.value, damaged)
        with pytest.raises(claude_vcr.ClaudeVCRError) as raised:
            list(catalog.iter_details("c"))
        assert_one_line(raised.value, damaged)
        with pytest.raises(claude_vcr.ClaudeVCRError) as raised:
            list(catalog.dump_lines())
        assert_one_line(raised.value, damaged)
        with pytest.raises(claude_vcr.ClaudeVCRError) as raised:
            lint(catalog, "c")
        assert_one_line(raised.value, damaged)
        with pytest.raises(claude_vcr.ClaudeVCRError) as raised:
            catalog.recordings_of("c", KEYS[0])  # replay's read: names the recording
        assert_one_line(raised.value, damaged)
        assert KEYS[0][:12] in str(raised.value)
        with pytest.raises(claude_vcr.ClaudeVCRError) as raised:
            catalog.candidates("c", "POST", "/v1/messages")  # an undecodable JSON column
        assert_one_line(raised.value, damaged)
        assert catalog.detail(catalog.resolve(KEYS[2][:12])).response_body.startswith(b'{"id": "msg_2"')


def test_a_damaged_blob_in_the_write_side_raises_one_clear_error(damaged: Path):
    with claude_vcr.Store(damaged) as store:
        with pytest.raises(claude_vcr.ClaudeVCRError) as raised:
            store.catalog.recording("c", KEYS[0])
        assert_one_line(raised.value, damaged)


def test_the_cli_prints_one_line_for_a_damaged_blob(damaged: Path):
    done = run_cli("show", KEYS[0][:12], "--db", damaged)
    assert done.returncode != 0
    assert "Traceback" not in done.stdout + done.stderr
    line = one_line_error(done)
    assert "damaged" in line and "zstd" in line, done.stderr


def test_explain_reads_without_writing(tmp_path: Path):
    """`explain` takes the read side: it answers from a read-only file in a read-only folder."""
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "vcr.db"
    with claude_vcr.Store(db) as store:
        saved = store.save(recording(0))
    request_file = tmp_path / "request.json"
    request_file.write_bytes(saved.request_body)
    request = read_request_file(saved.request_body.decode())
    os.chmod(db, stat.S_IRUSR)
    os.chmod(folder, stat.S_IRUSR | stat.S_IXUSR)
    try:
        with claude_vcr.Catalog.open(db) as catalog:
            key, report = explain(catalog, "c", request)
        done = run_cli("explain", request_file, "--cassette", "c", "--db", db)
    finally:
        os.chmod(folder, stat.S_IRWXU)
        os.chmod(db, stat.S_IRUSR | stat.S_IWUSR)
    assert report is not None and report.closest and report.closest[0].key == saved.key
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"no recording for POST /v1/messages in cassette 'c' (key {key[:12]}" in done.stdout, done.stdout


def test_a_failed_import_in_the_library_leaves_no_half_made_db(tmp_path: Path):
    seed = tmp_path / "seed"
    (seed / "broken").mkdir(parents=True)
    (seed / "broken" / "index.json").write_text("[1, 2]")  # not a cassette index
    db = tmp_path / "new.db"
    with pytest.raises(claude_vcr.FormatError):
        with importing(db) as store:
            import_directory(store, seed)
    assert not db.exists()
    kept = tmp_path / "kept.db"
    with claude_vcr.Store(kept) as store:
        store.save(recording(0))
    with pytest.raises(claude_vcr.FormatError):
        with importing(kept) as store:
            import_directory(store, seed)
    with claude_vcr.Catalog.open(kept) as catalog:  # a db that existed is left as it was
        assert catalog.count() == 1
