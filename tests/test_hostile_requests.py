"""Requests a proxy should never choke on: broken Unicode, deep nesting, hostile names, proxy-style targets,
slow clients and clients that hang up. Each gets a 4xx Anthropic-shaped error or works; never a 500."""

from __future__ import annotations

import http.client
import json
import re
import socket
import sqlite3
import threading
from urllib.parse import urlsplit

import pytest
from claude_vcr.describe import describe_request
from claude_vcr.errors import BadCassetteName, BadRequestBody
from claude_vcr.matching import MAX_JSON_DEPTH, Replacement, Rules, fingerprint, key_request, parse_json_body
from claude_vcr.names import validate_cassette_name
from claude_vcr.proxy import HELD_BYTES
from claude_vcr.store import StoreThread

from tests.support.client import MESSAGES, TEST_API_KEY, body, post
from tests.test_serve import ServeProcess

MODES = ["record", "replay", "auto", "passthrough"]
BROKEN_EMOJI = (
    b'{"model":"claude-opus-5-5","max_tokens":64,"stream":false,'
    b'"messages":[{"role":"user","content":"half an emoji: \\ud83d and a lone low \\udc00"}]}'
)
"""What Node's JSON.stringify writes for a string cut inside a surrogate pair."""


def nested(depth: int) -> bytes:
    inner = b"[" * depth + b"]" * depth
    return b'{"model":"claude-opus-5-5","max_tokens":64,"messages":[],"metadata":{"x":' + inner + b"}}"


def recordings(db_path) -> int:
    if not db_path.exists():
        return 0
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("SELECT count(*) FROM recordings").fetchone()[0]
    finally:
        conn.close()


def raw_exchange(url: str, data: bytes, *, timeout: float = 20) -> bytes:
    """Send raw bytes on a fresh connection and read until the server closes it (bounded by `timeout`)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def error_of(answer: bytes) -> tuple[int, dict]:
    head, _, payload = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(payload)["error"]


# --- broken Unicode: keyed by its bytes, forwarded and stored unchanged ----------------------------------


def test_a_lone_surrogate_is_keyed_by_its_bytes():
    assert parse_json_body(BROKEN_EMOJI) is None
    keyed = key_request("POST", MESSAGES, "", BROKEN_EMOJI)
    assert keyed.key == key_request("POST", MESSAGES, "", BROKEN_EMOJI).key
    assert keyed.key != key_request("POST", MESSAGES, "", BROKEN_EMOJI.replace(b"ud83d", b"ud83e")).key
    assert parse_json_body(b'{"a":"\\ud83d\\ude00"}') == {"a": "\N{GRINNING FACE}"}  # a whole pair is fine


def test_a_lone_surrogate_is_recorded_and_replayed_unchanged(proxy, upstream, db_path):
    recorder = proxy(mode="record")
    status, headers, answer = post(recorder.url + MESSAGES, BROKEN_EMOJI)
    assert status == 200 and headers["x-vcr-outcome"] == "recorded", answer
    assert upstream.calls[-1].body == BROKEN_EMOJI  # forwarded byte for byte
    conn = sqlite3.connect(db_path)
    assert conn.execute("SELECT model FROM recordings").fetchone() == (None,)
    conn.close()
    recorder.stop()
    replayer = proxy(mode="replay")
    status, headers, replayed = post(replayer.url + MESSAGES, BROKEN_EMOJI)
    assert (status, headers["x-vcr-outcome"], replayed) == (200, "hit", answer)
    miss = post(replayer.url + MESSAGES, BROKEN_EMOJI.replace(b"lone low", b"other"))
    assert miss[0] == 400 and miss[1]["x-vcr-outcome"] == "miss"


@pytest.mark.parametrize("mode", ["auto", "passthrough"])
def test_a_lone_surrogate_works_in_auto_and_passthrough(proxy, upstream, mode):
    server = proxy(mode=mode)
    status, headers, _ = post(server.url + MESSAGES, BROKEN_EMOJI)
    assert status == 200 and headers["x-vcr-outcome"] == ("recorded" if mode == "auto" else "passthrough")
    assert upstream.calls[-1].body == BROKEN_EMOJI


def test_a_lone_surrogate_is_described_without_error():
    summary = describe_request("POST", MESSAGES, [], BROKEN_EMOJI)
    json.dumps(summary, ensure_ascii=False).encode("utf-8")


# --- deep nesting: refused past a documented depth, nothing crashes ---------------------------------------


def test_nesting_up_to_the_limit_is_keyed_fingerprinted_and_described():
    at_limit = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    keyed = key_request("POST", MESSAGES, "", at_limit)
    assert keyed.parsed is not None and fingerprint(keyed.normalised)
    describe_request("POST", MESSAGES, [], at_limit)
    inside = nested(MAX_JSON_DEPTH - 2)  # the body object and `metadata` are two levels
    assert key_request("POST", MESSAGES, "", inside).fingerprints
    rules = Rules(ignore=("**.x", "messages[*].content"), replace=(Replacement("a", "b"),), presets=("claude-code",))
    deep_text = b'{"messages":' + b"[" * (MAX_JSON_DEPTH - 2) + b'"a"' + b"]" * (MAX_JSON_DEPTH - 2) + b"}"
    assert key_request("POST", MESSAGES, "", deep_text, rules).fingerprints


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 10_000, 100_000])
def test_nesting_past_the_limit_is_a_clear_error(depth):
    with pytest.raises(BadRequestBody, match=f"deeper than {MAX_JSON_DEPTH}"):
        key_request("POST", MESSAGES, "", b"[" * depth + b"]" * depth)
    describe_request("POST", MESSAGES, [], b"[" * depth + b"]" * depth)  # shown as text, no RecursionError


@pytest.mark.parametrize("mode", MODES)
def test_deep_nesting_gets_a_400_in_every_mode(proxy, upstream, db_path, mode):
    server = proxy(mode=mode)
    status, headers, answer = post(server.url + MESSAGES, nested(10_000))
    error = json.loads(answer)["error"]
    assert status == 400 and error["type"] == "invalid_request_error"
    assert f"nested deeper than {MAX_JSON_DEPTH} levels" in error["message"]
    assert headers["x-should-retry"] == "false"
    assert upstream.calls == [] and recordings(db_path) == 0
    assert post(server.url + MESSAGES, body("still serving"))[0] in (200, 400)  # the proxy serves on


# --- cassette names ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["abc\n", "abc\r\n", "\nabc", "abc\x00", "a/b", "..", ".hidden", "", "a" * 129])
def test_hostile_names_are_refused(name):
    with pytest.raises(BadCassetteName):
        validate_cassette_name(name)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("quoted", ["abc%0A", "abc%0D%0A", "abc%00", "..%2Fetc", "%2E%2E", "a%20b"])
def test_hostile_names_in_the_url_get_a_400_in_every_mode(proxy, upstream, db_path, mode, quoted):
    server = proxy(mode=mode)
    status, _, answer = post(f"{server.url}/c/{quoted}{MESSAGES}", body())
    error = json.loads(answer)["error"]
    assert status == 400 and "invalid cassette name" in error["message"]
    assert upstream.calls == [] and recordings(db_path) == 0


@pytest.mark.parametrize("name", [b"../etc", b"abc def", b"a/b", b"\xc3\xa9t\xc3\xa9"])
def test_hostile_names_in_the_header_get_a_400(proxy, upstream, db_path, name):
    server = proxy(mode="record")
    request = (
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
        b"X-VCR-Cassette: " + name + b"\r\nContent-Length: 2\r\n\r\n{}"
    )
    status, error = error_of(raw_exchange(server.url, request))
    assert status == 400 and "invalid cassette name" in error["message"]
    assert upstream.calls == [] and recordings(db_path) == 0


# --- CONNECT and absolute-form targets: refused, never forwarded or stored ----------------------------------


PROXY_STYLE = {
    "connect": b"CONNECT api.anthropic.com:443 HTTP/1.1\r\nHost: api.anthropic.com:443\r\n\r\n",
    "absolute": (
        b"POST http://api.anthropic.com/v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\n"
        b"Content-Type: application/json\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    ),
    "absolute-get": b"GET http://example.com/v1/models HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n",
    "asterisk": b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", sorted(PROXY_STYLE))
def test_proxy_style_requests_are_refused_in_every_mode(proxy, upstream, db_path, mode, kind):
    server = proxy(mode=mode, fallback="fallback")
    status, error = error_of(raw_exchange(server.url, PROXY_STYLE[kind]))
    assert status == 400 and error["type"] == "invalid_request_error"
    assert "not an HTTP proxy" in error["message"] and "ANTHROPIC_BASE_URL" in error["message"]
    assert upstream.calls == [] and recordings(db_path) == 0


# --- read timeouts: slow clients are closed, slow upstreams are not ----------------------------------------


def test_slow_headers_get_a_408_and_are_closed(proxy, upstream):
    server = proxy(mode="record", header_timeout=0.3)
    clients = 50
    answers: list[bytes] = []

    def slow_client() -> None:
        answers.append(raw_exchange(server.url, b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nX-Slow: "))

    threads = [threading.Thread(target=slow_client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(answers) == clients
    for answer in answers:
        status, error = error_of(answer)
        assert status == 408 and error["type"] == "timeout_error" and "headers" in error["message"]
    assert upstream.calls == []


def test_a_silent_kept_alive_connection_times_out_on_its_next_request(proxy, upstream):
    server = proxy(mode="record", header_timeout=0.3)
    payload = json.dumps(body()).encode()
    first = (
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as sock:
        sock.sendall(first)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.partition(b"\r\n\r\n")[2]) < int(
            re.search(rb"(?i)content-length: (\d+)", answer).group(1)
        ):
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200 ")
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n")  # the next request's head, never finished
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk
    assert rest.startswith(b"HTTP/1.1 408 Request Timeout")
    assert len(upstream.calls) == 1


def test_a_stalled_body_gets_a_408_and_is_closed(proxy, upstream, db_path):
    server = proxy(mode="record", body_timeout=0.3)
    stalled = b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"model\":"
    status, error = error_of(raw_exchange(server.url, stalled))
    assert status == 408 and "body stalled" in error["message"]
    assert upstream.calls == [] and recordings(db_path) == 0


def test_a_body_over_the_limit_gets_a_413(proxy, upstream, monkeypatch):
    from claude_vcr.proxy import edge as proxy_module  # the edge reads bodies and owns their limit

    monkeypatch.setattr(proxy_module, "MAX_REQUEST_BYTES", 1000)
    server = proxy(mode="record")
    head = b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as sock:
        sock.sendall(head)
        for _ in range(5):  # in pieces, so the body is read as it arrives
            sock.sendall(b"x" * 1000)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status, error = error_of(answer)
    assert status == 413 and error["type"] == "request_too_large"
    assert upstream.calls == []


def test_a_slow_upstream_is_never_cut_by_the_client_timeouts(proxy, upstream, db_path):
    server = proxy(mode="record", header_timeout=0.2, body_timeout=0.2)
    result: list = []
    streaming = threading.Thread(
        target=lambda: result.append(post(server.url + MESSAGES, body("SLOW", stream=True)))
    )
    streaming.start()
    # a slow-header and a stalled-body client on the same proxy: their 408s prove both timeouts have passed
    assert error_of(raw_exchange(server.url, b"GET /v1/models HTTP/1.1\r\n"))[0] == 408
    stalled = b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
    assert error_of(raw_exchange(server.url, stalled))[0] == 408
    upstream.script.release()
    streaming.join(30)
    status, headers, answer = result[0]
    assert status == 200 and b"event: message_stop" in answer and headers["x-vcr-outcome"] == "recording"
    assert recordings(db_path) == 1


# --- x-vcr-outcome says what is known when the headers leave ---------------------------------------------


def test_a_non_streamed_answer_says_recorded_only_once_saved(proxy, upstream, db_path):
    server = proxy(mode="record")
    status, headers, answer = post(server.url + MESSAGES, body("held"))
    assert status == 200 and headers["x-vcr-outcome"] == "recorded"
    assert int(headers["content-length"]) == len(answer) and json.loads(answer)["type"] == "message"
    assert recordings(db_path) == 1  # already in the db when the client had the answer


def test_a_failed_save_is_said_in_the_header_of_a_held_answer(proxy, upstream, db_path, monkeypatch):
    async def refuse(self, recording):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(StoreThread, "save", refuse)
    server = proxy(mode="record")
    status, headers, answer = post(server.url + MESSAGES, body("held"))
    assert status == 200 and headers["x-vcr-outcome"] == "store-error" and json.loads(answer)["type"] == "message"
    status, headers, answer = post(server.url + MESSAGES, body("streamed", stream=True))
    assert status == 200 and headers["x-vcr-outcome"] == "recording" and b"message_stop" in answer
    assert recordings(db_path) == 0


def test_a_non_streamed_answer_too_large_to_hold_is_streamed_on(proxy, upstream, db_path):
    server = proxy(mode="record")
    status, headers, answer = post(server.url + MESSAGES, body("HUGE:5"))
    assert status == 200 and headers["x-vcr-outcome"] == "recording" and len(answer) > HELD_BYTES
    assert json.loads(answer)["type"] == "message" and recordings(db_path) == 1


def test_a_stream_says_recording_and_the_log_line_says_recorded(tmp_path, upstream):
    server = ServeProcess(["--port", "0", "--upstream", upstream.url, "--mode", "record"], cwd=tmp_path)
    try:
        status, headers, answer = post(server.url + MESSAGES, body("streamed", stream=True))
        assert status == 200 and headers["x-vcr-outcome"] == "recording" and b"message_stop" in answer
        assert re.match(r"recorded +[0-9a-f]{12} POST /v1/messages 200 ", server.readline())
        assert server.stop() == 0
    finally:
        if server.process.poll() is None:
            server.process.kill()
    assert recordings(tmp_path / "vcr.db") == 1


# --- a client hanging up: one log line, no traceback ------------------------------------------------------


def hang_up_mid_stream(url: str, text: str) -> None:
    """Send a streamed request, read the response head and the first bytes of the stream, then go away."""
    payload = json.dumps(body(text, stream=True)).encode()
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=20)
    sock.sendall(
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"x-api-key: {TEST_API_KEY}\r\nContent-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    received = b""
    while b"message_start" not in received:
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset
    sock.close()


@pytest.mark.parametrize("mode", ["record", "passthrough"])
def test_a_client_hanging_up_is_one_log_line_without_traceback(tmp_path, upstream, mode):
    server = ServeProcess(["--port", "0", "--upstream", upstream.url, "--mode", mode], cwd=tmp_path)
    try:
        clients = 8
        for number in range(clients):
            hang_up_mid_stream(server.url, f"SLOW {number}")
        upstream.script.release()  # the proxy writes on and finds each client gone
        gone = 0
        for _ in range(200):
            line = server.readline()
            assert line, "".join(server.lines)
            gone += line.startswith("client-gone ")
            if gone == clients:
                break
        assert server.stop() == 0
    finally:
        if server.process.poll() is None:
            server.process.kill()
    output = "".join(server.lines)
    assert gone == clients and "Traceback" not in output and "Error handling request" not in output, output
    assert len(re.findall(r"^client-gone +[0-9a-f]{12} POST /v1/messages", output, re.M)) == clients
    assert recordings(tmp_path / "vcr.db") == 0


def test_a_client_hanging_up_during_paced_replay_is_one_log_line(tmp_path, upstream):
    recorder = ServeProcess(
        ["--port", "0", "--upstream", upstream.url, "--mode", "record", "--header-timeout", "0.5"], cwd=tmp_path
    )
    try:
        result: list = []
        thread = threading.Thread(
            target=lambda: result.append(post(recorder.url + MESSAGES, body("SLOW", stream=True)))
        )
        thread.start()
        # hold the recorded stream for a header timeout (a 408 says it passed): paced replay pauses there too
        assert error_of(raw_exchange(recorder.url, b"GET /v1/models HTTP/1.1\r\n"))[0] == 408
        upstream.script.release()
        thread.join(30)
        assert result[0][0] == 200
        assert recorder.stop() == 0
    finally:
        if recorder.process.poll() is None:
            recorder.process.kill()
    replayer = ServeProcess(["--port", "0", "--mode", "replay", "--pace", "recorded"], cwd=tmp_path)
    try:
        hang_up_mid_stream(replayer.url, "SLOW")
        for _ in range(50):
            line = replayer.readline()
            assert line, "".join(replayer.lines)
            if line.startswith("client-gone "):
                break
        assert replayer.stop() == 0
    finally:
        if replayer.process.poll() is None:
            replayer.process.kill()
    output = "".join(replayer.lines)
    assert output.count("client-gone ") == 1 and "Traceback" not in output, output


def test_an_upstream_breaking_mid_stream_is_logged_without_traceback(tmp_path, upstream):
    server = ServeProcess(["--port", "0", "--upstream", upstream.url, "--mode", "record"], cwd=tmp_path)
    try:
        with pytest.raises(http.client.IncompleteRead):  # cut, never a clean end
            post(server.url + MESSAGES, body("BREAK", stream=True))
        assert post(server.url + MESSAGES, body("after"))[0] == 200  # and the proxy serves on
        assert server.stop() == 0
    finally:
        if server.process.poll() is None:
            server.process.kill()
    output = "".join(server.lines)
    assert "upstream broke off" in output and "Traceback" not in output, output
    assert re.search(r"^upstream-error +[0-9a-f]{12} POST /v1/messages 502", output, re.M), output
