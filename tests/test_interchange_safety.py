"""Files from elsewhere cannot make import or export reach outside where the user pointed: real symlinks to
/etc/passwd, /proc/self/environ and /dev/zero, a fifo, traversal names in meta.json, index.json and in a db's
cassette names (written with sqlite3 directly), and `export --replace` removing only what an export wrote."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from claude_vcr.interchange import files
from claude_vcr.store import Store

from tests.support.cassettes import recording, rows
from tests.support.cli import cli


@pytest.fixture
def exported(db_path: Path, tmp_path: Path) -> Path:
    """A db of two recordings, exported to tmp/out/bulk; returns the export directory."""
    with Store(db_path) as store:
        store.save(recording(1))
        store.save(recording(2))
    out = tmp_path / "out"
    assert cli("export", out, "--db", db_path).exit_code == 0
    return out


def _files(directory: Path, suffix: str) -> list[Path]:
    return sorted((directory / "bulk" / "recordings").glob(f"*{suffix}"))


def _import_fails(source: Path, target_db: Path, *expected: str) -> None:
    """Import into a fresh db holding one other recording: refused with a one-line message, db unchanged."""
    with Store(target_db) as store:
        store.save(recording(9, cassette="mine"))
    before = rows(target_db)
    result = cli("import", source, "--db", target_db)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    for text in expected:
        assert text in result.output, result.output
    assert rows(target_db) == before


@pytest.mark.parametrize(
    ("suffix", "link_to"),
    [
        (".response.bin", "/etc/passwd"),
        (".request.json", "/proc/self/environ"),
        (".response.bin", "/dev/zero"),
    ],
)
def test_import_refuses_a_symlinked_file(exported, tmp_path, suffix, link_to):
    if not Path(link_to).exists():
        pytest.skip(f"{link_to} does not exist here")
    victim = _files(exported, suffix)[0]
    victim.unlink()
    victim.symlink_to(link_to)
    _import_fails(exported, tmp_path / "target.db", "symbolic link", victim.name)


def test_import_refuses_a_fifo_without_blocking(exported, tmp_path):
    victim = _files(exported, ".response.bin")[0]
    victim.unlink()
    os.mkfifo(victim)  # opening a fifo for reading would wait for a writer forever
    _import_fails(exported, tmp_path / "target.db", "not a regular file")


def test_import_refuses_a_symlinked_recordings_directory_or_cassette(exported, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    (exported / "bulk" / "recordings").rename(elsewhere)
    (exported / "bulk" / "recordings").symlink_to(elsewhere)
    _import_fails(exported, tmp_path / "a.db", "recordings is a symbolic link")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "bulk").symlink_to(exported / "bulk")
    result = cli("import", linked, "--db", tmp_path / "b.db")
    assert result.exit_code == 1 and "bulk is a symbolic link" in result.output


def test_import_refuses_a_file_over_the_size_cap(exported, tmp_path, monkeypatch):
    monkeypatch.setattr(files, "MAX_FILE_BYTES", 100)
    _import_fails(exported, tmp_path / "target.db", "over the import limit of 100 bytes")


def test_import_refuses_a_traversal_key_in_meta_json(exported, tmp_path):
    meta_file = _files(exported, ".meta.json")[0]
    meta = json.loads(meta_file.read_text())
    meta["vcr"]["key"] = "../../../ESCAPED"
    meta_file.write_text(json.dumps(meta))
    _import_fails(exported, tmp_path / "target.db", "not a recording key")
    assert not list(tmp_path.rglob("ESCAPED*"))


@pytest.mark.parametrize("stem", ["../../ESCAPED", "..", "a/b", ".hidden"])
def test_import_refuses_a_traversal_name_in_index_json(exported, tmp_path, stem):
    index_file = exported / "bulk" / "index.json"
    index = json.loads(index_file.read_text())
    index["recordings"][stem] = {}
    index_file.write_text(json.dumps(index))
    _import_fails(exported, tmp_path / "target.db", "not a valid recording name")


@pytest.mark.parametrize(
    ("column", "value"), [("name", "../../X"), ("name", "/tmp/abs"), ("key", "../../../K")]
)
def test_export_refuses_traversal_names_from_a_db(db_path, tmp_path, column, value):
    with Store(db_path) as store:
        store.save(recording(1))
    with sqlite3.connect(db_path) as conn:  # a db that arrived through git: anything may be in it
        table = "cassettes" if column == "name" else "recordings"
        conn.execute(f"UPDATE {table} SET {column} = ?", [value])
    out = tmp_path / "deep" / "er" / "out"
    result = cli("export", out, "--db", db_path)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "outside the directory" in result.output or "not a recording key" in result.output
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.name != "vcr.db") == []


def test_export_never_writes_through_a_link_it_finds(exported, db_path, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    victim = _files(exported, ".meta.json")[0]
    victim.unlink()
    victim.symlink_to(outside)
    result = cli("export", exported, "--replace", "--db", db_path)
    assert result.exit_code == 0, result.output
    assert outside.read_text() == "precious" and not victim.is_symlink()


def test_export_refuses_a_linked_recordings_directory(db_path, tmp_path):
    with Store(db_path) as store:
        store.save(recording(1))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "bulk").symlink_to(elsewhere)  # the cassette's directory leads elsewhere
    result = cli("export", out, "--db", db_path)
    assert result.exit_code == 1 and "bulk is a symbolic link" in result.output
    assert list(elsewhere.iterdir()) == []


def test_replace_removes_only_files_an_export_wrote(exported, db_path):
    recordings_dir = exported / "bulk" / "recordings"
    mine = [
        recordings_dir / "notes.json",
        recordings_dir / "my-own.request.json",
        recordings_dir / "README.meta.json",
        exported / "bulk" / "NOTES.txt",
    ]
    for path in mine:
        path.write_text("mine")
    stale = recordings_dir / ("0" * 64 + "-3.response.bin")  # named as an export names files
    stale.write_bytes(b"stale")
    assert cli("export", exported, "--replace", "--db", db_path).exit_code == 0
    assert all(path.read_text() == "mine" for path in mine)
    assert not stale.exists()
    assert len([p for p in _files(exported, ".meta.json") if len(p.name) == 64 + len(".meta.json")]) == 2


def test_replace_refuses_a_directory_claude_vcr_did_not_export(db_path, tmp_path):
    with Store(db_path) as store:
        store.save(recording(1))
    out = tmp_path / "out"
    (out / "bulk" / "recordings").mkdir(parents=True)
    theirs = out / "bulk" / "recordings" / ("a" * 64 + ".response.bin")
    theirs.write_text("theirs")
    (out / "bulk" / "index.json").write_text(json.dumps({"version": "1.0", "recordings": {}}))
    result = cli("export", out, "--replace", "--db", db_path)
    assert result.exit_code == 1 and "did not export" in result.output
    assert theirs.read_text() == "theirs"


def test_a_clean_export_still_round_trips(exported, tmp_path, db_path):
    target = tmp_path / "again.db"
    result = cli("import", exported, "--db", target)
    assert result.exit_code == 0, result.output
    assert rows(target) == rows(db_path)
