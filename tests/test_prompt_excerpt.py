"""The prompt excerpt `list` and the viewer show: worked out on save, backfilled by `m008_prompt_excerpt`."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from claude_vcr.catalog import Catalog
from claude_vcr.excerpts import PROMPT_EXCERPT_CHARS, prompt_excerpt
from claude_vcr.store import Store

from tests.support.cassettes import recording, save_all


def body(messages: list) -> bytes:
    return json.dumps({"model": "m", "max_tokens": 5, "messages": messages}).encode()


def test_the_excerpt_is_the_start_of_the_last_user_message():
    assert (
        prompt_excerpt(body([{"role": "user", "content": "  Fix   the\nflaky test "}]))
        == "Fix the flaky test"
    )
    turns = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "second"}, {"type": "text", "text": "question"}],
        },
    ]
    assert prompt_excerpt(body(turns)) == "second question"
    result = [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "42 files"}]}]
    assert prompt_excerpt(body([{"role": "user", "content": result}])) == "[tool_result] 42 files"
    long = prompt_excerpt(body([{"role": "user", "content": "word " * 100}]))
    assert long is not None and len(long) == PROMPT_EXCERPT_CHARS and long.endswith("...")
    for other in (b"", b"not json", b"[1, 2]", json.dumps({"prompt": "legacy"}).encode(), body([])):
        assert prompt_excerpt(other) is None


def save_as_older(db: Path, monkeypatch) -> None:
    """Three recordings as a version before `m008_prompt_excerpt` wrote them: frames without the dictionary
    (`m009_body_dictionary`), and the excerpt column, its index and both steps gone."""
    import zstandard
    from claude_vcr import store

    with monkeypatch.context() as patched:
        patched.setattr(store, "compressor", lambda level=3: zstandard.ZstdCompressor(level=3))
        save_all(db, [recording(i) for i in range(3)])
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm009_body_dictionary'")
    conn.commit()
    conn.close()
    make_older(db)


def make_older(db: Path) -> None:
    """Turn a current db into one written before `m008_prompt_excerpt` (its column, index and step gone)."""
    conn = sqlite3.connect(db)
    conn.execute("DROP INDEX recordings_catalog")
    conn.execute("ALTER TABLE recordings DROP COLUMN prompt_excerpt")
    conn.execute(
        "CREATE INDEX recordings_catalog ON recordings (cassette_id, created_at, key, ordinal, method, path, "
        "model, stream, status, request_size, response_size, stored_size)"
    )
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm008_prompt_excerpt'")
    conn.commit()
    conn.close()


def test_an_older_db_gets_excerpts_in_memory_when_read_and_on_disk_when_opened_to_write(tmp_path, monkeypatch):
    db = tmp_path / "vcr.db"
    save_as_older(db, monkeypatch)
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    with Catalog.open(db) as catalog:  # read-only: migrated in a private copy, the file untouched
        assert sorted(r.prompt_excerpt for r in catalog.recordings("bulk")) == [
            f"bulk question {i}" for i in range(3)
        ]
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    with Store(db):
        pass
    conn = sqlite3.connect(db)
    stored = sorted(row[0] for row in conn.execute("SELECT prompt_excerpt FROM recordings"))
    plan = " ".join(
        str(row)
        for row in conn.execute(
            "EXPLAIN QUERY PLAN SELECT prompt_excerpt FROM recordings INDEXED BY recordings_catalog WHERE cassette_id = 1"
        )
    )
    conn.close()
    assert stored == [f"bulk question {i}" for i in range(3)]
    assert "COVERING INDEX recordings_catalog" in plan  # `list` still reads the index only
