"""Suites that the tests run in a pytest of their own (pytester, in a subprocess): the claude-vcr plugin as
its users meet it, loaded from the installed package's entry point."""

from __future__ import annotations

import re

import pytest

FAST = ("-p", "no:cacheprovider", "-p", "claude_vcr.pytest_plugin")
"""With PYTEST_DISABLE_PLUGIN_AUTOLOAD=1: only our plugin, not every plugin of the environment (some take
seconds to import); tests of the entry point itself run without these."""

SDK_SUITE = '''
import asyncio

import anthropic
import pytest

PARAMS = {"model": "claude-opus-5-5", "max_tokens": 64}


def ask(text):
    return dict(PARAMS, messages=[{"role": "user", "content": text}])


@pytest.mark.claude_vcr
def test_sync():
    message = anthropic.Anthropic(max_retries=0).messages.create(**ask("sync question"))
    print("ANSWER", message.content[0].text)


@pytest.mark.claude_vcr
def test_async():
    async def main():
        client = anthropic.AsyncAnthropic(max_retries=0)
        return await client.messages.create(**ask("async question"))

    print("ANSWER", asyncio.run(main()).content[0].text)


@pytest.mark.claude_vcr
def test_stream():
    with anthropic.Anthropic(max_retries=0).messages.stream(**ask("streamed question")) as stream:
        print("ANSWER", stream.get_final_message().content[0].text)
'''


def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No VCR_* or ANTHROPIC_* variable of the outer run leaks into an inner one."""
    import os

    for name in list(os.environ):
        if name.startswith(("VCR_", "ANTHROPIC_", "PYTEST_ADDOPTS")):
            monkeypatch.delenv(name)


def answers(output: str) -> list[str]:
    """What the inner tests printed as their answers (run with -s)."""
    return re.findall(r"ANSWER (.*)", output)


CLAUDE_CODE_SUITE = '''
import os, subprocess

import pytest


@pytest.mark.claude_vcr(preset="claude-code")
def test_claude_code_summarises():
    env = dict(os.environ, HOME=os.environ["SESSION_HOME"], CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
               DISABLE_AUTOUPDATER="1", TERM="dumb")
    done = subprocess.run(
        [os.environ["CLAUDE"], "-p", "Summarise this project in one line"], cwd=os.environ["SESSION_DIR"],
        env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    print("ANSWER", done.stdout.strip())
'''

AGENT_SDK_SUITE = '''
import asyncio, os

import pytest
from claude_agent_sdk import AssistantMessage, ClaudeAgentOptions, TextBlock, query


@pytest.mark.claude_vcr(preset="claude-code")
def test_agent_sdk_query():
    options = ClaudeAgentOptions(
        cli_path=os.environ["CLAUDE"], cwd=os.environ["SESSION_DIR"], max_turns=1, setting_sources=[],
        env={"HOME": os.environ["SESSION_HOME"], "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
             "DISABLE_AUTOUPDATER": "1"},
    )

    async def ask():
        texts = []
        async for message in query(prompt="Summarise this project in one line", options=options):
            if isinstance(message, AssistantMessage):
                texts += [block.text for block in message.content if isinstance(block, TextBlock)]
        return " ".join(texts)

    print("ANSWER", asyncio.run(ask()))
'''
