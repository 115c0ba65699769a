"""The store on its own: request chunks shared between recordings, the totals its triggers keep, compaction."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from claude_vcr.compression import CHUNKED_CODEC, split_chunks
from claude_vcr.errors import DatabaseError
from claude_vcr.maintenance import compact
from claude_vcr.records import Recording
from claude_vcr.store import Store

from tests.support.samples import sample


def recording(index: int, body: bytes, *, model: str = "claude-opus-5-5", cassette: str = "c") -> Recording:
    return Recording(
        cassette=cassette,
        key=f"{index:064x}",
        key_scheme="v2",
        method="POST",
        path="/v1/messages",
        status=200,
        request_headers=[("anthropic-version", "2023-06-01")],
        request_body=body,
        response_headers=[("content-type", "application/json")],
        response_body=json.dumps({"id": f"msg_{index}", "content": []}).encode(),
        model=model,
        stream=index % 2 == 0,
    )


def session(turns: int) -> list[bytes]:
    """Requests that grow like a Claude Code session: the same tools and system, more history each turn."""
    base = sample("tool-turn-2")
    bodies = []
    for turn in range(turns):
        history = base["messages"] + [
            {"role": "user", "content": f"turn {n}: " + "more text " * 40} for n in range(turn)
        ]
        bodies.append(json.dumps(dict(base, messages=history)).encode())
    return bodies


def test_chunking_is_lossless_and_content_defined():
    body = session(3)[2]
    chunks = split_chunks(body)
    assert b"".join(chunks) == body and len(chunks) > 10
    assert all(len(chunk) <= 16 * 1024 for chunk in chunks)
    shifted = b'{"x":"' + b"y" * 777 + b'",' + body[1:]  # an insertion at the front moves no later boundary
    assert len(set(chunks) & set(split_chunks(shifted))) >= len(chunks) - 3


def test_a_session_stores_its_repeated_parts_once(tmp_path: Path):
    bodies = session(12)
    with Store(tmp_path / "vcr.db") as store:
        for index, body in enumerate(bodies):
            store.save(recording(index, body))
        for index, body in enumerate(bodies):
            assert store.catalog.recording("c", f"{index:064x}").request_body == body
    conn = sqlite3.connect(tmp_path / "vcr.db")
    codecs = {row[0] for row in conn.execute("SELECT request_codec FROM recordings")}
    chunk_bytes = conn.execute("SELECT sum(length(data)) FROM chunks").fetchone()[0]
    conn.close()
    assert codecs == {CHUNKED_CODEC}
    assert chunk_bytes < sum(map(len, bodies)) / 15


def test_a_damaged_chunk_is_reported_not_replayed(tmp_path: Path):
    body = session(1)[0]
    with Store(tmp_path / "vcr.db") as store:
        store.save(recording(1, body))
    conn = sqlite3.connect(tmp_path / "vcr.db")
    conn.execute("DELETE FROM chunks WHERE rowid = (SELECT min(rowid) FROM chunks)")
    conn.commit()
    conn.close()
    with Store(tmp_path / "vcr.db") as store, pytest.raises(DatabaseError, match="missing from the db"):
        store.catalog.recording("c", f"{1:064x}")


def totals(db: Path) -> tuple[list, list]:
    conn = sqlite3.connect(db)
    kept = conn.execute(
        "SELECT cassette_id, model, stream, recordings, request_size, response_size, stored_size "
        "FROM recording_totals ORDER BY 1, 2, 3"
    ).fetchall()
    counted = conn.execute(
        "SELECT cassette_id, coalesce(model, ''), stream, count(*), sum(request_size), sum(response_size), "
        "sum(stored_size) FROM recordings GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    ).fetchall()
    conn.close()
    return kept, counted


def test_totals_follow_saves_replacements_deletes_and_compaction(tmp_path: Path):
    db = tmp_path / "vcr.db"
    with Store(db) as store:
        for index in range(20):
            model = ["claude-opus-5-5", "claude-haiku-4-5", None][index % 3]
            store.save(recording(index, b'{"n": %d}' % index, model=model, cassette=f"c{index % 2}"))
        store.save(recording(3, b'{"replaced": true}', model="claude-haiku-4-5"))  # same key and ordinal
        store.delete_recordings([row[0] for row in store.catalog.keys("c0")[:4]])
        store.clear_cassette("c1")
    kept, counted = totals(db)
    assert kept == counted and kept
    compact(db)
    kept, counted = totals(db)
    assert kept == counted and kept


def test_both_sides_refuse_a_request_rebuilt_from_a_changed_chunk(tmp_path: Path):
    import zstandard
    from claude_vcr.catalog import Catalog

    body = session(1)[0]
    with Store(tmp_path / "vcr.db") as store:
        store.save(recording(1, body))
    conn = sqlite3.connect(tmp_path / "vcr.db")
    conn.execute(
        "UPDATE chunks SET data = ? WHERE rowid = (SELECT min(rowid) FROM chunks)",
        [zstandard.ZstdCompressor().compress(b"not the bytes this id was made from")],
    )
    conn.commit()
    conn.close()
    with Store(tmp_path / "vcr.db") as store, pytest.raises(DatabaseError, match="does not match its hash"):
        store.catalog.recording("c", f"{1:064x}")
    with Catalog.open(tmp_path / "vcr.db") as catalog, pytest.raises(DatabaseError, match="does not match"):
        catalog.detail(catalog.recordings("c")[0])


def test_a_recording_comes_back_as_it_was_saved(tmp_path: Path):
    """One decoder for both sides: every field the write side stores, the read side returns."""
    from claude_vcr.catalog import Catalog

    saved = recording(2, session(2)[1])
    saved.timings = [(10, 1.5), (20, 3.0)]
    saved.fingerprints = {"model": "abc"}
    saved.meta = {"imported_from": "test"}
    saved.duration_ms, saved.ttfb_ms = 12.5, 1.5
    with Store(tmp_path / "vcr.db") as store:
        store.save(saved)
        written = store.catalog.recording("c", saved.key)
    with Catalog.open(tmp_path / "vcr.db") as catalog:
        [row] = catalog.recordings("c")
        read = catalog.detail(row)
    assert read == written
    assert row == read.row == saved.row
    assert read.timings == saved.timings and read.fingerprints == saved.fingerprints and read.meta == saved.meta
    assert read.request_body == saved.request_body and read.response_body == saved.response_body


def test_replay_reads_only_the_response_and_the_checking_reads_still_refuse_a_changed_chunk(tmp_path: Path):
    """Replay's read (`recordings_of`) skips rebuilding and hashing the request; `lookup` (verify, lint) keeps
    the check, so a changed chunk is still found, just not on the hit path."""
    import zstandard

    body = session(1)[0]
    saved = recording(1, body)
    with Store(tmp_path / "vcr.db") as store:
        store.save(saved)
    conn = sqlite3.connect(tmp_path / "vcr.db")
    assert conn.execute("SELECT request_codec FROM recordings").fetchone()[0] == CHUNKED_CODEC
    conn.execute(
        "UPDATE chunks SET data = ? WHERE rowid = (SELECT min(rowid) FROM chunks)",
        [zstandard.ZstdCompressor().compress(b"not the bytes this id was made from")],
    )
    conn.commit()
    conn.close()
    with Store(tmp_path / "vcr.db") as store:
        [replayed] = store.catalog.recordings_of("c", saved.key)
        assert replayed.response_body == saved.response_body and replayed.status == 200
        assert replayed.request_body == b"" and replayed.request_headers == []
        with pytest.raises(DatabaseError, match="does not match its hash"):
            store.catalog.recording("c", saved.key)
