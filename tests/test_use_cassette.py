"""`claude_vcr.use_cassette`, sync and async: the SDK's default clients reach the cassette for the block."""

from __future__ import annotations

import asyncio
import os

import anthropic
import claude_vcr
import pytest
from claude_vcr import harness

from tests.support.client import TEST_API_KEY

ASK = {"model": "claude-opus-5-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture
def environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("VCR_", "ANTHROPIC_")):
            monkeypatch.delenv(name)
    yield
    harness._stop_shared()


def test_sync_records_once_then_replays_with_the_upstream_down(environment, monkeypatch, upstream, tmp_path):
    db = tmp_path / "vcr.db"
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    with claude_vcr.use_cassette("script", mode="once", db=db, upstream=upstream.url) as cassette:
        assert os.environ["ANTHROPIC_BASE_URL"] == cassette.base_url
        recorded = anthropic.Anthropic(max_retries=0).messages.create(**ASK).content[0].text
    assert "ANTHROPIC_BASE_URL" not in os.environ
    assert [o.outcome for o in cassette.outcomes] == ["recorded"] and cassette.mode == "record"
    upstream.stop()
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with claude_vcr.use_cassette("script", db=db, upstream=upstream.url) as cassette:  # mode none
        replayed = anthropic.Anthropic(max_retries=0).messages.create(**ASK).content[0].text
        with pytest.raises(anthropic.BadRequestError, match="no recording for POST /v1/messages"):
            anthropic.Anthropic(max_retries=0).messages.create(**{**ASK, "max_tokens": 65})
    assert replayed == recorded
    assert [o.outcome for o in cassette.outcomes] == ["hit", "miss"]
    assert "ANTHROPIC_API_KEY" not in os.environ  # the replay placeholder is gone again
    assert "record mode 'none'" in cassette.miss_report()


def test_async_form(environment, monkeypatch, upstream, tmp_path):
    db = tmp_path / "vcr.db"
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)

    async def ask(mode: str) -> tuple[str, list[str]]:
        async with claude_vcr.use_cassette("async", mode=mode, db=db, upstream=upstream.url) as cassette:
            message = await anthropic.AsyncAnthropic(max_retries=0).messages.create(**ASK)
        return message.content[0].text, [o.outcome for o in cassette.outcomes]

    recorded, outcomes = asyncio.run(ask("new_episodes"))
    assert outcomes == ["recorded"]
    upstream.stop()
    assert asyncio.run(ask("none")) == (recorded, ["hit"])


def test_rewrite_drops_the_cassette_first_and_bad_arguments_are_one_line(environment, monkeypatch, upstream, tmp_path):
    db = tmp_path / "vcr.db"
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    with claude_vcr.use_cassette("rw", mode="once", db=db, upstream=upstream.url):
        anthropic.Anthropic(max_retries=0).messages.create(**ASK)
        anthropic.Anthropic(max_retries=0).messages.create(**{**ASK, "max_tokens": 65})
    with claude_vcr.use_cassette("rw", mode="rewrite", db=db, upstream=upstream.url) as cassette:
        anthropic.Anthropic(max_retries=0).messages.create(**ASK)
    assert [o.outcome for o in cassette.outcomes] == ["recorded"]
    with claude_vcr.Catalog.open(db) as catalog:
        assert len(catalog.recordings("rw")) == 1
    with pytest.raises(claude_vcr.InvalidInput, match="record mode 'sometimes'"):
        with claude_vcr.use_cassette("rw", mode="sometimes", db=db):
            pass
    with pytest.raises(claude_vcr.BadCassetteName):
        claude_vcr.use_cassette("../escape", db=db)
    with pytest.raises(claude_vcr.InvalidInput, match="pace"):
        claude_vcr.use_cassette("rw", db=db, pace="sideways")
