"""Fixtures for the scenario library: served as an upstream, recorded per test, recorded once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from claude_vcr.config import ProxyConfig
from claude_vcr.conformance.library import SCENARIOS

from tests.support.loopback import LoopbackServer, LoopThread, serving
from tests.support.proxies import ProxyHandle
from tests.support.scenario_upstream import CASSETTE, ScenarioUpstream, record_library


@pytest.fixture
def scenario_upstream(loop_thread: LoopThread) -> Iterator[LoopbackServer[ScenarioUpstream]]:
    """The exact scenario library on a loopback port."""
    with serving(loop_thread, ScenarioUpstream()) as running:
        yield running


@pytest.fixture
def scenario_db(proxy, scenario_upstream: LoopbackServer[ScenarioUpstream], db_path: Path) -> Path:
    """The whole library recorded through the proxy (errors too) into cassette `scenarios` of `db_path`."""
    recorder = proxy(mode="record", upstream=scenario_upstream.url, record_errors=True)
    received = record_library(f"{recorder.url}/c/{CASSETTE}")
    recorder.stop()
    for scenario in SCENARIOS:
        assert received[scenario.name] == (scenario.status, scenario.body), scenario.name
    return db_path


@pytest.fixture(scope="module")
def library_db(loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The library recorded through a record-mode proxy once per test module; tests must only read it."""
    db = tmp_path_factory.mktemp("library") / "vcr.db"
    with serving(loop_thread, ScenarioUpstream()) as upstream:
        config = ProxyConfig(db=db, upstream=upstream.url, port=0, mode="record", record_errors=True)
        recorder = ProxyHandle(loop_thread, config)
        try:
            received = record_library(f"{recorder.url}/c/{CASSETTE}")
        finally:
            recorder.stop()
    assert all(received[s.name] == (s.status, s.body) for s in SCENARIOS)
    return db
