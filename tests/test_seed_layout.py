"""The seed tool's cassette directories: export writes its layout, import reads it (ours losslessly, the
seed's with keys recomputed), and recordings imported from a seed directory replay through the proxy."""

from __future__ import annotations

import base64
import datetime
import json
import urllib.request
from pathlib import Path

import pytest
from claude_vcr.matching import Rules, key_request
from claude_vcr.store import Store

from tests.support.cassettes import cassette_rows, recording, rows, stored_json
from tests.support.cli import cli
from tests.support.client import TEST_API_KEY, WEATHER_TOOL, call, params
from tests.support.loopback import unreachable_url

SEED_ENTRY_FIELDS = {
    "cache_key",
    "model",
    "recorded_at",
    "request_size",
    "response_size",
    "stream",
    "status_code",
}


@pytest.fixture
def recorded(proxy, db_path):
    """Recorded through the proxy (two cassettes), plus bulk rows with repeats, meta and odd bodies."""
    recorder = proxy(mode="record")
    call(recorder.url + "/c/basic", **params("Hi there"))
    call(recorder.url + "/c/basic", **params("Stream please", stream=True))
    call(recorder.url + "/c/tools", **params("weather in Paris?", tools=[WEATHER_TOOL], stream=True))
    recorder.stop()
    bulk = [recording(1), recording(1, ordinal=1), recording(2, stream=True)]
    bulk[1].response_body += b"\n(second answer)"
    bulk[2].request_headers.append(("x-custom", "a"))
    bulk[2].request_headers.append(("x-custom", "b"))  # repeated header names keep their order
    odd = recording(3, cassette="odd")
    odd.method, odd.path, odd.request_body = "GET", "/v1/models?limit=2", b""
    binary = recording(4, cassette="odd")
    binary.request_body = b"\x00\x01 not json"
    with Store(db_path) as store:
        for item in bulk:
            store.save(item)
        odd.meta = {"imported_from": "mitm", "flow_id": "f-1"}
        store.save(odd)
        store.save(binary)
    return db_path


def test_export_writes_the_seed_layout(recorded, tmp_path):
    out = tmp_path / "cassettes"
    result = cli("export", out, "--cassette", "basic", "--db", recorded)
    assert result.exit_code == 0, result.output
    assert "Exported 2 recordings in 1 cassette(s)" in result.output
    assert [p.name for p in out.iterdir()] == ["basic"]
    index = json.loads((out / "basic" / "index.json").read_text())
    assert index["version"] == "1.0" and index["cassette"] == "basic"
    stored = {r["key"]: r for r in rows(recorded) if r["cassette"] == "basic"}
    assert set(index["recordings"]) == set(stored)
    with Store(recorded) as store:
        for key, entry in index["recordings"].items():
            assert set(entry) == SEED_ENTRY_FIELDS and entry["cache_key"] == key
            assert entry["status_code"] == 200 and entry["stream"] == bool(stored[key]["stream"])
            datetime.datetime.fromisoformat(entry["recorded_at"])  # the seed's tool parses it so
            files = out / "basic" / "recordings"
            assert sorted(p.name for p in files.glob(f"{key}.*")) == [
                f"{key}.meta.json",
                f"{key}.request.json",
                f"{key}.response.bin",
            ]
            original = store.catalog.recording("basic", key)
            assert (files / f"{key}.response.bin").read_bytes() == original.response_body
            assert (files / f"{key}.request.json").read_bytes() == original.request_body
            meta = json.loads((files / f"{key}.meta.json").read_text())
            assert meta["method"] == "POST" and meta["url"] == original.path and meta["status_code"] == 200
            assert meta["response_headers"] == dict(original.response_headers)
            assert meta["vcr"]["key"] == key and meta["vcr"]["chunks"] == [list(c) for c in original.timings]
            assert "x-api-key" not in {name.lower() for name in meta["request_headers"]}


def test_round_trip_db_dir_db_is_lossless(recorded, tmp_path):
    out = tmp_path / "exported"
    assert cli("export", out, "--db", recorded).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["basic", "bulk", "odd", "tools"]
    assert (out / "bulk" / "recordings" / f"{recording(1).key}-1.response.bin").exists()

    copy = tmp_path / "copy.db"
    result = cli("import", out, "--db", copy)
    assert result.exit_code == 0, result.output
    assert "Imported 8 recordings" in result.output and "replaced" not in result.output
    original, restored = rows(recorded), rows(copy)
    assert len(original) == 8
    for before, after in zip(original, restored, strict=True):
        assert before == after  # every column but the ids, the compressed blobs included
    assert cassette_rows(copy) == cassette_rows(recorded)

    with Store(recorded) as a, Store(copy) as b:
        for row in original:
            kept = a.catalog.recording(row["cassette"], row["key"], row["ordinal"])
            back = b.catalog.recording(row["cassette"], row["key"], row["ordinal"])
            assert back.response_body == kept.response_body and back.request_body == kept.request_body


def test_importing_again_replaces_keys_instead_of_adding(recorded, tmp_path):
    out = tmp_path / "exported"
    cli("export", out, "--cassette", "bulk", "--db", recorded)
    again = cli("import", out, "--db", recorded)
    assert again.exit_code == 0, again.output
    assert "2 keys replaced their older recordings" in again.output
    assert len(rows(recorded)) == 8


def test_export_refuses_a_non_empty_directory_unless_replace(recorded, tmp_path):
    out = tmp_path / "exported"
    assert cli("export", out, "--cassette", "bulk", "--db", recorded).exit_code == 0
    stale = out / "bulk" / "recordings" / ("0" * 64 + ".response.bin")
    stale.write_bytes(b"stale")
    keep = out / "bulk" / "NOTES.txt"
    keep.write_text("mine")
    refused = cli("export", out, "--cassette", "bulk", "--db", recorded)
    assert refused.exit_code == 1 and "use --replace" in refused.output
    assert cli("export", out, "--cassette", "bulk", "--replace", "--db", recorded).exit_code == 0
    assert not stale.exists() and keep.read_text() == "mine"
    assert len(list((out / "bulk" / "recordings").iterdir())) == 9
    unknown = cli("export", out, "--cassette", "nope", "--db", recorded)
    assert unknown.exit_code == 1 and "no cassette named 'nope'" in unknown.output


def _upstream_exchange(url: str, body: dict, path: str = "/v1/messages") -> tuple[bytes, dict[str, str]]:
    """POST a Messages request with urllib (as the seed's proxy forwarded it); the exact bytes back."""
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST")
    request.add_header("content-type", "application/json")
    request.add_header("x-api-key", TEST_API_KEY)
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=30) as response:
        return response.read(), dict(response.headers.items())


def _seed_key(body: dict) -> str:
    """The seed's own key, as its README documents it."""
    import hashlib

    fields = {f: body.get(f) for f in ("model", "messages", "system", "tools", "max_tokens", "temperature")}
    fields |= {f: body.get(f) for f in ("top_p", "top_k")}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def write_seed_cassette(directory: Path, upstream_url: str) -> dict[str, tuple[dict, bytes]]:
    """A cassette as the seed's tools write it: three files (import_dump.py) and one `<hash>.json` (its
    proxy), headers as dicts with the API key in them, local timestamps without a zone."""
    recordings_dir = directory / "recordings"
    recordings_dir.mkdir(parents=True)
    written: dict[str, tuple[dict, bytes]] = {}
    index: dict[str, dict] = {}
    three = params("Seed recorded this", stream=True)
    single = params("Seed proxy recorded this")
    for n, (body, layout) in enumerate(((three, "three"), (single, "single"))):
        content, headers = _upstream_exchange(upstream_url, body)
        seed_key = _seed_key(body)
        recorded_at = f"2025-12-17T12:0{n}:00.123456"
        request_headers = {
            "x-api-key": TEST_API_KEY,
            "anthropic-version": "2023-06-01",
            "content-type": "json",
        }
        if layout == "three":
            (recordings_dir / f"{seed_key}.request.json").write_text(json.dumps(body, indent=2))
            (recordings_dir / f"{seed_key}.response.bin").write_bytes(content)
            meta = {
                "cache_key": seed_key,
                "url": "https://api.anthropic.com/v1/messages",
                "method": "POST",
                "request_headers": request_headers,
                "response_headers": headers,
                "status_code": 200,
                "recorded_at": recorded_at,
                "imported_from": "dump",
                "duration": 1.25,
            }
            (recordings_dir / f"{seed_key}.meta.json").write_text(json.dumps(meta, indent=2))
        else:
            single_file = {
                "cache_key": seed_key,
                "meta": {
                    "cache_key": seed_key,
                    "url": "https://api.anthropic.com/v1/messages?beta=true",
                    "method": "POST",
                    "request_headers": request_headers,
                    "recorded_at": recorded_at,
                    "duration": 0.5,
                },
                "request": body,
                "response": {
                    "status_code": 200,
                    "headers": headers,
                    "content": base64.b64encode(content).decode("ascii"),
                },
            }
            (recordings_dir / f"{seed_key}.json").write_text(json.dumps(single_file, indent=2))
        index[seed_key] = {
            "cache_key": seed_key,
            "model": body["model"],
            "recorded_at": recorded_at,
            "request_size": len(json.dumps(body)),
            "response_size": len(content),
            "stream": body.get("stream", False),
            "status_code": 200,
        }
        written[seed_key] = (body, content)
    (directory / "index.json").write_text(
        json.dumps({"version": "1.0", "cassette": directory.name, "recordings": index}, indent=2)
    )
    return written


def test_import_of_a_seed_written_directory_recomputes_keys_and_replays(proxy, upstream, db_path, tmp_path):
    written = write_seed_cassette(tmp_path / "cassettes" / "seeded", upstream.url)
    result = cli("import", tmp_path / "cassettes", "--db", db_path)
    assert result.exit_code == 0, result.output
    assert "Imported 2 recordings" in result.output and "seeded: 2" in result.output

    stored = {r["key"]: r for r in rows(db_path)}
    for seed_key, (body, _) in written.items():
        target = "/v1/messages?beta=true" if "proxy" in body["messages"][0]["content"] else "/v1/messages"
        path, _, query = target.partition("?")
        ours = key_request("POST", path, query, json.dumps(body).encode(), Rules()).key
        assert ours in stored and ours != seed_key
        row = stored[ours]
        assert json.loads(row["meta"])["seed_key"] == seed_key
        assert json.loads(row["meta"])["imported_from"] == "seed"
        assert row["path"] == target and row["model"] == body["model"]
        assert row["created_at"].endswith("Z") and row["duration_ms"] in (1250.0, 500.0)
        headers = {name.lower() for name, _ in stored_json(row["request_headers"])}
        assert "x-api-key" not in headers and "anthropic-version" in headers
    assert TEST_API_KEY.encode() not in db_path.read_bytes()

    upstream.stop()
    replayer = proxy(mode="replay", upstream=unreachable_url())
    for body, content in written.values():
        if "proxy" in body["messages"][0]["content"]:  # recorded at ?beta=true, as Claude Code calls
            replayed, _ = _upstream_exchange(replayer.url + "/c/seeded", body, "/v1/messages?beta=true")
        else:
            replayed = call(replayer.url + "/c/seeded", **body)
        assert replayed == content


def test_a_failed_import_leaves_the_db_as_it_was(recorded, tmp_path):
    out = tmp_path / "exported"
    cli("export", out, "--db", recorded)
    broken = next((out / "tools" / "recordings").glob("*.meta.json"))
    broken.write_text("{ not json")
    before = recorded.read_bytes()
    result = cli("import", out, "--db", recorded)
    assert result.exit_code == 1
    assert f"cannot read {broken}" in result.output and "Traceback" not in result.output
    assert recorded.read_bytes() == before

    fresh = tmp_path / "fresh.db"
    assert cli("import", out, "--db", fresh).exit_code == 1
    assert not fresh.exists()  # it was not there before


def test_import_refuses_a_newer_export_format_and_non_cassette_dirs(recorded, tmp_path):
    out = tmp_path / "exported"
    cli("export", out, "--cassette", "basic", "--db", recorded)
    index_file = out / "basic" / "index.json"
    index = json.loads(index_file.read_text())
    index["vcr"]["format"] = 99
    index_file.write_text(json.dumps(index))
    result = cli("import", out, "--db", tmp_path / "new.db")
    assert result.exit_code == 1 and "newer claude-vcr (format 99)" in result.output

    empty = tmp_path / "empty"
    empty.mkdir()
    result = cli("import", empty, "--db", tmp_path / "new.db")
    assert result.exit_code == 1 and "holds no cassettes" in result.output


def test_import_of_one_cassette_dir_and_of_a_chosen_cassette(recorded, tmp_path):
    out = tmp_path / "exported"
    cli("export", out, "--db", recorded)
    one = tmp_path / "one.db"
    assert cli("import", out / "tools", "--db", one).exit_code == 0
    assert {r["cassette"] for r in rows(one)} == {"tools"}
    chosen = tmp_path / "chosen.db"
    assert cli("import", out, "--cassette", "odd", "--db", chosen).exit_code == 0
    assert {r["cassette"] for r in rows(chosen)} == {"odd"}
    missing = cli("import", out, "--cassette", "nope", "--db", chosen)
    assert missing.exit_code == 1 and "no cassette 'nope'" in missing.output
