"""Monitor mode: `--mode passthrough` stores nothing; `--check` validates what passes through."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from tests.support.cassettes import rows
from tests.support.client import MESSAGES, body, post


class CheckFindings(logging.Handler):
    """The proxy's `check` lines as they are logged; findings come once the client has its answer, so a test
    waits for them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []
        self.arrived = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("check"):
            with self.arrived:
                self.lines.append(message)
                self.arrived.notify_all()

    def wait(self, expected: int = 1, timeout: float = 30) -> list[str]:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.lines) >= expected, timeout)
            return list(self.lines)


@pytest.fixture
def findings(caplog) -> Iterator[CheckFindings]:
    """Check findings logged while the test runs (warnings of claude_vcr.proxy let through)."""
    handler = CheckFindings()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with caplog.at_level(logging.WARNING, logger="claude_vcr.proxy"):
            yield handler
    finally:
        root.removeHandler(handler)


def test_passthrough_forwards_everything_and_stores_nothing(proxy, upstream, db_path):
    server = proxy(mode="passthrough")
    first = post(server.url + MESSAGES, body(stream=True))
    second = post(server.url + MESSAGES, body(stream=True))
    assert first[0] == second[0] == 200 and first[2] != second[2]
    assert first[1]["x-vcr-outcome"] == "passthrough"
    assert len(upstream.calls) == 2
    server.stop()
    assert rows(db_path) == []


def test_check_logs_protocol_violations_with_the_key(proxy, upstream, findings):
    server = proxy(mode="passthrough", check=True)
    good = post(server.url + MESSAGES, body("fine", stream=True))
    bad = post(server.url + MESSAGES, body("BADINDEX", stream=True))
    checks = findings.wait()
    assert good[0] == bad[0] == 200
    assert checks and all(bad[1]["x-vcr-key"][:12] in line for line in checks)
    assert any(" E S4 " in line for line in checks)
    assert not any(good[1]["x-vcr-key"][:12] in line for line in checks)


def test_check_also_validates_replayed_answers(proxy, upstream, findings):
    recorder = proxy(mode="record")
    post(recorder.url + MESSAGES, body("BADINDEX", stream=True))
    recorder.stop()
    replay = proxy(mode="replay", check=True)
    assert post(replay.url + MESSAGES, body("BADINDEX", stream=True))[0] == 200
    assert any(" E S4 " in line for line in findings.wait())
