"""The first minutes with claude-vcr: start-up that tells the truth, and errors a person understands.

Upstream failures are made with real sockets on loopback: a closed port, a name that cannot resolve
(`.invalid` is reserved, RFC 2606, so the lookup fails without reaching the internet), a plain TCP server
behind an https:// URL, and a server that accepts and never answers.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from claude_vcr.cli import main
from click.testing import CliRunner

from tests.support import REPO
from tests.support.client import body, post
from tests.support.loopback import unreachable_url


def run_cli(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


# --- start-up ------------------------------------------------------------------------------------------


def test_strict_replay_of_a_missing_db_is_an_error_and_creates_nothing(tmp_path):
    db = tmp_path / "typo" / "vcr.db"
    code, _, err = run_cli("serve", "--mode", "replay", "--db", db, "--port", "0")
    assert code == 1
    assert f"no database at {db}" in err and "Traceback" not in err
    assert not (tmp_path / "typo").exists()


def test_replay_with_an_empty_default_cassette_warns_and_names_the_cassettes(proxy, upstream, db_path):
    recorder = proxy(mode="record", cassette="one")
    post(recorder.url + "/v1/messages", body("hi"))
    recorder.stop()
    replay = proxy(mode="replay")
    [warning] = replay.running.warnings
    assert "cassette 'default' has no recordings" in warning
    assert "one (1)" in warning and "--cassette NAME" in warning
    auto = proxy(mode="auto", cassette="nosuch")
    assert "forwarded to " + upstream.url in auto.running.warnings[0]
    assert proxy(mode="replay", cassette="one").running.warnings == []
    assert proxy(mode="record").running.warnings == []


def test_the_fallback_warning_tells_the_truth_and_names_at_most_ten_cassettes(proxy, upstream, db_path):
    """`--mode replay --fallback fallback` forwards and records a request naming no cassette: the warning
    says so (it used to say they "will miss"); of many cassettes, ten are named and the rest counted."""
    for number in range(12):
        recorder = proxy(mode="record", cassette=f"suite_{number:02d}")
        post(recorder.url + "/v1/messages", body(f"hi {number}"))
        recorder.stop()
    [warning] = proxy(mode="replay", fallback="fallback").running.warnings
    assert f"requests that name no cassette are forwarded to {upstream.url} and recorded" in warning
    assert "will miss" not in warning
    assert "suite_09 (1) and 2 more." in warning and "suite_10" not in warning
    [strict] = proxy(mode="replay").running.warnings
    assert "requests that name no cassette will miss" in strict
    fallen = proxy(mode="replay", fallback="fallback")
    answer = post(fallen.url + "/v1/messages", body("unnamed"))
    assert answer[1]["x-vcr-outcome"] == "recorded"  # what the warning said


def test_serve_prints_the_warning_on_stderr_after_the_banner(tmp_path, upstream):
    db = tmp_path / "vcr.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "claude_vcr", "serve", "--db", str(db), "--port", "0", "--upstream", upstream.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert "listening on" in process.stdout.readline()
        warning = process.stderr.readline()
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert warning.startswith("claude-vcr: warning: cassette 'default' has no recordings")
    assert f"{db} has no recordings" in warning


def test_a_miss_on_an_unknown_cassette_says_so(proxy):
    for name in ("one", "two"):
        recorder = proxy(mode="record", cassette=name)
        post(recorder.url + "/v1/messages", body("hi"))
        recorder.stop()
    replay = proxy(mode="replay", cassette="one")
    status, headers, answer = post(replay.url + "/c/nosuch/v1/messages", body("hi"))
    message = json.loads(answer)["error"]["message"]
    assert status == 400 and headers["x-vcr-outcome"] == "miss"
    assert "no cassette named 'nosuch'; cassettes: one, two" in message


# --- messages -------------------------------------------------------------------------------------------


def upstream_error(proxy, upstream_url: str, **config) -> str:
    handle = proxy(mode="record", upstream=upstream_url, **config)
    status, headers, answer = post(handle.url + "/v1/messages", body("hi"))
    error = json.loads(answer)
    assert status == 502 and error["type"] == "error" and error["error"]["type"] == "api_error"
    assert headers["x-should-retry"] == "false"
    message = error["error"]["message"]
    assert upstream_url in message and "ConnectionKey" not in message and "Error(" not in message
    return message


@contextmanager
def tcp_server(greeting: bytes = b"") -> Iterator[socket.socket]:
    """A plain TCP listener on loopback that accepts connections, says `greeting` and then nothing."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn = listener.accept()[0]
            except OSError:
                continue
            accepted.append(conn)
            if greeting:
                conn.sendall(greeting)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener
    stop.set()
    thread.join(5)
    for conn in accepted:
        conn.close()
    listener.close()


def test_upstream_refused_names_the_url_and_says_nothing_listens(proxy):
    url = unreachable_url()
    message = upstream_error(proxy, url)
    assert "connection refused: nothing is listening on 127.0.0.1:" in message


def test_upstream_name_that_does_not_resolve(proxy):
    message = upstream_error(proxy, "http://nonexistent.invalid:8080")
    assert "the name nonexistent.invalid could not be resolved (DNS lookup failed" in message


def test_upstream_tls_handshake_against_plain_tcp(proxy):
    with tcp_server(b"220 plain text, not TLS\r\n") as server:
        message = upstream_error(proxy, f"https://127.0.0.1:{server.getsockname()[1]}")
    assert "the TLS handshake with 127.0.0.1:" in message


def test_upstream_tls_handshake_against_http_server(proxy, upstream):
    https_url = upstream.url.replace("http://", "https://")
    message = upstream_error(proxy, https_url)
    assert "the TLS handshake with 127.0.0.1:" in message and "http:// server behind an https:// URL" in message


def test_upstream_that_never_answers_times_out_in_plain_words(proxy):
    with tcp_server() as server:
        message = upstream_error(proxy, f"http://127.0.0.1:{server.getsockname()[1]}", upstream_read_timeout=0.5)
    assert "accepted the connection but sent no answer in time (read timeout)" in message


def test_a_doubled_v1_says_the_base_url_has_an_extra_v1(proxy, upstream):
    handle = proxy(mode="auto")
    status, _, answer = post(handle.url + "/v1/v1/messages", body("hi"))
    message = json.loads(answer)["error"]["message"]
    assert status == 404 and "extra /v1" in message and "ANTHROPIC_BASE_URL=http://127.0.0.1:8000" in message
    assert upstream.calls == []


def test_port_in_use_suggests_port_zero(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code, _, err = run_cli("serve", "--db", tmp_path / "vcr.db", "--port", str(port))
    assert code == 1 and "--port 0" in err and "Traceback" not in err


def test_upstream_messages_are_anthropic_shaped_for_the_sdk(proxy):
    import anthropic

    handle = proxy(mode="record", upstream=unreachable_url())
    client = anthropic.Anthropic(base_url=handle.url, api_key="sk-test", max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(model="claude-opus-5-5", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert "connection refused" in str(caught.value)
