"""The proxy over plain HTTP: modes, matching, cassettes, headers, secrets, streaming and failures."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from claude_vcr.store import Store

from tests.support.cassettes import rows, stored_json
from tests.support.client import MESSAGES, TEST_API_KEY, body, post, reset
from tests.support.loopback import silent_upstream, unreachable_url


def test_auto_records_a_miss_and_replays_a_hit(proxy, upstream, db_path):
    server = proxy(mode="auto")
    first = post(server.url + MESSAGES, body())
    reset(server.url)
    second = post(server.url + MESSAGES, body())
    assert first[0] == second[0] == 200
    assert first[2] == second[2]
    assert first[1]["x-vcr-outcome"] == "recorded" and second[1]["x-vcr-outcome"] == "hit"
    assert len(upstream.script.message_calls()) == 1
    server.stop()
    [row] = rows(db_path)
    assert (row["method"], row["path"], row["model"], row["stream"], row["status"]) == (
        "POST",
        MESSAGES,
        "claude-opus-5-5",
        0,
        200,
    )
    assert row["key_scheme"] == "v2" and row["request_size"] > 0 and row["stored_size"] > 0


def test_record_mode_always_forwards_and_a_new_run_replaces_the_old(proxy, upstream, db_path):
    old = proxy(mode="record")
    post(old.url + MESSAGES, body())
    post(old.url + MESSAGES, body())
    old.stop()
    server = proxy(mode="record")
    newest = post(server.url + MESSAGES, body())[2]
    assert len(upstream.calls) == 3
    server.stop()
    replay = proxy(mode="replay", upstream=unreachable_url())
    assert post(replay.url + MESSAGES, body())[2] == newest
    assert [row["ordinal"] for row in rows(db_path)] == [0]


@pytest.mark.parametrize("mode", ["record", "auto"])
def test_repeated_requests_replay_in_order_then_repeat_the_last(proxy, upstream, db_path, mode):
    recorder = proxy(mode=mode)
    answers = [post(recorder.url + MESSAGES, body())[2] for _ in range(3)]
    assert len(set(answers)) == 3  # the upstream numbers its answers
    recorder.stop()
    assert sorted(row["ordinal"] for row in rows(db_path)) == [0, 1, 2]
    upstream.stop()
    replay = proxy(mode="replay", upstream=unreachable_url())
    replayed = [post(replay.url + MESSAGES, body()) for _ in range(4)]
    assert [raw for _, _, raw in replayed] == answers + [answers[-1]]
    assert replayed[-1][1]["x-vcr-outcome"] == "hit-repeat"
    reset(replay.url)
    assert post(replay.url + MESSAGES, body())[2] == answers[0]


def test_exhausted_miss_never_reaches_the_upstream(proxy, upstream):
    recorder = proxy(mode="record")
    first = post(recorder.url + MESSAGES, body())[2]
    recorder.stop()
    replay = proxy(mode="replay", exhausted="miss")
    assert post(replay.url + MESSAGES, body())[2] == first
    status, _, raw = post(replay.url + MESSAGES, body())
    assert status == 400 and "already replayed" in json.loads(raw)["error"]["message"]
    assert len(upstream.calls) == 1
    other = post(replay.url + "/c/other_cassette" + MESSAGES, body())  # a new cassette name starts afresh
    assert other[0] == 400 and "no recording" in json.loads(other[2])["error"]["message"]


def test_strict_replay_miss_is_fast_and_never_touches_upstream(proxy):
    # fast: the answer comes although the upstream would never answer; untouched: no connection reached it
    with silent_upstream() as silent:
        server = proxy(mode="replay", cassette="basic_tests", upstream=silent.url)
        status, headers, raw = post(server.url + MESSAGES, body("never recorded"))
        assert status == 400
        assert silent.connections() == 0
    error = json.loads(raw)
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert "'basic_tests'" in error["error"]["message"]
    assert headers["x-vcr-key"][:12] in error["error"]["message"]
    assert headers["x-should-retry"] == "false"


def test_replay_fallback_forwards_and_records(proxy, upstream, db_path):
    server = proxy(mode="replay", fallback="fallback")
    assert post(server.url + MESSAGES, body())[1]["x-vcr-outcome"] == "recorded"
    reset(server.url)
    assert post(server.url + MESSAGES, body())[1]["x-vcr-outcome"] == "hit"
    assert len(upstream.calls) == 1


def test_key_ignores_json_layout_and_metadata(proxy, upstream):
    server = proxy(mode="auto")
    payload = body(metadata={"user_id": "session-1"})
    post(server.url + MESSAGES, payload)
    reset(server.url)
    reordered = dict(reversed(list(body(metadata={"user_id": "session-2"}).items())))
    spaced = json.dumps(reordered, indent=3).encode()
    assert post(server.url + MESSAGES, spaced)[1]["x-vcr-outcome"] == "hit"
    assert len(upstream.calls) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"tool_choice": {"type": "any"}},
        {"stop_sequences": ["END"]},
        {"thinking": {"type": "enabled", "budget_tokens": 1024}},
        {"output_config": {"effort": "low"}},
        {"temperature": 0.5},
    ],
    ids=lambda change: next(iter(change)),
)
def test_every_other_field_changes_the_key(proxy, upstream, change):
    server = proxy(mode="auto")
    post(server.url + MESSAGES, body())
    assert post(server.url + MESSAGES, body() | change)[1]["x-vcr-outcome"] == "recorded"
    assert len(upstream.calls) == 2


def test_query_and_path_are_part_of_the_key(proxy, upstream):
    server = proxy(mode="auto")
    post(server.url + MESSAGES + "?beta=true", body())
    reset(server.url)
    assert post(server.url + MESSAGES + "?beta=true", body())[1]["x-vcr-outcome"] == "hit"
    assert post(server.url + MESSAGES, body())[1]["x-vcr-outcome"] == "recorded"
    assert upstream.calls[0].path == "/v1/messages?beta=true"


def test_other_paths_are_recorded_and_replayed(proxy, upstream):
    server = proxy(mode="record")
    counted = post(server.url + "/v1/messages/count_tokens?beta=true", body())
    models = post(server.url + "/v1/models?limit=1000", b"", method="GET")
    assert counted[0] == models[0] == 200
    server.stop()
    upstream.stop()
    replay = proxy(mode="replay", upstream=unreachable_url())
    assert post(replay.url + "/v1/messages/count_tokens?beta=true", body())[2] == counted[2]
    assert post(replay.url + "/v1/models?limit=1000", b"", method="GET")[2] == models[2]


def test_non_json_bodies_are_keyed_by_their_bytes(proxy, upstream):
    server = proxy(mode="auto")
    post(server.url + "/v1/files", b"plain bytes", {"content-type": "text/plain"})
    reset(server.url)
    assert post(server.url + "/v1/files", b"plain bytes")[1]["x-vcr-outcome"] == "hit"
    assert post(server.url + "/v1/files", b"other bytes")[1]["x-vcr-outcome"] == "recorded"


def test_cassette_from_header_and_url_prefix(proxy, upstream, db_path):
    server = proxy(mode="auto")
    post(server.url + MESSAGES, body(), {"X-VCR-Cassette": "from_header"})
    post(server.url + "/c/from_prefix" + MESSAGES + "?beta=true", body())
    post(server.url + MESSAGES, body())
    assert len(upstream.calls) == 3  # the same request in three cassettes
    assert upstream.calls[1].path == "/v1/messages?beta=true"
    reset(server.url)
    assert post(server.url + "/c/from_header" + MESSAGES, body())[1]["x-vcr-outcome"] == "hit"
    server.stop()
    assert sorted(row["cassette"] for row in rows(db_path)) == ["default", "from_header", "from_prefix"]


@pytest.mark.parametrize("name", ["..", "a%2Fb", "bad%00name", ".hidden", "x" * 200, "sp%20ace"])
def test_cassette_names_must_be_plain(proxy, upstream, name):
    server = proxy(mode="auto")
    status, _, raw = post(server.url + f"/c/{name}" + MESSAGES, body())
    assert status == 400
    assert "invalid cassette name" in json.loads(raw)["error"]["message"]
    status, _, _ = post(server.url + MESSAGES, body(), {"X-VCR-Cassette": "../etc"})
    assert status == 400
    assert upstream.calls == []


def test_telemetry_and_probe_are_never_stored(proxy, upstream, db_path):
    server = proxy(mode="auto")
    assert post(server.url + "/api/event_logging/batch", {"events": [1]})[0] == 200
    assert post(server.url + "/api/hello", b"", method="HEAD")[0] == 200
    assert [c.path for c in upstream.calls] == ["/api/event_logging/batch", "/api/hello"]
    server.stop()
    assert rows(db_path) == []
    upstream.stop()
    replay = proxy(mode="replay", upstream=unreachable_url())
    status, _, raw = post(replay.url + "/api/event_logging/batch", {"events": [2]})
    assert (status, json.loads(raw)) == (200, {})
    assert post(replay.url + "/api/hello", b"", method="HEAD")[0] == 200


def test_replay_keeps_the_headers_clients_rely_on(proxy, upstream):
    server = proxy(mode="record")
    recorded = post(server.url + MESSAGES, body(stream=True))
    server.stop()
    replay = proxy(mode="replay", upstream=unreachable_url())
    status, headers, raw = post(replay.url + MESSAGES, body(stream=True))
    assert (status, raw) == (200, recorded[2])
    assert headers["content-type"] == "text/event-stream; charset=utf-8"
    assert headers["request-id"] == recorded[1]["request-id"] == "req_scripted0001"
    assert headers["anthropic-ratelimit-requests-limit"] == "4000"
    assert "set-cookie" not in headers  # a cookie is a secret: never stored
    assert headers.get("content-length") in (None, str(len(raw)))


def test_errors_pass_through_and_are_stored_only_when_asked(proxy, upstream, db_path):
    server = proxy(mode="auto")
    status, headers, raw = post(server.url + MESSAGES, body("STATUS:429"))
    assert status == 429 and headers["retry-after"] == "7"
    assert json.loads(raw)["error"]["type"] == "rate_limit_error"
    assert post(server.url + MESSAGES, body("STATUS:429"))[1]["x-vcr-outcome"] == "passthrough"
    server.stop()
    assert rows(db_path) == []
    recorder = proxy(mode="auto", record_errors=True)
    post(recorder.url + MESSAGES, body("STATUS:529"))
    reset(recorder.url)
    again = post(recorder.url + MESSAGES, body("STATUS:529"))
    assert again[0] == 529 and again[1]["x-vcr-outcome"] == "hit" and again[1]["retry-after"] == "7"


def test_compressed_upstream_answers_are_stored_decoded(proxy, upstream, db_path):
    server = proxy(mode="auto")
    status, headers, raw = post(server.url + MESSAGES, body("GZIP please"))
    assert status == 200 and "content-encoding" not in headers
    assert json.loads(raw)["type"] == "message"
    assert upstream.calls[0].headers["Accept-Encoding"] == "identity"
    server.stop()
    with Store(db_path) as store:
        [row] = rows(db_path)
        assert store.catalog.recording("default", row["key"]).response_body == raw


def test_secrets_never_reach_the_db(proxy, upstream, db_path):
    server = proxy(mode="auto")
    secret_headers = {
        "authorization": "Bearer sk-ant-oat01-BEARERSECRET",
        "cookie": "session=COOKIESECRET",
        "x-auth-token": "TOKENSECRET",
    }
    post(server.url + MESSAGES, body(), secret_headers)
    post(server.url + MESSAGES, body(stream=True), secret_headers)
    assert upstream.calls[0].headers["x-api-key"] == TEST_API_KEY  # still forwarded
    assert upstream.calls[0].headers["authorization"].startswith("Bearer ")
    server.stop()
    raw_db = db_path.read_bytes()
    for secret in (TEST_API_KEY, "BEARERSECRET", "COOKIESECRET", "TOKENSECRET", "cookie-secret"):
        assert secret.encode() not in raw_db
    with Store(db_path) as store:
        for row in rows(db_path):
            recording = store.catalog.recording("default", row["key"])
            stored = json.dumps(recording.request_headers + recording.response_headers)
            assert TEST_API_KEY not in stored and "secret" not in stored.lower()
            assert "anthropic-version" in stored.lower()


def test_fifty_concurrent_recordings(proxy, upstream, db_path):
    server = proxy(mode="record")
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(
            pool.map(
                lambda i: post(server.url + MESSAGES, body(f"request {i}", stream=i % 2 == 0)), range(50)
            )
        )
    assert [status for status, _, _ in results] == [200] * 50
    server.stop()
    assert len(rows(db_path)) == 50
    assert not Path(f"{db_path}-wal").exists() and not Path(f"{db_path}-shm").exists()
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


def test_stream_reaches_the_client_before_the_upstream_finishes(proxy, upstream, db_path, loop_thread):
    server = proxy(mode="record")

    async def first_event_then_rest() -> tuple[bytes, int, bytes]:
        async with aiohttp.ClientSession() as session:
            async with session.post(server.url + MESSAGES, json=body("SLOW", stream=True)) as response:
                first = await response.content.readuntil(b"\n\n")
                finished_when_first_arrived = upstream.script.finished_streams
                upstream.script.release()
                return first, finished_when_first_arrived, await response.read()

    first, finished, rest = loop_thread.run(first_event_then_rest())
    assert first.startswith(b"event: message_start")
    assert finished == 0
    assert rest.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    server.stop()
    [row] = rows(db_path)
    chunks = stored_json(row["timings"])
    assert sum(size for size, _ in chunks) == row["response_size"] == len(first) + len(rest)
    assert [ms for _, ms in chunks] == sorted(ms for _, ms in chunks)
    assert row["ttfb_ms"] is not None and row["duration_ms"] >= row["ttfb_ms"]


def test_client_hanging_up_mid_stream_stores_nothing(proxy, upstream, db_path):
    server = proxy(mode="record")
    host, port = server.url.removeprefix("http://").split(":")
    payload = json.dumps(body("BIG:400", stream=True)).encode()
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        received = b""
        while b"message_start" not in received:
            received += sock.recv(65536)
    upstream.script.wait_ended()  # the proxy notices the closed socket on its next write and drops the upstream
    server.stop()
    assert upstream.script.finished_streams == 0
    assert rows(db_path) == []


def test_upstream_breaking_mid_stream_stores_nothing(proxy, upstream, db_path):
    server = proxy(mode="record")
    with pytest.raises(http.client.IncompleteRead):  # a stream cut short must not look complete
        post(server.url + MESSAGES, body("BREAK", stream=True))
    server.stop()
    assert rows(db_path) == []


def test_upstream_down_is_a_502_in_anthropic_shape(proxy, upstream):
    server = proxy(mode="auto", upstream=unreachable_url())
    status, _, raw = post(server.url + MESSAGES, body())
    assert status == 502
    error = json.loads(raw)["error"]
    assert error["type"] == "api_error" and "could not reach the upstream" in error["message"]


def test_event_loop_keeps_serving_while_a_stream_is_held(proxy, upstream, loop_thread):
    server = proxy(mode="auto")

    async def both() -> tuple[int, int]:
        async with aiohttp.ClientSession() as session:
            held = await session.post(server.url + MESSAGES, json=body("SLOW", stream=True))
            await held.content.readuntil(b"\n\n")
            async with session.post(server.url + MESSAGES, json=body("quick")) as quick:
                quick_status = quick.status
            upstream.script.release()
            await held.read()
            held.release()
            return quick_status, held.status

    assert loop_thread.run(asyncio.wait_for(both(), 20)) == (200, 200)


@pytest.mark.parametrize("recorded_stream", [True, False], ids=["stream-recorded", "json-recorded"])
def test_stream_and_json_requests_share_recordings(proxy, upstream, recorded_stream):
    import anthropic

    recorder = proxy(mode="record")
    sdk = anthropic.Anthropic(base_url=recorder.url, api_key=TEST_API_KEY, max_retries=0)
    params = {
        "model": "claude-opus-5-5",
        "max_tokens": 64,
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": "weather in Paris?"}],
    }
    if recorded_stream:
        with sdk.messages.stream(**params) as stream:
            recorded = stream.get_final_message().model_dump()
    else:
        recorded = sdk.messages.create(**params).model_dump()
    recorder.stop()
    upstream.stop()
    replay = proxy(mode="replay", upstream=unreachable_url())
    sdk = anthropic.Anthropic(base_url=replay.url, api_key=TEST_API_KEY, max_retries=0)
    if recorded_stream:
        raw = sdk.messages.with_raw_response.create(**params)
        converted = raw.parse().model_dump()
        assert raw.headers["content-type"] == "application/json"
    else:
        with sdk.messages.stream(**params) as stream:
            converted = stream.get_final_message().model_dump()
    assert converted == recorded
    assert converted["content"][0]["input"] == {"city": "Paris", "unit": "celsius"}


PAUSE = 0.6
"""Seconds the recorded stream stands still after its first event."""


@dataclass
class Arrival:
    """When the parts of one streamed answer reached the client, in seconds after it sent the request."""

    body: bytes
    resumed: float
    """The first byte after the recorded pause."""
    done: float


async def timed_stream(url: str, before_pause: int) -> Arrival:
    """Read a SLOW stream as it comes, noting when the bytes after the first `before_pause` arrive."""
    async with aiohttp.ClientSession() as session:
        sent = time.perf_counter()
        async with session.post(url + MESSAGES, json=body("SLOW", stream=True)) as response:
            received, resumed = b"", None
            while piece := await response.content.readany():
                received += piece
                if resumed is None and len(received) > before_pause:
                    resumed = time.perf_counter() - sent
            assert resumed is not None, "the stream never went past its first event"
            return Arrival(received, resumed, time.perf_counter() - sent)


def test_recorded_pacing_replays_chunks_at_their_offsets(proxy, upstream, db_path, loop_thread):
    recorder = proxy(mode="record")

    async def record() -> bytes:
        async with aiohttp.ClientSession() as session:
            async with session.post(recorder.url + MESSAGES, json=body("SLOW", stream=True)) as response:
                first = await response.content.readuntil(b"\n\n")
                await asyncio.sleep(PAUSE)
                upstream.script.release()
                return first + await response.read()

    recorded = loop_thread.run(record())
    recorder.stop()
    [row] = rows(db_path)
    chunks = stored_json(row["timings"])
    (first_size, first_ms), (_, resumed_ms) = chunks[0], chunks[1]
    assert resumed_ms - first_ms >= PAUSE * 1000  # the recording holds the pause at its offsets
    last_ms = chunks[-1][1]

    instant = proxy(mode="replay", upstream=unreachable_url())
    paced = proxy(mode="replay", upstream=unreachable_url(), pace=1.0)
    doubled = proxy(mode="replay", upstream=unreachable_url(), pace=2.0)

    async def all_at_once() -> list[Arrival]:
        replays = (timed_stream(server.url, first_size) for server in (instant, paced, doubled))
        return list(await asyncio.gather(*replays))

    instant_arrival, paced_arrival, doubled_arrival = loop_thread.run(all_at_once())
    assert instant_arrival.body == paced_arrival.body == doubled_arrival.body == recorded
    # a paced chunk never comes before its recorded offset (divided by the speed factor)...
    assert paced_arrival.resumed >= resumed_ms / 1000 and paced_arrival.done >= last_ms / 1000
    assert doubled_arrival.resumed >= resumed_ms / 2000 and doubled_arrival.done >= last_ms / 2000
    # ...and the three replays, started together, end in the order of their speeds
    assert instant_arrival.done < doubled_arrival.resumed
    assert doubled_arrival.done < paced_arrival.resumed


def test_a_stream_ending_in_an_error_event_is_not_stored(proxy, upstream, db_path):
    server = proxy(mode="auto")
    status, _, raw = post(server.url + MESSAGES, body("OVERLOADED", stream=True))
    assert status == 200 and raw.rstrip().endswith(b'"message":"Overloaded"}}')
    server.stop()
    assert rows(db_path) == []
    recorder = proxy(mode="record", record_errors=True)
    post(recorder.url + MESSAGES, body("OVERLOADED", stream=True))
    recorder.stop()
    assert len(rows(db_path)) == 1


def test_large_streams_are_recorded_and_replayed_without_holding_them_whole(proxy, upstream, db_path):
    from claude_vcr.compression import LARGE_BODY
    from claude_vcr.store import Store

    recorder = proxy(mode="record")
    recorded = post(recorder.url + MESSAGES, body("HUGE:6", stream=True))[2]
    recorder.stop()
    assert len(recorded) > LARGE_BODY and recorded.endswith(b'data: {"type":"message_stop"}\n\n')
    [row] = rows(db_path)
    assert row["response_size"] == len(recorded) and row["stored_size"] < len(recorded) / 5
    with Store(db_path) as store:
        [stored] = store.catalog.recordings_of("default", row["key"])
        assert stored.response_body == b"" and stored.response_frame is not None
        assert stored.response_reader().read() == recorded
    replay = proxy(mode="replay", upstream=unreachable_url())
    assert post(replay.url + MESSAGES, body("HUGE:6", stream=True))[2] == recorded
    paced = proxy(mode="replay", upstream=unreachable_url(), pace=1000.0)
    assert post(paced.url + MESSAGES, body("HUGE:6", stream=True))[2] == recorded
