"""Claude on Microsoft Foundry: the Messages API under another host and auth header (`api-key`), recorded
as first-party traffic; the key is filtered like x-api-key and never stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from anthropic import AnthropicFoundry

from tests.support.claude_code import PROVIDER_SETTINGS, run_claude
from tests.support.db_scan import every_value
from tests.support.loopback import unreachable_url

KEY = "foundry-sdk-EXAMPLE-key-abcdef0123456789"
TEXT = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "Hi there"}],
}


def client(url: str) -> AnthropicFoundry:
    return AnthropicFoundry(base_url=url, api_key=KEY, max_retries=0)


def json_call(url: str) -> tuple[bytes, dict]:
    response = client(url).messages.with_raw_response.create(**TEXT)
    return response.http_response.content, response.parse().model_dump()


def stream_call(url: str) -> tuple[bytes, dict]:
    with client(url).messages.with_streaming_response.create(stream=True, **TEXT) as response:
        raw = response.read()
    with client(url).messages.stream(**TEXT) as stream:
        return raw, stream.get_final_message().model_dump()


@pytest.mark.parametrize("call", [json_call, stream_call], ids=["json", "stream"])
def test_sdk_records_then_replays_strict_offline(proxy, upstream, db_path, call):
    recorder = proxy(mode="record")
    recorded_bytes, recorded = call(recorder.url)
    recorder.stop()
    assert upstream.calls[0].headers["api-key"] == KEY
    upstream.stop()
    calls = len(upstream.calls)
    replayer = proxy(mode="replay", upstream=unreachable_url())
    assert call(replayer.url) == (recorded_bytes, recorded)
    assert len(upstream.calls) == calls
    assert KEY.encode() not in every_value(db_path)


@pytest.mark.claude_code
def test_claude_code_on_foundry(claude, proxy, upstream, tmp_path: Path, db_path):
    workdir, home = tmp_path / "work", tmp_path / "home"
    workdir.mkdir()
    home.mkdir()
    recorder = proxy(mode="record")
    recorded = run_claude(
        claude, recorder.url + "/c/foundry_cc", workdir, home, "Say hello", provider="foundry"
    )
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert "Scripted reply number" in recorded.stdout
    recorder.stop()
    upstream.stop()
    replayer = proxy(mode="replay", upstream=unreachable_url())
    replayed = run_claude(
        claude, replayer.url + "/c/foundry_cc", workdir, home, "Say hello", provider="foundry"
    )
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert replayed.stdout == recorded.stdout
    assert PROVIDER_SETTINGS["foundry"]["ANTHROPIC_FOUNDRY_API_KEY"].encode() not in every_value(db_path)
