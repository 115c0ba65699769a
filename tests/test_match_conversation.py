"""`--match conversation`: a recording of the same conversation stands in when the exact key misses."""

from __future__ import annotations

import logging

import pytest
from claude_vcr.conversation import conversation
from claude_vcr.matching import Replacement, Rules

from tests.support.client import MESSAGES, body, post
from tests.support.loopback import unreachable_url

REMINDER = "<system-reminder>\nToday's date is 2026-12-02.\n</system-reminder>"
TOOL_TURN = [
    {"role": "user", "content": [{"type": "text", "text": REMINDER}, {"type": "text", "text": "List the files"}]},
    {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "ls will do", "signature": "sig-a"},
            {"type": "text", "text": "Listing."},
            {"type": "tool_use", "id": "toolu_01A", "name": "Bash", "input": {"command": "ls"}},
        ],
    },
    {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "a.py\nb.py", "cache_control": {"type": "ephemeral"}}
        ],
    },
]


def harness(**changes):
    """A request of the tool turn as one release of a client sends it; `changes` as another release would."""
    defaults = {
        "messages": TOOL_TURN,
        "system": [{"type": "text", "text": "You are a coding agent, release 1."}],
        "tools": [{"name": "Bash", "description": "Run a command", "input_schema": {"type": "object"}}],
    }
    return body(**{**defaults, **changes})


@pytest.fixture
def recorded(proxy, upstream):
    """The cassette holds one recording of the tool turn; the upstream is down afterwards."""
    recorder = proxy(mode="record")
    status, _, answer = post(recorder.url + MESSAGES, harness())
    assert status == 200
    recorder.stop()
    upstream.stop()
    return answer


def test_same_conversation_with_another_harness_replays_and_says_what_differed(proxy, recorded, caplog):
    caplog.set_level(logging.WARNING, logger="claude_vcr")
    replay = proxy(mode="replay", upstream=unreachable_url(), match="conversation")
    newer = harness(
        system=[{"type": "text", "text": "You are an agent working toward the user's goals, release 2."}],
        tools=[{"name": "Bash", "description": "Runs a command"}, {"name": "ToolSearch", "input_schema": {}}],
        max_tokens=128000,
        thinking={"type": "adaptive", "display": "omitted"},
        output_config={"effort": "high"},
        messages=[
            {**TOOL_TURN[0], "content": [TOOL_TURN[0]["content"][1], {"type": "text", "text": REMINDER}]},
            {**TOOL_TURN[1], "content": [{"type": "redacted_thinking", "data": "x"}, *TOOL_TURN[1]["content"][1:]]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "a.py\nb.py\n\n" + REMINDER}
                ],
            },
        ],
    )
    status, headers, answer = post(replay.url + MESSAGES, newer)
    assert (status, answer) == (200, recorded)
    assert headers["x-vcr-outcome"] == "hit-conversation"
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("hit-conversation")]
    assert "different max_tokens, messages, output_config, system, thinking, tools" in line


def test_under_stored_replace_rules_the_match_is_worked_out_in_the_worker(proxy, upstream, caplog):
    """Rules with a `replace` pattern are applied to the stored requests in the worker process (with the
    rules deadline), with the same outcome."""
    caplog.set_level(logging.WARNING, logger="claude_vcr")
    rules = Rules(replace=(Replacement(r"release \d", "release N"),))
    recorder = proxy(mode="record", rules=rules)
    status, _, recorded = post(recorder.url + MESSAGES, harness())
    assert status == 200
    recorder.stop()
    upstream.stop()
    replay = proxy(mode="replay", upstream=unreachable_url(), match="conversation")
    newer = harness(system=[{"type": "text", "text": "You are a coding agent, release 2."}], max_tokens=777)
    status, headers, answer = post(replay.url + MESSAGES, newer)
    assert (status, answer, headers["x-vcr-outcome"]) == (200, recorded, "hit-conversation")
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("hit-conversation")]
    assert line.endswith("different max_tokens")  # the system prompts are the same under the rules
    assert replay.running.proxy.offload.started


@pytest.mark.parametrize(
    "change",
    [
        {"model": "claude-haiku-4-5"},
        {"tool_choice": {"type": "any"}},
        {"stop_sequences": ["END"]},
        {"messages": [{"role": "user", "content": "List the files"}]},
        {"messages": [TOOL_TURN[0], TOOL_TURN[1], {"role": "user", "content": [{**TOOL_TURN[2]["content"][0], "is_error": True}]}]},
        {"messages": [TOOL_TURN[0], {**TOOL_TURN[1], "content": [*TOOL_TURN[1]["content"][:2], {**TOOL_TURN[1]["content"][2], "input": {"command": "rm -rf /"}}]}, TOOL_TURN[2]]},
    ],
    ids=["model", "tool_choice", "stop_sequences", "fewer-turns", "tool-error", "tool-input"],
)
def test_what_counts_still_misses(proxy, recorded, change):
    replay = proxy(mode="replay", upstream=unreachable_url(), match="conversation")
    status, headers, _ = post(replay.url + MESSAGES, harness(**change))
    assert (status, headers["x-vcr-outcome"]) == (400, "miss")


def test_exact_matching_stays_the_default(proxy, recorded):
    replay = proxy(mode="replay", upstream=unreachable_url())
    status, headers, _ = post(replay.url + MESSAGES, harness(max_tokens=128000))
    assert (status, headers["x-vcr-outcome"]) == (400, "miss")


def test_the_conversation_leaves_out_reminders_ids_thinking_and_cache_control():
    assert conversation(harness())["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "List the files"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Listing."},
                {"type": "tool_use", "name": "Bash", "input": {"command": "ls"}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "content": [{"type": "text", "text": "a.py\nb.py"}], "is_error": False}],
        },
    ]
