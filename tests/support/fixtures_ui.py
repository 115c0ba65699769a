"""Fixtures for the viewer's tests: a db recorded through the real proxy, a saved miss, the viewer, Chromium."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from claude_vcr.catalog import Catalog
from claude_vcr.config import ProxyConfig
from claude_vcr.ui.server import running

from tests.support.browser import Chromium, Page, chromium_path
from tests.support.client import WEATHER_TOOL, call, params, post
from tests.support.loopback import LoopThread, serving
from tests.support.proxies import ProxyHandle
from tests.support.secret_corpus import fake_secrets
from tests.support.upstream import ScriptedUpstream

PAYLOAD = (
    'Please explain <script>window.__pwned = "script"</script> and '
    '<img src="x" onerror="window.__pwned = \'img\'"> literally'
)
"""A prompt carrying script: the viewer must show it as text and never run it."""


@dataclass
class ViewerData:
    db: Path
    misses: Path
    digest: str
    """sha256 of the db file as recorded: the viewer must leave it byte for byte."""


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


PASTED_KEY = dict(fake_secrets())["anthropic-key"]
"""A fake Anthropic key a user pasted into a prompt: stored as sent (no --redact), shown masked."""


@pytest.fixture(scope="session")
def viewer_data(loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> ViewerData:
    """Recorded through the proxy from the scripted upstream: plain JSON, streams, a tool call, a repeat,
    a stream that breaks a protocol rule, the script payload; then a strict replay miss saved to a folder."""
    folder = tmp_path_factory.mktemp("viewer")
    db, misses = folder / "vcr.db", folder / "misses"
    with serving(loop_thread, ScriptedUpstream()) as upstream:
        recorder = ProxyHandle(loop_thread, ProxyConfig(db=db, upstream=upstream.url, port=0, mode="record"))
        try:
            basic = recorder.url + "/c/basic_tests"
            call(basic, **params("Hi there, what can you do?"))
            call(basic, **params("Tell me a story about a lighthouse", model="claude-haiku-4-5", stream=True))
            call(basic, **params("Tell me a story about a lighthouse", model="claude-haiku-4-5", stream=True))
            call(basic, **params(PAYLOAD, stream=True))
            call(basic, **params("BADINDEX stream with a wrong block index", stream=True))
            tools = recorder.url + "/c/agent_tools"
            call(
                tools,
                **params(
                    "What is the weather in Paris?",
                    tools=[WEATHER_TOOL],
                    system="You are a weather bot.",
                    stream=True,
                ),
            )
            call(tools, **params("BIG:3 Summarise the week's forecast", stream=True))
            call(recorder.url + "/c/pasted_key", **params(f"my key is {PASTED_KEY}, is it valid?"))
        finally:
            recorder.stop()
        replayer = ProxyHandle(
            loop_thread, ProxyConfig(db=db, upstream=upstream.url, port=0, mode="replay", save_misses=misses)
        )
        try:
            status, _, _ = post(
                replayer.url + "/c/basic_tests/v1/messages",
                params("Hi there, what can you do today?", max_tokens=100) | {"stream": False},
            )
            assert status == 400
        finally:
            replayer.stop()
    assert len(list(misses.glob("*.json"))) == 1
    return ViewerData(db, misses, file_digest(db))


@contextmanager
def viewing(loop_thread: LoopThread, db: Path, misses: Path | None = None) -> Iterator[str]:
    """The viewer over `db` on a free loopback port, for the block; yields its URL."""
    context = running(db, port=0, misses=misses)
    url = loop_thread.run(context.__aenter__())
    try:
        yield url
    finally:
        loop_thread.run(context.__aexit__(None, None, None))


@pytest.fixture(scope="session")
def viewer_url(loop_thread: LoopThread, viewer_data: ViewerData) -> Iterator[str]:
    """The viewer over the recorded db, on a free loopback port."""
    with viewing(loop_thread, viewer_data.db, viewer_data.misses) as url:
        yield url


def recording_id(db: Path, cassette: str, text: str) -> int:
    """The id of the recording of a cassette whose prompt excerpt contains `text`."""
    with Catalog.open(db) as catalog:
        return next(r.id for r in catalog.recordings(cassette) if text in (r.prompt_excerpt or ""))


@pytest.fixture(scope="session")
def browser(loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    """One headless Chromium tab for the session."""
    if chromium_path() is None:
        pytest.fail("chromium is not installed: run tests/install.sh")
    with Chromium.launch(tmp_path_factory.mktemp("chromium-profile")) as chromium:
        page = chromium.page(loop_thread)
        try:
            yield page
        finally:
            page.close()
