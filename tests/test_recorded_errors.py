"""Errors recorded as users of vcrpy expect: a deterministic API error (400, 404...) is an answer, recorded and
replayed byte for byte by default; a transient one (429, 529, 5xx, a stream broken off by `overloaded_error`)
passes through unstored unless --record-errors, and every answer not stored is counted, with why."""

from __future__ import annotations

import json

import pytest
from claude_vcr.storable import by_status, verdict

from tests.support.cassettes import rows
from tests.support.client import MESSAGES, body, post
from tests.support.loopback import unreachable_url


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
def test_deterministic_errors_are_storable(status):
    assert by_status(status, record_errors=False).store
    answer = json.dumps({"type": "error", "error": {"type": "invalid_request_error", "message": "x"}}).encode()
    assert verdict(status, answer, streamed_error=False, record_errors=False).store


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 529])
def test_transient_errors_are_not_unless_asked(status):
    decided = by_status(status, record_errors=False)
    assert not decided.store and decided.reason == f"transient error {status} (--record-errors stores it)"
    assert by_status(status, record_errors=True).store


def test_a_stream_broken_off_by_overload_is_transient_and_a_400_saying_overloaded_is_too():
    tail = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    decided = verdict(200, b"event: message_start\ndata: {}\n\n" + tail, streamed_error=True, record_errors=False)
    assert not decided.store and "overloaded_error" in decided.reason
    assert verdict(200, tail, streamed_error=True, record_errors=True).store
    assert not verdict(400, tail, streamed_error=False, record_errors=False).store


def test_400_and_404_are_recorded_by_default_and_replayed_identically(proxy, upstream, db_path):
    recorder = proxy(mode="record")
    answers = {}
    for text in ("STATUS:400 unsupported option", "STATUS:404 no such model"):
        status, headers, raw = post(recorder.url + MESSAGES, body(text))
        assert headers["x-vcr-outcome"] == "recorded", text
        answers[text] = (status, raw, headers["request-id"])
    recorder.stop()
    assert sorted(r["status"] for r in rows(db_path)) == [400, 404]
    upstream.stop()
    replayer = proxy(mode="replay", upstream=unreachable_url())
    for text, (status, raw, request_id) in answers.items():
        again = post(replayer.url + MESSAGES, body(text))
        assert (again[0], again[2]) == (status, raw) and again[1]["x-vcr-outcome"] == "hit"
        assert again[1]["request-id"] == request_id
    assert json.loads(answers["STATUS:404 no such model"][1])["error"]["type"] == "not_found_error"


def test_429_and_529_pass_through_unstored_and_are_counted(proxy, upstream, db_path):
    recorder = proxy(mode="record")
    for text, code in (("STATUS:429 slow down", 429), ("STATUS:529 overloaded", 529), ("OVERLOADED", 200)):
        status, headers, _ = post(recorder.url + MESSAGES, body(text, stream=text == "OVERLOADED"))
        # a stream's header is sent before its end is known: `recording`, then counted as not stored
        assert status == code and headers["x-vcr-outcome"] == ("recording" if code == 200 else "passthrough"), text
    post(recorder.url + MESSAGES, body("fine"))
    assert recorder.running.not_stored() == {
        "transient error 429 (--record-errors stores it)": 1,
        "transient error 529 (--record-errors stores it)": 1,
        "stream ended in a transient overloaded_error event (--record-errors stores it)": 1,
    }
    recorder.stop()
    assert [r["status"] for r in rows(db_path)] == [200]


def test_record_errors_stores_the_transient_ones(proxy, upstream, db_path):
    recorder = proxy(mode="record", record_errors=True)
    assert post(recorder.url + MESSAGES, body("STATUS:529 overloaded"))[1]["x-vcr-outcome"] == "recorded"
    recorder.stop()
    assert [r["status"] for r in rows(db_path)] == [529]


def test_a_strict_miss_of_a_request_answered_by_a_transient_error_says_so(upstream, db_path):
    """One process, as a pytest run: a test records (new_episodes) and meets a 429; a later use of the cassette
    in `none` misses it, and the miss says why it has no recording and names the option."""
    from claude_vcr.harness import ProxyThread, test_config

    with ProxyThread(test_config({}, db=db_path, upstream=upstream.url)) as proxy:
        recording = proxy.use("flaky", "new_episodes")
        assert post(recording.base_url + MESSAGES, body("STATUS:429 slow down"))[0] == 429
        proxy.release(recording)
        replaying = proxy.use("flaky", "none")
        status, _, raw = post(replaying.base_url + MESSAGES, body("STATUS:429 slow down"))
        proxy.release(replaying)
    message = json.loads(raw)["error"]["message"]
    assert status == 400 and "this request got a 429 (rate_limit_error), which was not stored" in message
    assert "pass --record-errors to store such errors" in message


def test_serve_says_how_many_answers_it_did_not_store_and_why(upstream, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from tests.support.loopback import free_port, wait_listening

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VCR_")}
    served = subprocess.Popen(
        [sys.executable, "-m", "claude_vcr", "serve", "--mode", "record", "--db", str(tmp_path / "vcr.db"),
         "--upstream", upstream.url, "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        import time

        assert wait_listening(port, time.monotonic() + 60, lambda: served.poll() is None)
        url = f"http://127.0.0.1:{port}"
        for text in ("STATUS:429 a", "STATUS:404 b", "fine"):
            post(url + MESSAGES, body(text))
    finally:
        served.send_signal(signal.SIGINT)
        out, _ = served.communicate(timeout=60)
    assert "claude-vcr: 2 recording(s) stored, 0 could not be stored" in out
    assert "claude-vcr: 1 answer(s) not stored: 1 transient error 429 (--record-errors stores it)" in out
