"""Monitor mode: `--mode passthrough` stores nothing; `--check` validates what passes through."""

from __future__ import annotations

import logging
import time

from tests.test_proxy import MESSAGES, body, post, rows


def check_lines(caplog, expected: int = 1, timeout: float = 5.0) -> list[str]:
    """Findings are logged once the client has its answer: wait for them."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("check")]
        if len(lines) >= expected or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


def test_passthrough_forwards_everything_and_stores_nothing(proxy, upstream, db_path):
    server = proxy(mode="passthrough")
    first = post(server.url + MESSAGES, body(stream=True))
    second = post(server.url + MESSAGES, body(stream=True))
    assert first[0] == second[0] == 200 and first[2] != second[2]
    assert first[1]["x-vcr-outcome"] == "passthrough"
    assert len(upstream.calls) == 2
    server.stop()
    assert rows(db_path) == []


def test_check_logs_protocol_violations_with_the_key(proxy, upstream, caplog):
    server = proxy(mode="passthrough", check=True)
    with caplog.at_level(logging.WARNING, logger="claude_vcr.proxy"):
        good = post(server.url + MESSAGES, body("fine", stream=True))
        bad = post(server.url + MESSAGES, body("BADINDEX", stream=True))
        checks = check_lines(caplog)
    assert good[0] == bad[0] == 200
    assert checks and all(bad[1]["x-vcr-key"][:12] in line for line in checks)
    assert any(" S4 error" in line for line in checks)
    assert not any(good[1]["x-vcr-key"][:12] in line for line in checks)


def test_check_also_validates_replayed_answers(proxy, upstream, caplog):
    recorder = proxy(mode="record")
    post(recorder.url + MESSAGES, body("BADINDEX", stream=True))
    recorder.stop()
    replay = proxy(mode="replay", check=True)
    with caplog.at_level(logging.WARNING, logger="claude_vcr.proxy"):
        assert post(replay.url + MESSAGES, body("BADINDEX", stream=True))[0] == 200
        assert any(" S4 error" in line for line in check_lines(caplog))
