"""Management commands over dbs recorded through the real proxy: cassettes, list, stats, show, delete, clear,
compact; plus the library API behind them and what they refuse."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from claude_vcr.catalog import Catalog
from claude_vcr.describe import describe, describe_response
from claude_vcr.errors import Ambiguous, DatabaseError, NoDatabase, NotFound
from claude_vcr.schema import SCHEMA_STEPS
from claude_vcr.sse import accumulate, encode_events, parse_sse
from claude_vcr.store import Store

from tests.support.cassettes import recording, rows, save_all
from tests.support.cli import cli
from tests.support.client import TEST_API_KEY, WEATHER_TOOL, call, params

TOOL_REQUEST = params("What is the weather in Paris?", tools=[WEATHER_TOOL], stream=True)


@pytest.fixture
def recorded(proxy, db_path):
    """Three exchanges recorded by the proxy in two cassettes; returns what each client received."""
    recorder = proxy(mode="record")
    received = {
        "text": call(recorder.url + "/c/basic", **params("Hi there")),
        "stream": call(
            recorder.url + "/c/basic", **params("Tell me a story", model="claude-haiku-4-5", stream=True)
        ),
        "tool": call(recorder.url + "/c/tools", **TOOL_REQUEST),
    }
    recorder.stop()
    return received


def find_key(db: Path, cassette: str, stream: bool) -> str:
    with Catalog.open(db) as catalog:
        return next(r.key for r in catalog.recordings(cassette) if r.stream == stream)


def test_cassettes_lists_counts_sizes_and_dates(recorded, db_path):
    result = cli("cassettes", "--db", db_path)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["NAME", "RECORDINGS", "STORED", "NEWEST"]
    assert [line.split()[:2] for line in lines[1:]] == [["basic", "2"], ["tools", "1"]]

    listed = json.loads(cli("cassettes", "--json", "--db", db_path).output)
    stored = {r["cassette"]: 0 for r in rows(db_path)}
    for row in rows(db_path):
        stored[row["cassette"]] += row["stored_size"]
    assert {c["name"]: c["recordings"] for c in listed} == {"basic": 2, "tools": 1}
    assert {c["name"]: c["stored_size"] for c in listed} == stored
    newest = max(r["created_at"] for r in rows(db_path) if r["cassette"] == "basic")
    assert listed[0]["newest"] == newest
    assert newest[:19].replace("T", " ") in lines[1]


def test_list_shows_one_line_per_recording(recorded, db_path):
    result = cli("list", "basic", "--db", db_path)
    assert result.exit_code == 0, result.output
    header, *lines = result.output.splitlines()
    assert header.split() == ["KEY", "METHOD", "PATH", "MODEL", "STREAM", "STATUS", "SIZE", "DATE", "PROMPT"]
    assert len(lines) == 2
    stream_key = find_key(db_path, "basic", stream=True)
    line = next(line for line in lines if line.startswith(stream_key[:12]))
    fields = line.split()
    assert fields[1:6] == ["POST", "/v1/messages", "claude-haiku-4-5", "yes", "200"]
    assert fields[6] == f"{len(recorded['stream']):,}"
    assert line.endswith(" Tell me a story")

    assert cli("list", "--cassette", "basic", "--db", db_path).output == result.output
    everything = cli("list", "--db", db_path).output.splitlines()
    assert everything[0].split()[0] == "CASSETTE" and len(everything) == 4
    assert {line.split()[0] for line in everything[1:]} == {"basic", "tools"}

    listed = json.loads(cli("list", "tools", "--json", "--db", db_path).output)
    assert [(r["cassette"], r["model"], r["stream"], r["status"]) for r in listed] == [
        ("tools", "claude-opus-5-5", True, 200)
    ]
    basic = json.loads(cli("list", "basic", "--json", "--db", db_path).output)
    assert sorted(r["prompt_excerpt"] for r in basic) == ["Hi there", "Tell me a story"]
    assert listed[0]["key"] == find_key(db_path, "tools", stream=True)
    assert listed[0]["response_size"] == len(recorded["tool"])


def test_unknown_cassette_is_named_with_the_known_ones(recorded, db_path):
    for args in (["list", "nope"], ["stats", "--cassette", "nope"], ["clear", "nope", "--yes"]):
        result = cli(*args, "--db", db_path)
        assert result.exit_code == 1
        assert "no cassette named 'nope'; cassettes: basic, tools" in result.output
        assert "Traceback" not in result.output


def test_stats_reports_what_the_seed_does_plus_compression(recorded, db_path):
    result = cli("stats", "--cassette", "basic", "--db", db_path)
    assert result.exit_code == 0, result.output
    text = result.output
    assert "Cassette: basic" in text and "Total recordings: 2" in text
    assert "  claude-opus-5-5: 1" in text and "  claude-haiku-4-5: 1" in text
    assert "Streaming responses: 1" in text and "Non-streaming responses: 1" in text
    response_bytes = len(recorded["text"]) + len(recorded["stream"])
    assert f"Total size: {response_bytes:,} bytes" in text
    assert "Oldest: " in text and "Newest: " in text

    data = json.loads(cli("stats", "--json", "--db", db_path).output)
    basic = {s["cassette"]: s for s in data["cassettes"]}["basic"]
    stored = [r for r in rows(db_path) if r["cassette"] == "basic"]
    assert basic["stored_size"] == sum(r["stored_size"] for r in stored)
    assert basic["raw_size"] == sum(r["request_size"] + r["response_size"] for r in stored)
    assert basic["compression_ratio"] == round(basic["raw_size"] / basic["stored_size"], 2)
    assert data["total"]["recordings"] == 3 and data["total"]["streaming"] == 2
    assert [s["cassette"] for s in data["cassettes"]] == ["basic", "tools"]
    assert "Cassette: basic" in cli("stats", "--cassette", "basic", "--db", db_path).output


def test_stats_over_many_cassettes_is_one_compact_table(recorded, db_path):
    text = cli("stats", "--db", db_path).output
    lines = text.splitlines()
    assert lines[0].split() == ["CASSETTE", "RECORDINGS", "STREAMED", "RESPONSES", "STORED", "RATIO", "MODELS", "NEWEST"]
    assert [line.split()[0] for line in lines[1:4]] == ["basic", "tools", "(all)"]
    assert lines[1].split()[1:3] == ["2", "1"] and lines[3].split()[1:3] == ["3", "2"]
    assert "claude-opus-5-5, claude-haiku-4-5" in lines[1] or "claude-haiku-4-5, claude-opus-5-5" in lines[1]
    assert lines[4] == "Sizes in bytes; `claude-vcr stats --cassette NAME` shows one in full."
    assert len(lines) == 5  # was about 20 lines per cassette


def test_an_emptied_cassette_says_so_in_words(recorded, db_path):
    key = find_key(db_path, "tools", stream=True)
    for row in [r for r in rows(db_path) if r["cassette"] == "tools"]:
        deleted = cli("delete", "--cassette", "tools", f"{row['key'][:12]}#{row['ordinal']}", "--db", db_path)
        assert deleted.exit_code == 0, deleted.output
    assert key
    listed = cli("cassettes", "--db", db_path).output
    tools = next(line for line in listed.splitlines() if line.startswith("tools "))
    assert "empty: no recordings" in tools and " - " not in tools
    stats = cli("stats", "--db", db_path).output
    assert "empty: no recordings" in next(line for line in stats.splitlines() if line.startswith("tools "))


def test_show_decodes_a_stream_event_by_event_with_blocks_joined(recorded, db_path):
    key = find_key(db_path, "tools", stream=True)
    result = cli("show", key[:8], "--db", db_path)
    assert result.exit_code == 0, result.output
    text = result.output
    assert f"Recording {key}" in text and "cassette tools" in text
    assert "Request: POST /v1/messages" in text
    assert "tools (1): get_weather" in text and "[0] user: What is the weather in Paris?" in text
    assert "Response: 200, text/event-stream" in text
    events = parse_sse(recorded["tool"])
    event_lines = [line for line in text.splitlines() if line[:8].strip().isdigit()]
    assert len(event_lines) == len(events)
    assert "message_start id=msg_scripted" in event_lines[0]
    assert any("input_json_delta" in line for line in event_lines)
    joined = json.dumps(accumulate(events)["content"][0]["input"])
    assert "[0] tool_use get_weather (toolu_scripted" in text and joined in text
    assert TEST_API_KEY not in text and "x-api-key" not in text.lower()


def test_show_text_stream_joins_the_text(recorded, db_path):
    key = find_key(db_path, "basic", stream=True)
    text = cli("show", key[:6], "--cassette", "basic", "--db", db_path).output
    message = accumulate(parse_sse(recorded["stream"]))
    assert f"[0] text: {message['content'][0]['text']}" in text
    assert 'stop_reason="end_turn"' in text


def test_show_decodes_a_stream_that_ends_in_an_error_as_far_as_it_goes():
    start = {"type": "message", "id": "msg_cut", "model": "m", "content": [], "usage": {"input_tokens": 3}}
    body = encode_events(
        [
            {"type": "message_start", "message": start},
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "toolu_1", "name": "Write", "input": {}},
            },
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"path": "a.py", "body": "pri'},
            },
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        ]
    )
    response = describe_response(200, [("content-type", "text/event-stream")], body)
    assert response["kind"] == "sse" and response["complete"] is False
    assert response["events"][-1] == "error overloaded_error: Overloaded"
    assert response["blocks"] == [
        {"index": 0, "type": "tool_use", "name": "Write", "id": "toolu_1", "input": {"path": "a.py"}}
    ]
    assert response["message"] == {"id": "msg_cut", "model": "m", "usage": {"input_tokens": 3}}
    whole = describe_response(200, [], encode_events([{"type": "message_start", "message": start}]))
    assert whole["kind"] == "sse" and whole["complete"] is True  # sniffed: no Content-Type


def test_show_raw_writes_the_exact_stored_bytes(recorded, db_path):
    for stream, received in ((True, recorded["stream"]), (False, recorded["text"])):
        key = find_key(db_path, "basic", stream=stream)
        result = cli("show", key, "--raw", "--db", db_path)
        assert result.exit_code == 0
        assert result.stdout_bytes == received


def test_show_json_for_scripts(recorded, db_path):
    key = find_key(db_path, "basic", stream=False)
    data = json.loads(cli("show", key[:10], "--json", "--db", db_path).output)
    assert data["key"] == key and data["cassette"] == "basic" and data["stream"] is False
    assert data["request"]["fields"]["model"] == "claude-opus-5-5"
    assert data["response"]["kind"] == "json"
    assert data["response"]["json"] == json.loads(recorded["text"])
    assert data["response"]["blocks"][0]["text"].startswith("Scripted reply number")
    assert all(name.lower() != "x-api-key" for name, _ in data["request"]["headers"])


def test_key_prefixes_short_unknown_and_ambiguous(db_path):
    first, second = recording(1), recording(2)
    second.key = first.key[:6] + second.key[6:]  # two keys sharing 6 hex digits
    save_all(db_path, [first, second])

    short = cli("show", first.key[:3], "--db", db_path)
    assert short.exit_code == 1 and "too short: give at least 4 hex digits" in short.output
    not_hex = cli("show", "xyz12", "--db", db_path)
    assert not_hex.exit_code == 1 and "is not a key prefix" in not_hex.output
    unknown = cli("delete", "ffffffff0000", "--db", db_path)
    assert unknown.exit_code == 1 and "no recording with a key starting 'ffffffff0000'" in unknown.output

    ambiguous = cli("show", first.key[:6], "--db", db_path)
    assert ambiguous.exit_code == 1
    assert "matches 2 recordings" in ambiguous.output
    assert first.key in ambiguous.output and second.key in ambiguous.output
    assert cli("show", first.key[:7], "--db", db_path).exit_code == 0
    with Catalog.open(db_path) as catalog, pytest.raises(Ambiguous) as caught:
        catalog.resolve(first.key[:6].upper())
    assert {m.key for m in caught.value.matches} == {first.key, second.key}


def test_repeats_are_addressed_with_their_ordinal(db_path):
    save_all(db_path, [recording(1, ordinal=0), recording(1, ordinal=1)])
    key = recording(1).key
    listed = cli("list", "bulk", "--db", db_path).output
    assert f"{key[:12]}#1 " in listed
    assert "matches 2 recordings" in cli("show", key[:8], "--db", db_path).output
    deleted = cli("delete", f"{key[:8]}#1", "--db", db_path)
    assert deleted.exit_code == 0, deleted.output
    assert [(r["key"], r["ordinal"]) for r in rows(db_path)] == [(key, 0)]


def test_delete_removes_exactly_one_recording(recorded, db_path):
    key = find_key(db_path, "basic", stream=True)
    result = cli("delete", key[:12], "--db", db_path)
    assert result.exit_code == 0, result.output
    assert f"Deleted {key[:12]} from cassette basic" in result.output
    assert sorted((r["cassette"], r["stream"]) for r in rows(db_path)) == [("basic", 0), ("tools", 1)]
    assert "no recording with a key starting" in cli("show", key[:12], "--db", db_path).output


def test_clear_asks_first(recorded, db_path):
    declined = cli("clear", "basic", "--db", db_path, input="n\n")
    assert declined.exit_code == 1 and "Delete all 2 recordings in cassette 'basic'?" in declined.output
    assert len(rows(db_path)) == 3
    accepted = cli("clear", "basic", "--db", db_path, input="y\n")
    assert accepted.exit_code == 0 and "2 recordings deleted" in accepted.output
    assert [r["cassette"] for r in rows(db_path)] == ["tools"]
    assert cli("clear", "tools", "--yes", "--db", db_path).exit_code == 0
    assert json.loads(cli("cassettes", "--json", "--db", db_path).output) == []


READ_ONLY = [
    ["cassettes"],
    ["list"],
    ["stats"],
    ["show", "abcd"],
    ["dump"],
    ["delete", "abcd"],
    ["clear", "x", "--yes"],
    ["compact"],
]


@pytest.mark.parametrize("args", READ_ONLY, ids=lambda a: a[0])
def test_commands_on_a_missing_db_say_so_and_create_nothing(tmp_path, args):
    missing = tmp_path / "nope" / "vcr.db"
    result = cli(*args, "--db", missing)
    if args == ["dump"]:  # git's textconv of a file that is not there shows nothing
        assert result.exit_code == 0 and result.output == ""
    else:
        assert result.exit_code == 1
        assert f"no database at {missing}" in result.output
    assert not missing.exists() and not missing.parent.exists()


def test_export_of_a_missing_db_creates_nothing(tmp_path):
    result = cli("export", tmp_path / "out", "--db", tmp_path / "nope.db")
    assert result.exit_code == 1 and "no database at" in result.output
    assert not (tmp_path / "nope.db").exists() and not (tmp_path / "out").exists()


def test_foreign_and_newer_dbs_are_refused_without_a_traceback(tmp_path):
    not_sqlite = tmp_path / "notes.db"
    not_sqlite.write_text("just some text\n")
    result = cli("list", "--db", not_sqlite)
    assert result.exit_code == 1 and "is not a SQLite database" in result.output
    assert "Traceback" not in result.output

    newer = tmp_path / "newer.db"
    save_all(newer, [recording(1)])
    conn = sqlite3.connect(newer)
    conn.execute(
        "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('claude-vcr', 'm999_future', 'x')"
    )
    conn.commit()
    conn.close()
    before = newer.read_bytes()
    source = tmp_path / "source.db"
    save_all(source, [recording(2)])
    assert cli("export", tmp_path / "exported", "--db", source).exit_code == 0
    for args in (["stats"], ["delete", recording(1).key[:8]], ["import", tmp_path / "exported"], ["compact"]):
        result = cli(*args, "--db", newer)
        assert result.exit_code == 1, args
        assert "written by a newer claude-vcr" in result.output and "Traceback" not in result.output
    assert newer.read_bytes() == before


def test_an_older_db_is_read_without_being_changed(tmp_path):
    from claude_vcr.migrations import migrations
    from sqlite_utils import Database

    old = tmp_path / "old.db"
    conn = sqlite3.connect(old)
    migrations.apply(Database(conn), stop_before="m002_recording_meta_and_catalog_index")
    conn.execute("INSERT INTO cassettes (name, key_scheme, created_at) VALUES ('legacy', 'v1', '2025-01-01')")
    conn.execute(
        "INSERT INTO recordings (cassette_id, key, key_scheme, method, path, status, request_headers, "
        "response_headers, chunks, created_at, request_size, response_size, stored_size) VALUES "
        "(1, 'abcdef0123456789', 'v1', 'POST', '/v1/messages', 200, '[]', '[]', '[]', "
        "'2025-01-01T00:00:00.000Z', 0, 0, 0)"
    )
    conn.commit()
    conn.close()
    before = old.read_bytes()
    result = cli("list", "legacy", "--db", old)
    assert result.exit_code == 0, result.output
    assert "abcdef012345" in result.output
    assert old.read_bytes() == before


def test_the_schema_lists_exactly_the_registered_steps():
    """The fast path compares a db's steps with these, so they must be exactly the registered ones."""
    from claude_vcr.migrations import migrations

    assert SCHEMA_STEPS == tuple(m.name for m in migrations._migrations)
    assert SCHEMA_STEPS[:2] == ("m001_cassettes_and_recordings", "m002_recording_meta_and_catalog_index")


def test_read_commands_import_neither_aiohttp_nor_sqlite_utils(recorded, db_path):
    key = find_key(db_path, "basic", stream=True)
    script = (
        "import sys\n"
        "from claude_vcr.cli import main\n"
        "for args in (['list'], ['stats'], ['cassettes'], ['show', sys.argv[2]], ['dump']):\n"
        "    try:\n"
        "        main([*args, '--db', sys.argv[1]])\n"
        "    except SystemExit as exit:\n"
        "        assert not exit.code, exit.code\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'sqlite_utils', 'numpy'))\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(db_path), key[:8]], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "HEAVY []"


def test_library_api(recorded, db_path):
    with Catalog.open(db_path) as catalog:
        assert [c.name for c in catalog.cassettes()] == ["basic", "tools"]
        assert len(catalog.recordings()) == 3
        [tools] = catalog.stats("tools")
        assert tools.recordings == 1 and tools.streaming == 1 and tools.by_model == {"claude-opus-5-5": 1}
        found = catalog.resolve(find_key(db_path, "tools", stream=True)[:5])
        detail = catalog.detail(found)
        assert detail.response_body == recorded["tool"]
        assert describe(detail)["response"]["blocks"][0]["input"] == {
            "city": "Paris",
            "unit": "celsius",
        }
        with pytest.raises(NotFound):
            catalog.recordings("nope")
    with pytest.raises(NoDatabase):
        Catalog.open(db_path.parent / "missing.db")
    with pytest.raises(DatabaseError):
        Catalog.open(db_path.parent)


def test_compact_gives_the_same_bytes_for_the_same_content_in_any_order(tmp_path):
    first, second = tmp_path / "first.db", tmp_path / "second.db"
    with Store(first) as store:
        store.ensure_cassette("a", key_scheme="v2", created_at="2025-01-01T00:00:00.000Z")
        store.ensure_cassette("b", key_scheme="v2", created_at="2025-01-01T00:00:00.000Z")
    second.write_bytes(first.read_bytes())  # same schema history, including the migration timestamps
    made = [
        recording(i, cassette="ab"[i % 2], created_at=f"2025-02-01T00:00:{i:02d}.000Z") for i in range(40)
    ]
    save_all(first, made)
    save_all(second, [recording(i, cassette="ab"[i % 2], size=5000) for i in range(40, 60)])  # then deleted
    save_all(second, list(reversed(made)))
    with Store(second) as store:
        store.delete_recordings([r["id"] for r in _ids(second) if r["key"] not in {m.key for m in made}])
    assert first.read_bytes() != second.read_bytes()
    size_before = second.stat().st_size

    assert cli("compact", "--db", first).exit_code == 0
    result = cli("compact", "--db", second)
    assert result.exit_code == 0 and "Compacted" in result.output
    assert first.read_bytes() == second.read_bytes()
    assert second.stat().st_size < size_before
    assert rows(second) == rows(first) and len(rows(first)) == 40
    conn = sqlite3.connect(second)
    assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()
    assert not list(tmp_path.glob("*.compacting")) and not list(tmp_path.glob("*-journal"))


def _ids(db: Path) -> list[dict]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    found = [dict(row) for row in conn.execute("SELECT id, key FROM recordings")]
    conn.close()
    return found


def test_every_command_has_help_with_an_example():
    from claude_vcr.cli import main

    for name, command in main.commands.items():
        assert command.help and "Example" in command.help, name
        assert command.help.splitlines()[0].endswith((".", ")")), name


def test_unknown_cassette_in_rekey_and_explain_is_one_line(recorded, db_path, tmp_path):
    from claude_vcr.errors import NotFound
    from claude_vcr.rekey import rekey

    request = tmp_path / "request.json"
    request.write_text(json.dumps(params("Hi there")))
    for args in (["rekey", "--cassette", "nope"], ["explain", request, "--cassette", "nope"]):
        result = cli(*args, "--db", db_path)
        assert result.exit_code == 1, args
        assert result.output == "Error: no cassette named 'nope'\n"
    with Store(db_path) as store, pytest.raises(NotFound):
        rekey(store, "nope")


def test_an_unknown_cassette_suggests_the_near_name_and_lists_at_most_ten(tmp_path):
    db = tmp_path / "many.db"
    names = [f"suite_{number:02d}" for number in range(15)] + ["shared_answers"]
    save_all(db, [recording(index, name) for index, name in enumerate(names)])
    typo = cli("list", "shared_answer", "--db", db)
    assert typo.exit_code == 1
    line = typo.output.strip()
    assert line.startswith("Error: no cassette named 'shared_answer' (did you mean 'shared_answers'?); cassettes: ")
    assert line.endswith("suite_08 and 6 more") and line.count(", ") == 9
    assert "did you mean" not in cli("list", "zzz", "--db", db).output
