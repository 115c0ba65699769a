"""`claude-vcr import FILE.mitm` on real dumps written by `mitmdump -w` in reverse-proxy mode in front of the
scripted upstream: what is imported and skipped, secrets, replay byte for byte, bad files, flat memory."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
import tracemalloc
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import pytest
from claude_vcr.catalog import Catalog
from claude_vcr.interchange.mitm import MitmFormatError, read_flows
from claude_vcr.interchange.mitm_import import SKIP_NO_BODY, SKIP_PATH, SKIP_STATUS, import_dump
from claude_vcr.store import Store

from tests.support.cassettes import rows, stored_json
from tests.support.cli import cli
from tests.support.client import TEST_API_KEY, WEATHER_TOOL, call, client, params
from tests.support.loopback import serving, unreachable_url
from tests.support.mitm import require_mitmdump, start_mitmdump, write_synthetic_dump
from tests.support.upstream import ScriptedUpstream

COUNT_TOKENS = {"model": "claude-opus-5-5", "messages": [{"role": "user", "content": "count me"}]}


@dataclass
class Capture:
    """A finished dump and what the client received for each request, in order."""

    dump: Path
    received: list[tuple[str, bytes]]


def send_all(url: str) -> list[tuple[str, bytes]]:
    """Claude-Code-like traffic: JSON and streamed messages, tool use, gzip, count_tokens, models,
    telemetry, a 429, a repeat of the first request and a stream big enough to be streamed by mitmproxy."""
    sdk = client(url)
    received = [
        ("text", call(url, **params("Hello plain"))),
        ("stream", call(url, **params("Stream it", stream=True))),
        ("tool", call(url, **params("weather in Paris?", tools=[WEATHER_TOOL], stream=True))),
        ("gzip", call(url, **params("GZIP please"))),
        ("count", sdk.messages.with_raw_response.count_tokens(**COUNT_TOKENS).http_response.content),
        ("models", sdk.models.with_raw_response.list().http_response.content),
    ]
    telemetry = urllib.request.Request(url + "/api/event_logging/batch", data=b'{"events":[]}', method="POST")
    telemetry.add_header("x-api-key", TEST_API_KEY)
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(telemetry, timeout=30) as response:
        received.append(("telemetry", response.read()))
    with pytest.raises(anthropic.RateLimitError):
        call(url, **params("STATUS:429 please"))
    received.append(("429", b""))
    received.append(("repeat", call(url, **params("Hello plain"))))
    received.append(("big", call(url, **params("BIG:40 please", stream=True))))
    return received


@pytest.fixture(scope="module")
def captures(loop_thread, tmp_path_factory) -> Iterator[dict[str, Capture]]:
    """The same traffic through two mitmdumps: 'plain' keeps every body, 'streaming' streams those over 16k."""
    exe = require_mitmdump()
    workdir = tmp_path_factory.mktemp("mitm-import")
    configs = {"plain": [], "streaming": ["--set", "stream_large_bodies=16k"]}
    with serving(loop_thread, ScriptedUpstream()) as upstream:
        dumps = {
            name: start_mitmdump(exe, name, upstream.port, workdir, options) for name, options in configs.items()
        }
        try:
            deadline = time.monotonic() + 60
            for dump in dumps.values():
                dump.wait_ready(deadline)
            received = {name: send_all(f"http://127.0.0.1:{d.port}") for name, d in dumps.items()}
            for dump in dumps.values():
                dump.stop()
            yield {name: Capture(d.dump, received[name]) for name, d in dumps.items()}
        finally:
            for dump in dumps.values():
                if dump.process.poll() is None:
                    dump.process.kill()
                    dump.process.wait(10)


def test_a_real_dump_imports_and_replays_byte_for_byte(captures, proxy, upstream, db_path):
    capture = captures["plain"]
    result = cli("import", capture.dump, "--db", db_path)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Imported 8 recordings from 10 flows into default"
    assert sorted(lines[1:]) == sorted([f"  skipped 1: {SKIP_PATH}", f"  skipped 1: {SKIP_STATUS}"])

    stored = rows(db_path)
    assert {r["cassette"] for r in stored} == {"default"}
    assert sorted((r["method"], r["path"]) for r in stored) == sorted(
        [("POST", "/v1/messages")] * 6 + [("POST", "/v1/messages/count_tokens"), ("GET", "/v1/models")]
    )
    assert all(stored_json(r["fingerprints"]) for r in stored if r["method"] == "POST")  # as recorded ones do
    assert sorted(r["ordinal"] for r in stored if r["path"] == "/v1/messages").count(1) == 1  # the repeat
    for row in stored:
        meta = json.loads(row["meta"])
        assert meta["imported_from"] == "mitm" and meta["source"] == capture.dump.name and meta["flow_id"]
        names = {name.lower() for name, _ in stored_json(row["request_headers"])}
        assert not names & {"x-api-key", "authorization", "content-length", "host"}
        response_names = {name.lower() for name, _ in stored_json(row["response_headers"])}
        assert not response_names & {"set-cookie", "content-encoding", "content-length"}
        assert row["created_at"].endswith("Z") and row["duration_ms"] is not None
    raw = db_path.read_bytes()
    assert TEST_API_KEY.encode() not in raw and b"cookie-secret" not in raw

    upstream.stop()
    replayer = proxy(mode="replay", upstream=unreachable_url())
    replayed = dict(send_replay(replayer.url))
    for label, expected in capture.received:
        if label in replayed:
            assert replayed[label] == expected, label
    assert set(replayed) == {"text", "stream", "tool", "gzip", "count", "models", "repeat", "big"}
    assert replayed["gzip"].startswith(b"{")  # stored decoded: mitmproxy kept the gzip bytes


def send_replay(url: str) -> Iterator[tuple[str, bytes]]:
    """The capture's requests again, in order, minus telemetry and the 429 (never recorded)."""
    sdk = client(url)
    yield "text", call(url, **params("Hello plain"))
    yield "stream", call(url, **params("Stream it", stream=True))
    yield "tool", call(url, **params("weather in Paris?", tools=[WEATHER_TOOL], stream=True))
    yield "gzip", call(url, **params("GZIP please"))
    yield "count", sdk.messages.with_raw_response.count_tokens(**COUNT_TOKENS).http_response.content
    yield "models", sdk.models.with_raw_response.list().http_response.content
    yield "repeat", call(url, **params("Hello plain"))
    yield "big", call(url, **params("BIG:40 please", stream=True))


def test_all_paths_and_record_errors_take_everything(captures, db_path):
    result = cli(
        "import",
        captures["plain"].dump,
        "--all-paths",
        "--record-errors",
        "--cassette",
        "all",
        "--db",
        db_path,
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Imported 10 recordings from 10 flows into all"
    stored = rows(db_path)
    assert sorted(r["status"] for r in stored) == [200] * 9 + [429]
    assert "/api/event_logging/batch" in {r["path"] for r in stored}


def test_flows_whose_bodies_mitmproxy_did_not_keep_are_skipped_and_counted(captures, db_path):
    result = cli("import", captures["streaming"].dump, "--db", db_path)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "Imported 7 recordings from 10 flows into default"
    assert f"  skipped 1: {SKIP_NO_BODY}" in result.output.splitlines()
    with Catalog.open(db_path) as catalog:
        asked = [catalog.detail(r).request_body for r in catalog.recordings()]
    assert len(asked) == 7 and not any(b"BIG:40" in body for body in asked)


def test_importing_the_same_dump_again_replaces_instead_of_adding(captures, db_path):
    assert cli("import", captures["plain"].dump, "--db", db_path).exit_code == 0
    first = rows(db_path)
    again = cli("import", captures["plain"].dump, "--db", db_path)
    assert again.exit_code == 0
    assert "7 keys replaced their older recordings" in again.output
    assert rows(db_path) == first


def test_a_truncated_dump_names_the_flows_read_and_changes_nothing(captures, db_path, tmp_path):
    dump = captures["plain"].dump
    assert cli("import", dump, "--cassette", "before", "--db", db_path).exit_code == 0
    before = db_path.read_bytes()
    with dump.open("rb") as stream:
        offsets = [flow.offset for flow in read_flows(stream)]
    truncated = tmp_path / "truncated.mitm"
    truncated.write_bytes(dump.read_bytes()[: offsets[4] + 100])
    result = cli("import", truncated, "--cassette", "after", "--db", db_path)
    assert result.exit_code == 1
    assert "truncated" in result.output and "4 flows read before the problem" in result.output
    assert "nothing was imported" in result.output and "Traceback" not in result.output
    assert db_path.read_bytes() == before

    fresh = tmp_path / "fresh.db"
    assert cli("import", truncated, "--db", fresh).exit_code == 1
    assert not fresh.exists()


def test_a_file_that_is_not_a_dump_is_refused_clearly(tmp_path, db_path):
    not_a_dump = tmp_path / "capture.json"
    not_a_dump.write_text('{"flows": []}')
    result = cli("import", not_a_dump, "--db", db_path)
    assert result.exit_code == 1
    assert "not a readable mitmproxy dump" in result.output and "(a JSON file?)" in result.output
    assert "0 flows read" in result.output
    bad_name = cli("import", not_a_dump, "--cassette", "../up", "--db", db_path)
    assert bad_name.exit_code == 1 and "invalid cassette name" in bad_name.output


def _peak_import(path: Path, db: Path) -> tuple[int, list[int]]:
    positions: list[int] = []
    with Store(db) as store, path.open("rb") as stream:
        tracemalloc.start()
        try:
            report = import_dump(store, stream, "big", progress=positions.append)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert report.imported == len(positions)
    return peak, positions


def test_import_streams_with_memory_flat_in_file_size(tmp_path):
    small, large = tmp_path / "small.mitm", tmp_path / "large.mitm"
    small_size = write_synthetic_dump(small, 100, response_bytes=40_000)
    large_size = write_synthetic_dump(large, 500, response_bytes=40_000)
    assert large_size > 19_000_000 and large_size > 4 * small_size
    small_peak, _ = _peak_import(small, tmp_path / "small.db")
    large_peak, positions = _peak_import(large, tmp_path / "large.db")
    assert positions == sorted(positions) and positions[-1] == large_size
    assert large_peak < 4_000_000, (
        f"peak {large_peak:,} bytes of Python memory for a {large_size:,}-byte dump"
    )
    assert large_peak < small_peak * 1.5 + 500_000


def test_a_bad_dump_through_the_library_rolls_back(tmp_path):
    dump = tmp_path / "cut.mitm"
    write_synthetic_dump(dump, 5)
    dump.write_bytes(dump.read_bytes()[:-10])
    with Store(tmp_path / "lib.db") as store, dump.open("rb") as stream:
        with pytest.raises(MitmFormatError) as caught:
            import_dump(store, stream, "x")
        assert caught.value.flows_read == 4
        assert store.count() == 0
        assert store.catalog.cassette_rules("x") is None


def test_a_large_dump_shows_a_progress_bar_on_a_terminal(tmp_path):
    """Run in a real pseudo-terminal: click draws the bar only there, and only for files over 8 MB."""
    dump = tmp_path / "large.mitm"
    size = write_synthetic_dump(dump, 450, response_bytes=20_000)
    assert size > 8 * 1024 * 1024
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "claude_vcr", "import", str(dump), "--db", str(tmp_path / "bar.db")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=secondary,
    )
    os.close(secondary)
    drawn = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closes when the process exits
            break
        if not chunk:
            break
        drawn += chunk
    out, _ = process.communicate(timeout=120)
    os.close(primary)
    assert process.returncode == 0
    assert out.decode().startswith("Imported 450 recordings from 450 flows")
    assert b"Importing" in drawn and b"100%" in drawn

    piped = cli("import", dump, "--cassette", "quiet", "--db", tmp_path / "bar.db")
    assert "Importing" not in piped.output
