"""A db from elsewhere through the proxy: stored answers that would redirect, set cookies, smuggle framing or
are not HTTP; stored rules that would stall it; and requests a web page could send (DNS rebinding, cross-site
simple POSTs). Each hostile db is built here from a real recording."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import http.client
import json
import multiprocessing
import os
import re
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from multiprocessing.context import SpawnContext, SpawnProcess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from claude_vcr.catalog import Catalog
from claude_vcr.errors import RulesError
from claude_vcr.matching import Replacement, Rules, nested_repeat
from claude_vcr.proxy import offload
from claude_vcr.store import Store

from tests.support.claude_code import run_claude
from tests.support.client import MESSAGES, TEST_API_KEY, body, client, params, post
from tests.support.loopback import unreachable_url
from tests.test_hostile_requests import error_of, raw_exchange, recordings
from tests.test_serve import ServeProcess


class Canary:
    """A listener on 127.0.0.1 that counts the connections reaching it (and answers none)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def canary() -> Iterator[Canary]:
    listener = Canary()
    yield listener
    listener.close()


def tamper(db: Path, change) -> int:
    """Rewrite every /v1/messages recording of the db with `change(recording)`; returns how many."""
    with Catalog.open(db) as catalog:
        found = [catalog.detail(row) for row in catalog.recordings() if row.path.startswith("/v1/messages")]
    with Store(db) as store:
        for recording in found:
            store.rewrite(change(recording))
    return len(found)


def raw_status(db: Path, status: object) -> None:
    """Store a status as SQLite takes it (text stays text): what a hand-made db can hold."""
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE recordings SET status = ?", [status])
    conn.close()


def get_headers(url: str, payload: dict) -> tuple[int, http.client.HTTPMessage, bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    conn.request(
        "POST",
        MESSAGES,
        json.dumps(payload),
        {"content-type": "application/json", "x-api-key": TEST_API_KEY, "anthropic-version": "2023-06-01"},
    )
    response = conn.getresponse()
    answer = response.status, response.msg, response.read()
    conn.close()
    return answer


def recorded_once(proxy, text: str = "Hello", **extra) -> None:
    recorder = proxy(mode="record")
    assert post(recorder.url + MESSAGES, body(text, **extra))[0] == 200
    recorder.stop()


# --- stored answers --------------------------------------------------------------------------------------


@pytest.mark.claude_code
def test_claude_code_never_follows_a_stored_redirect(claude, proxy, upstream, tmp_path, canary, db_path):
    workdir, home = tmp_path / "app", tmp_path / "home"
    workdir.mkdir()
    home.mkdir()
    recorder = proxy(mode="record")
    recorded = run_claude(claude, recorder.url, workdir, home, "Summarise what this project does.")
    assert recorded.returncode == 0, recorded.stderr
    recorder.stop()
    where = f"http://127.0.0.1:{canary.port}/v1/messages"
    changed = tamper(
        db_path,
        lambda r: dataclasses.replace(
            r, status=307, response_headers=[*r.response_headers, ("Location", where)]
        ),
    )
    assert changed >= 1

    replayer = proxy(mode="replay", upstream=unreachable_url())
    replayed = run_claude(claude, replayer.url, workdir, home, "Summarise what this project does.")
    output = replayed.stdout + replayed.stderr
    assert replayed.returncode != 0 and "never replays redirects" in output, output
    assert canary.connections == 0


@pytest.mark.parametrize(
    "name, value",
    [
        ("Set-Cookie", "session=planted; Path=/"),
        ("Location", "http://127.0.0.1:9/elsewhere"),
        ("Transfer-Encoding", "chunked"),
        ("Content-Length", "3"),
        ("Connection", "close"),
        ("Refresh", "0; url=http://127.0.0.1:9/"),
    ],
)
def test_stored_headers_that_redirect_set_cookies_or_frame_are_not_replayed(
    proxy, upstream, db_path, name, value
):
    recorded_once(proxy)
    tamper(db_path, lambda r: dataclasses.replace(r, response_headers=[*r.response_headers, (name, value)]))
    replayer = proxy(mode="replay", upstream=unreachable_url())
    status, headers, answer = get_headers(replayer.url, body())
    assert status == 200 and json.loads(answer)["type"] == "message"
    assert headers.get(name) in (None, str(len(answer)) if name == "Content-Length" else None)
    assert headers["x-vcr-outcome"] == "hit"


@pytest.mark.parametrize(
    "status, headers, says",
    [
        ("two hundred", [], "is not an HTTP status"),
        (99, [], "is not an HTTP status"),
        (600, [], "is not an HTTP status"),
        (101, [("Upgrade", "websocket")], "interim"),
        (302, [("Location", "http://127.0.0.1:9/")], "never replays redirects"),
        # the read side refuses a header HTTP forbids before the replay's own check sees it
        (200, [("x-note", "a\r\nSet-Cookie: planted=1")], "has characters HTTP forbids"),
        (200, [("x-note", "snow \u2603")], "not latin-1"),
        (200, [("bad name", "x")], "has characters HTTP forbids"),
    ],
    ids=["text", "99", "600", "101", "302", "crlf", "unicode", "name"],
)
def test_a_stored_answer_that_is_not_valid_http_is_a_one_line_error(
    proxy, upstream, db_path, status, headers, says
):
    recorded_once(proxy)
    tamper(db_path, lambda r: dataclasses.replace(r, response_headers=[*r.response_headers, *headers]))
    raw_status(db_path, status)
    replayer = proxy(mode="replay", upstream=unreachable_url())
    code, answer_headers, answer = post(replayer.url + MESSAGES, body())
    error = json.loads(answer)["error"]
    assert code == 502 and answer_headers["x-vcr-outcome"] == "unsafe"
    assert says in error["message"] and answer_headers["x-vcr-key"][:12] in error["message"]
    assert "\n" not in error["message"] and "Traceback" not in error["message"]
    assert "Set-Cookie" not in answer_headers and "Location" not in answer_headers


def test_a_large_stream_replayed_to_a_non_streaming_sdk_call_is_a_message(proxy, upstream, db_path):
    recorder = proxy(mode="record")
    assert post(recorder.url + MESSAGES, body("HUGE:5", stream=True))[0] == 200
    recorder.stop()
    replayer = proxy(mode="replay", upstream=unreachable_url())
    message = client(replayer.url).messages.create(**params("HUGE:5", max_tokens=64))
    assert message.type == "message" and len(message.content[0].text) >= 5 * 1024 * 1024


# --- stored rules ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", [r"(\w+\s?)*$", r"(a+)+b", r"(?:x|y+)*z", r"((ab)*c)*"])
def test_a_rule_that_repeats_a_repetition_is_refused(pattern):
    assert nested_repeat(pattern)
    with pytest.raises(RulesError, match="repeats a repetition"):
        Replacement(pattern, "<X>").compiled()


@pytest.mark.parametrize("pattern", [r"\d{4}-\d{2}-\d{2}", r"cc_version=[^;\s]+", r"(ab){2,}", r"(a{3})*"])
def test_ordinary_rules_are_kept(pattern):
    assert not nested_repeat(pattern)


def test_a_catastrophic_regex_in_a_cassettes_stored_rules_stalls_nobody(proxy, upstream, db_path):
    recorded_once(proxy, "word " * 40)
    conn = sqlite3.connect(db_path)
    with conn:
        rules = {"ignore": ["metadata"], "replace": [{"pattern": r"(\w+\s?)*$", "with": "<X>"}]}
        conn.execute("UPDATE cassettes SET rules_json = ?", [json.dumps(rules)])
    conn.close()
    replayer = proxy(mode="replay", upstream=unreachable_url())
    started = time.perf_counter()
    code, _, answer = post(replayer.url + MESSAGES, body("word " * 40 + "!"))
    assert time.perf_counter() - started < 10  # the pattern would take years on this text
    assert code == 502 and "repeats a repetition" in json.loads(answer)["error"]["message"]


def slow_and_other(proxy, db_path: Path, pattern: str) -> None:
    """A recording of `Hello` in cassettes `slow` and `other`; then `slow`'s stored rules replace `pattern`."""
    recorder = proxy(mode="record")
    for cassette in ("slow", "other"):
        assert post(recorder.url + f"/c/{cassette}" + MESSAGES, body("Hello"))[0] == 200
    recorder.stop()
    rules = {"ignore": ["metadata"], "replace": [{"pattern": pattern, "with": "<X>"}]}
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE cassettes SET rules_json = ? WHERE name = 'slow'", [json.dumps(rules)])
    conn.close()


@pytest.mark.parametrize(
    "pattern, text",
    [(r"(\w+\s?)*$", "word " * 30 + "!"), (r"(a|aa)*$", "a" * 80 + "!"), (r"(\d|\d\d)+$", "1" * 80 + "!")],
)
def test_a_slow_regex_is_stopped_at_its_deadline_and_stalls_nobody(
    proxy, upstream, db_path, monkeypatch, pattern, text
):
    """Stored rules' regexes run in the worker process with a deadline: the patterns the shape check misses
    (overlapping alternatives under one repeat) are stopped there, the first one (which it catches) never runs.
    (`(\\w|\\d)+$` is no variant: Python's `re` makes one character class of single-character branches.)"""
    monkeypatch.setattr(offload, "RULES_SECONDS", 3.0)
    slow_and_other(proxy, db_path, pattern)
    replayer = proxy(mode="replay", upstream=unreachable_url())
    answers: list = []
    hostile = threading.Thread(
        target=lambda: answers.append(post(replayer.url + "/c/slow" + MESSAGES, body(text)))
    )
    started = time.perf_counter()
    hostile.start()
    waits = []
    while hostile.is_alive() and time.perf_counter() - started < 30:
        before = time.perf_counter()
        code, _, _ = post(replayer.url + "/c/other" + MESSAGES, body("Hello"))
        assert code == 200
        waits.append(time.perf_counter() - before)
        time.sleep(0.05)
    hostile.join(30)
    ((code, _, answer),) = answers
    message = json.loads(answer)["error"]["message"]
    assert code == 502 and "cannot be used" in message and repr(pattern) in message
    assert time.perf_counter() - started < 15  # the pattern would run for years on this text
    assert max(waits, default=0) < 1.0  # the other cassette replayed all along
    code, _, answer = post(replayer.url + "/c/slow" + MESSAGES, body("Hello again"))
    if nested_repeat(pattern):
        assert "repeats a repetition" in message and code == 502  # refused at load, never run
    else:
        assert "took over 3 s" in message and len(waits) > 5
        assert code == 400 and "no recording" in json.loads(answer)["error"]["message"]  # a new worker keyed it


def test_a_slow_regex_on_stored_requests_is_stopped_at_its_deadline_and_stalls_nobody(
    proxy, upstream, db_path
):
    """Miss diagnosis and `--match conversation` apply a cassette's stored rules to its stored requests too (text
    from whoever wrote the db): in the worker process with the deadline, never on the store thread, where `re`
    would hold the interpreter lock, so the event loop, for years on this text. Real serve processes, so a proxy
    stalled that way fails this test (the clients' timeouts) instead of hanging it."""
    pattern = r"(a|aa)*$"
    assert not nested_repeat(pattern)  # the shape check lets it through
    slow_and_other(proxy, db_path, pattern)
    with Catalog.open(db_path) as catalog:
        (stored,) = [catalog.detail(row) for row in catalog.recordings("slow")]
    with Store(db_path) as store:  # the stored request now holds text on which the pattern backtracks
        store.rewrite(dataclasses.replace(stored, request_body=json.dumps(body("a" * 60 + "!")).encode()))
    common = ["--db", str(db_path), "--port", "0", "--mode", "replay", "--upstream", unreachable_url()]
    servers = [
        ServeProcess(common, cwd=db_path.parent),
        ServeProcess([*common, "--match", "conversation"], cwd=db_path.parent),
    ]
    try:
        answers: dict[str, tuple] = {}

        def ask(server: ServeProcess) -> None:
            answers[server.url] = post(server.url + "/c/slow" + MESSAGES, body("Hello there"))

        hostile = [threading.Thread(target=ask, args=(server,)) for server in servers]
        started = time.perf_counter()
        for thread in hostile:
            thread.start()
        waits = []
        while any(thread.is_alive() for thread in hostile) and time.perf_counter() - started < 40:
            for server in servers:
                before = time.perf_counter()
                assert post(server.url + "/c/other" + MESSAGES, body("Hello"))[0] == 200
                waits.append(time.perf_counter() - before)
            time.sleep(0.05)
        for thread in hostile:
            thread.join(35)
        assert max(waits, default=0) < 1.0  # the other cassette replayed all along, on both
        assert (
            len(waits) > 10 and time.perf_counter() - started < 40
        )  # each stopped after RULES_SECONDS (10 s)
        for server in servers:
            code, _, answer = answers[server.url]
            message = json.loads(answer)["error"]["message"]
            assert code == 400 and "no recording for POST /v1/messages in cassette 'slow'" in message
            assert "stored rules took too long" in message and repr(pattern) in message
        code, _, answer = post(servers[0].url + "/c/slow" + MESSAGES, body("Hello again"))
        assert code == 400 and "stored rules took too long" in json.loads(answer)["error"]["message"]
    finally:
        output = []
        for server in servers:
            server.stop()
            output.append("".join(server.lines))
    assert not any("Traceback" in text for text in output)
    assert "no conversation match" in output[1] and "took over 10 s" in output[1]



DATES = Rules(ignore=("metadata",), replace=(Replacement(r"\d{4}-\d{2}-\d{2}", "<DATE>"),))
"""Harmless rules with a regular expression of their own: keyed in a worker, with the deadline."""


def large_body(note: str) -> dict:
    """A request past `IN_PROCESS_BYTES` (keyed in the bulk worker); `note` goes in `metadata`, which the
    default rules leave out, so the bytes differ (no fast path) and the key does not."""
    return body("summarise this", system="lorem ipsum " * 8000, metadata={"user_id": note})


def stuck_slow_dated_and_large(proxy, db_path: Path) -> None:
    """Cassettes `slow` (stored rules that backtrack on 'aaa...a!'), `dated` (recorded under DATES) and
    `large` (a body past IN_PROCESS_BYTES, default rules), a recording in each."""
    recorder = proxy(mode="record", rules=DATES)
    assert post(recorder.url + "/c/dated" + MESSAGES, body("Hello on 2026-12-07"))[0] == 200
    recorder.stop()
    recorder = proxy(mode="record")
    assert post(recorder.url + "/c/slow" + MESSAGES, body("Hello"))[0] == 200
    assert len(json.dumps(large_body("first"))) > offload.IN_PROCESS_BYTES
    assert post(recorder.url + "/c/large" + MESSAGES, large_body("first"))[0] == 200
    recorder.stop()
    rules = {"ignore": ["metadata"], "replace": [{"pattern": r"(a|aa)*$", "with": "<X>"}]}
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE cassettes SET rules_json = ? WHERE name = 'slow'", [json.dumps(rules)])
    conn.close()


def test_a_stuck_pattern_holds_up_neither_other_patterns_nor_large_bodies(
    proxy, upstream, db_path, monkeypatch
):
    """Regex work runs in a worker per set of patterns and large bodies in a worker of their own: while one
    cassette's pattern backtracks until its deadline, another cassette's own regex rules and a large body are
    keyed, and answered, in their workers."""
    monkeypatch.setattr(offload, "RULES_SECONDS", 6.0)
    stuck_slow_dated_and_large(proxy, db_path)
    replayer = proxy(mode="replay", upstream=unreachable_url())
    workers = replayer.running.proxy.offload
    answers: list = []

    def hostile() -> None:
        answers.append(post(replayer.url + "/c/slow" + MESSAGES, body("a" * 80 + "!")))
        answers.append(time.perf_counter())

    stuck = threading.Thread(target=hostile)
    started = time.perf_counter()
    stuck.start()
    while workers.alive < 1 and time.perf_counter() - started < 10:  # its worker up, then in the regex
        time.sleep(0.05)
    time.sleep(0.5)
    assert stuck.is_alive()
    code, headers, _ = post(replayer.url + "/c/dated" + MESSAGES, body("Hello on 2026-12-08"))
    assert code == 200 and headers["x-vcr-outcome"] == "hit"  # keyed under its rule: the date blurred
    dated = time.perf_counter()
    code, headers, _ = post(replayer.url + "/c/large" + MESSAGES, large_body("second"))
    assert code == 200 and headers["x-vcr-outcome"] == "hit"
    large = time.perf_counter()
    assert workers.alive == 3  # slow's, dated's and the bulk one
    stuck.join(30)
    (code, _, answer), done = answers
    message = json.loads(answer)["error"]["message"]
    assert code == 502 and "took over 6 s" in message and "'(a|aa)*$'" in message
    assert dated < large < done and large - started < 6.0  # both answered while slow's was stuck


def test_regex_workers_are_at_most_four_the_least_recently_used_stopped_first():
    """One worker per set of patterns, at most RULES_WORKERS alive: a fifth set stops the least recently
    used idle one (waited for, so never more are alive), and asking for that set again starts a new one."""

    async def run() -> None:
        workers = offload.Offload()

        async def pid(n: int) -> int:
            rules = Rules(replace=(Replacement(f"word{n}", "<W>"),))
            return await workers.under_rules(rules, "a test", os.getpid)

        try:
            first = {n: await pid(n) for n in range(4)}
            assert len(set(first.values())) == 4 and workers.alive == 4
            assert await pid(0) == first[0]  # its own worker again; now 1 is the least recently used
            fifth = await pid(4)
            assert fifth not in first.values() and workers.alive == 4
            assert not _alive(first[1]) and all(_alive(first[n]) for n in (0, 2, 3))
            assert await pid(1) not in first.values() and not _alive(first[2])  # 1 again: a new one, 2 out
            assert len(multiprocessing.active_children()) == 4
        finally:
            await workers.close()
        assert multiprocessing.active_children() == []

    asyncio.run(run())


def _alive(pid: int) -> bool:
    return any(p.pid == pid for p in multiprocessing.active_children())


class _ProcessThatCannotStart(SpawnProcess):
    def start(self) -> None:
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable (no process left)")


class _NoProcesses(SpawnContext):
    """A multiprocessing context where starting a process fails, as under a process limit or a sandbox."""

    Process = _ProcessThatCannotStart


def test_without_a_worker_process_regex_rules_are_refused_and_large_bodies_read_in_a_thread(
    proxy, upstream, db_path, monkeypatch, caplog
):
    """Where no worker process can start, nothing could stop a backtracking pattern (`re` in a thread holds
    the interpreter lock for years): requests under rules with regular expressions of their own get a one-line
    502 at once, as at the deadline, while large bodies (our own code) are still keyed in a thread."""
    from claude_vcr.proxy import handler

    stuck_slow_dated_and_large(proxy, db_path)
    monkeypatch.setattr(handler, "Offload", lambda: offload.Offload(context=_NoProcesses()))
    replayer = proxy(mode="replay", upstream=unreachable_url())
    with caplog.at_level("WARNING", logger="claude_vcr.proxy"):
        for cassette, text, pattern in (
            ("dated", "Hello on 2026-12-08", r"'\\d{4}-\\d{2}-\\d{2}'"),
            ("slow", "a" * 80 + "!", "'(a|aa)*$'"),
            ("dated", "Hello on 2026-12-08", r"'\\d{4}-\\d{2}-\\d{2}'"),
        ):
            started = time.perf_counter()
            code, headers, answer = post(replayer.url + f"/c/{cassette}" + MESSAGES, body(text))
            message = json.loads(answer)["error"]["message"]
            assert code == 502 and "\n" not in message and "Traceback" not in message
            assert f"cassette '{cassette}' has stored rules that cannot be used" in message
            assert "no worker process could start to bound its regular expressions" in message
            assert pattern in message and "Resource temporarily unavailable" in message
            assert time.perf_counter() - started < 2.0  # refused, never run where nothing can stop it
        code, headers, _ = post(replayer.url + "/c/large" + MESSAGES, large_body("second"))
        assert code == 200 and headers["x-vcr-outcome"] == "hit"  # keyed in a thread
    assert caplog.text.count("no worker process could start here") == 1
    assert multiprocessing.active_children() == []

# --- requests a web page could send ----------------------------------------------------------------------


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def request_with(
    url: str, host: str, content_type: str | None, payload: bytes, path: str = MESSAGES
) -> bytes:
    typed = f"Content-Type: {content_type}\r\n" if content_type else ""
    return raw_exchange(
        url,
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{typed}Content-Length: {len(payload)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + payload,
    )


@pytest.mark.parametrize(
    "host", ["attacker.example", "attacker.example:8000", "192.168.1.20", "[2001:db8::1]"]
)
def test_a_host_that_is_not_loopback_is_refused_before_anything_is_read(proxy, upstream, db_path, host):
    recorded_once(proxy, "a recorded secret prompt")
    server = proxy(mode="auto")
    payload = json.dumps(body("a recorded secret prompt!")).encode()
    status, error = error_of(request_with(server.url, host, "application/json", payload))
    assert status == 403 and "--allow-host" in error["message"]
    assert "secret prompt" not in json.dumps(error)
    assert len(upstream.script.message_calls()) == 1 and recordings(db_path) == 1


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "127.0.0.2", "[::1]", "localhost:8000"])
def test_loopback_host_names_are_served(proxy, upstream, host):
    recorded_once(proxy)
    server = proxy(mode="replay", upstream=unreachable_url())
    answer = request_with(server.url, host, "application/json", json.dumps(body()).encode())
    assert status_of(answer) == 200


def test_allow_host_names_another_host(proxy, upstream):
    recorded_once(proxy)
    server = proxy(mode="replay", upstream=unreachable_url(), allow_host=("vcr.internal",))
    payload = json.dumps(body()).encode()
    assert status_of(request_with(server.url, "vcr.internal:8000", "application/json", payload)) == 200
    assert error_of(request_with(server.url, "attacker.example", "application/json", payload))[0] == 403


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        None,
    ],
)
@pytest.mark.parametrize("path", [MESSAGES, "/c/other/v1/messages", "/v1/messages/count_tokens"])
def test_a_browsers_simple_post_is_refused_in_auto_mode(proxy, upstream, db_path, content_type, path):
    server = proxy(mode="auto")
    payload = json.dumps(body("from a web page")).encode()
    status, error = error_of(request_with(server.url, "127.0.0.1", content_type, payload, path))
    assert status == 403 and "application/json only" in error["message"]
    assert upstream.calls == [] and recordings(db_path) == 0


def test_json_posts_are_served(proxy, upstream, db_path):
    server = proxy(mode="auto")
    payload = json.dumps(body("from a client")).encode()
    assert status_of(request_with(server.url, "127.0.0.1", "application/json; charset=utf-8", payload)) == 200
    assert recordings(db_path) == 1


# --- time limits and logs --------------------------------------------------------------------------------


def test_a_body_trickling_in_is_cut_at_the_total_deadline(proxy, upstream, db_path):
    server = proxy(mode="record", body_timeout=1.0)
    parts = urlsplit(server.url)
    started = time.perf_counter()
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as sock:
        sock.sendall(
            b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n"
        )
        received = b""
        sock.settimeout(0.3)
        while not received and time.perf_counter() - started < 15:
            try:
                sock.sendall(b" ")  # a byte every 0.3 s: never idle for the timeout, never done
                received = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
    assert received.startswith(b"HTTP/1.1 408"), received[:100]
    assert time.perf_counter() - started < 10
    assert recordings(db_path) == 0


def test_credentials_in_the_upstream_url_are_not_in_the_banner(tmp_path):
    server = ServeProcess(
        ["--port", "0", "--upstream", "http://vcr-user:hunter2-secret@127.0.0.1:9/?key=sk-ant-api03-leaked"],
        cwd=tmp_path,
    )
    try:
        assert server.stop() == 0
    finally:
        if server.process.poll() is None:
            server.process.kill()
    output = "".join(server.lines)
    assert "upstream=http://vcr-user:<REDACTED>@127.0.0.1:9/" in output
    assert "hunter2" not in output and "sk-ant-api03-leaked" not in output


def test_credentials_in_refused_targets_are_not_logged(tmp_path):
    server = ServeProcess(
        ["--port", "0", "--mode", "record", "--upstream", unreachable_url(), "--body-timeout", "0.5"],
        cwd=tmp_path,
    )
    try:
        absolute = b"GET http://api.example/v1/models?api_key=sk-live-abs-SECRET1 HTTP/1.1\r\nHost: x\r\n\r\n"
        assert error_of(raw_exchange(server.url, absolute))[0] == 400
        stalled = (
            b"POST /v1/messages?api_key=sk-live-408-SECRET2 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        assert error_of(raw_exchange(server.url, stalled))[0] == 408
        assert server.stop() == 0
    finally:
        if server.process.poll() is None:
            server.process.kill()
    output = "".join(server.lines)
    assert output.count("rejected") >= 2, output
    assert "SECRET" not in output, output


def test_credentials_in_a_413_target_are_not_logged(proxy, upstream, monkeypatch, caplog):
    from claude_vcr.proxy import edge

    monkeypatch.setattr(edge, "MAX_REQUEST_BYTES", 1000)
    server = proxy(mode="record")
    large = (
        b"POST /v1/messages?api_key=sk-live-413-SECRET3 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000
    )
    with caplog.at_level("INFO", logger="claude_vcr.proxy"):
        assert error_of(raw_exchange(server.url, large))[0] == 413
        server.stop()
    assert "rejected" in caplog.text and "api_key=" in caplog.text and "SECRET" not in caplog.text


def test_a_stream_whose_save_fails_is_an_error_to_the_sdk(proxy, upstream, db_path, monkeypatch):
    import anthropic
    from claude_vcr.store import StoreThread

    async def refuse(self, recording):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(StoreThread, "save", refuse)
    server = proxy(mode="record")
    with pytest.raises(anthropic.APIConnectionError):
        with client(server.url).messages.stream(**params("streamed then lost", max_tokens=64)) as stream:
            stream.get_final_message()
    assert recordings(db_path) == 0
    monkeypatch.undo()
    with client(server.url).messages.stream(**params("streamed and kept", max_tokens=64)) as stream:
        assert stream.get_final_message().type == "message"
    assert recordings(db_path) == 1


# --- nothing acknowledged is lost ------------------------------------------------------------------------


def test_two_record_runs_on_one_cassette_keep_every_recording(proxy, upstream, db_path):
    first, second = proxy(mode="record"), proxy(mode="record")
    answers = []

    def three(server) -> None:
        for _ in range(3):
            status, headers, _ = post(server.url + MESSAGES, body("the same question"))
            answers.append((status, headers["x-vcr-outcome"]))

    threads = [threading.Thread(target=three, args=(server,)) for server in (first, second, first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [(200, "recorded")] * 12
    assert recordings(db_path) == 12
    with Catalog.open(db_path) as catalog:
        assert sorted(row.ordinal for row in catalog.recordings()) == list(range(12))
    first.stop()
    second.stop()

    rerun = proxy(mode="record")  # a later run re-records: what earlier runs made is replaced
    assert post(rerun.url + MESSAGES, body("the same question"))[1]["x-vcr-outcome"] == "recorded"
    assert recordings(db_path) == 1


def test_recordings_saved_after_a_rekey_carry_the_new_rules_keys(proxy, upstream, db_path, tmp_path):
    from claude_vcr.matching import Rules, key_request

    from tests.support.cli import cli

    server = proxy(mode="record")
    assert post(server.url + MESSAGES, body("before the rekey"))[0] == 200
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"ignore": ["metadata", "max_tokens"], "replace": []}))
    assert cli("rekey", "--db", db_path, "--rules", rules).exit_code == 0
    for text in ("after the rekey", "and once more"):
        status, headers, _ = post(server.url + MESSAGES, body(text))
        assert status == 200 and headers["x-vcr-outcome"] == "recorded"
        expected = key_request(
            "POST", MESSAGES, "", json.dumps(body(text)).encode(), Rules.from_json(rules.read_text())
        )
        with Catalog.open(db_path) as catalog:
            assert expected.key in {row.key for row in catalog.recordings()}
    server.stop()
    replayer = proxy(mode="replay", upstream=unreachable_url())
    for text in ("before the rekey", "after the rekey", "and once more"):
        status, headers, _ = post(
            replayer.url + MESSAGES, body(text, max_tokens=7)
        )  # ignored by the new rules
        assert status == 200 and headers["x-vcr-outcome"] == "hit", text


# --- bounded under load ----------------------------------------------------------------------------------


def test_a_spool_past_its_limit_keeps_nothing():
    from claude_vcr.compression import ResponseSpool

    spool = ResponseSpool(threshold=1024, limit=1024 * 1024)
    piece = b"data: " + b"x" * 65530 + b"\n\n"
    for _ in range(160):  # 10 MB
        spool.write(piece)
    assert spool.dropped and spool.size == 160 * len(piece)
    assert spool.body() == b"" and spool.frame() is None and spool.tail.endswith(b"x\n\n")


def test_record_mode_relays_a_huge_stream_whole_and_says_it_is_not_stored(
    proxy, upstream, db_path, monkeypatch, caplog
):
    from claude_vcr import compression

    monkeypatch.setattr(compression, "STORE_LIMIT", 1024 * 1024)
    server = proxy(mode="record")
    with caplog.at_level("INFO", logger="claude_vcr.proxy"):
        with client(server.url).messages.stream(**params("HUGE:5", max_tokens=64)) as stream:
            message = stream.get_final_message()
        server.stop()
    assert len(message.content[0].text) >= 5 * 1024 * 1024  # the client got every byte
    assert recordings(db_path) == 0
    assert "not stored" in caplog.text and re.search(r"too-large +[0-9a-f]{12} POST", caplog.text)


def test_running_out_of_file_descriptors_is_one_line_a_second(tmp_path):
    import resource
    import subprocess
    import sys

    from tests.support import REPO

    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "claude_vcr",
            "serve",
            "--port",
            "0",
            "--mode",
            "auto",
            "--upstream",
            unreachable_url(),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
        env={**__import__("os").environ, "PYTHONPATH": str(REPO)},
        preexec_fn=few_descriptors,
    )
    try:
        port = int(re.search(r":(\d+) ", process.stdout.readline()).group(1))
        held = []
        started = time.monotonic()
        for _ in range(120):  # more connections than descriptors, each inside its body
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(
                b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100\r\n\r\n{"
            )
            held.append(sock)
        time.sleep(3)
        for sock in held:
            sock.close()
        answer = b""
        deadline = time.monotonic() + 20
        while not answer.startswith(b"HTTP/1.1 404") and time.monotonic() < deadline:  # it recovers
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=3) as probe:
                    probe.sendall(
                        b"GET /__vcr__/probe HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                    )
                    answer = probe.recv(200)
            except OSError:
                time.sleep(0.5)
    finally:
        elapsed = time.monotonic() - started
        process.terminate()
        output = process.communicate(timeout=30)[0]
        for sock in held:
            sock.close()
    said = output.count("out of resources (Too many open files)")
    assert 1 <= said <= elapsed + 2, output[-2000:]
    assert "socket.accept() out of system resource" not in output
    assert answer.startswith(b"HTTP/1.1 404"), answer
