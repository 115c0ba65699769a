"""The model of a Claude Code request (`claude_code`): harness, conversation and the user's choices, on the
requests Claude Code 2.1.328 really sent (shared/samples); the release matrix covers other releases."""

from __future__ import annotations

import copy
import json

from claude_vcr import claude_code
from claude_vcr.excerpts import prompt_excerpt
from claude_vcr.matching import Rules, request_key

from tests.support.samples import relocated, sample

PRESET = Rules().with_presets("claude-code")
BEFORE = Rules(presets=("claude-code",), versions=(("claude-code", 2),))


def key(body: dict, rules: Rules = PRESET) -> str:
    return request_key("POST", "/v1/messages", "beta=true", json.dumps(body).encode(), rules)


V3 = Rules(presets=("claude-code",), versions=(("claude-code", 3),))


def test_new_cassettes_key_under_version_4_and_stored_rules_keep_theirs():
    assert PRESET.versions == (("claude-code", 4),)
    assert Rules.from_json(V3.to_json()).versions == (("claude-code", 3),)
    stored = Rules.from_json(BEFORE.to_json())
    assert stored.versions == (("claude-code", 2),)
    assert key(sample("text-turn"), stored) == key(sample("text-turn"), BEFORE) != key(sample("text-turn"))


def test_the_harness_does_not_change_the_key():
    body = sample("text-turn")
    other = relocated(body, "/srv/ci/checkout", "/root")
    text = (
        json.dumps(other)
        .replace("cc_version=2.1.328", "cc_version=2.1.350")
        .replace("2026-11-21", "2027-03-14")
    )
    other = json.loads(text)
    other["system"][2]["text"] += "\nA new paragraph of the system prompt."
    other["tools"] = [t for t in other["tools"] if t["name"] != "Edit"] + [
        {"name": "CronCreate", "input_schema": {}}
    ]
    other["messages"][0]["content"].insert(
        0, {"type": "text", "text": "<system-reminder>ToolSearch is gone</system-reminder>"}
    )
    other["thinking"] = {"type": "adaptive", "display": "summarized"}
    other["max_tokens"] = 64000
    assert key(other) == key(body)
    assert key(other, BEFORE) != key(body, BEFORE)  # what version 2 missed on


def test_the_temperature_claude_code_sets_for_itself_counts_only_under_version_3():
    """2.1.197 sent `temperature: 1` with a subagent's requests, later releases none (the release matrix)."""
    body = sample("text-turn")
    hot = {**body, "temperature": 1}
    assert key(hot) == key(body)
    assert key(hot, V3) != key(body, V3)  # what version 3 keeps doing for its cassettes
    assert claude_code.drift_summary(hot, body) is not None and "temperature" in claude_code.drift_summary(hot, body)


def test_the_conversation_and_the_user_choices_change_the_key():
    body = sample("tool-turn-2")
    for change in (
        lambda b: b.update(model="claude-haiku-4-5"),
        lambda b: b["messages"][0]["content"][1].update(text="Please RUN:ls"),
        lambda b: b["messages"][2]["content"][1]["input"].update(command="ls"),
        lambda b: b["messages"][3]["content"][0].update(content="other output"),
        lambda b: b.update(tools=[]),  # a side request: no tools
    ):
        changed = copy.deepcopy(body)
        change(changed)
        assert key(changed) != key(body)


def test_the_typed_prompt_is_what_list_shows():
    body = sample("text-turn")
    assert claude_code.typed_prompt(body) == "Summarise what this project does."
    assert prompt_excerpt(json.dumps(body).encode()) == "Summarise what this project does."


NOTIFICATION = """[SYSTEM NOTIFICATION - NOT USER INPUT]
This is an automated background-task event, NOT a message from the user.

<task-notification>
<task-id>a770f9360cb12a0c3</task-id>
<tool-use-id>toolu_scripted0011</tool-use-id>
<output-file>/tmp/claude-0/-tmp-shop-app/da256f66-353a-4c93-997d-8d295fae0c60/tasks/a770f9360cb12a0c3.output</output-file>
<status>completed</status>
<summary>Agent "Ask a helper" finished</summary>
<result>Scripted reply number 12. Hello from the scripted upstream!</result>
<usage><subagent_tokens>38</subagent_tokens><tool_uses>0</tool_uses><duration_ms>205</duration_ms></usage>
</task-notification>"""
"""What Claude Code 2.1.229 (through the Agent SDK 0.2.137) sent when a background subagent reported."""


def test_a_background_task_notification_is_not_shown_as_typed():
    body = sample("text-turn")
    body["messages"] += [
        {"role": "assistant", "content": [{"type": "text", "text": "The subagent is on it."}]},
        {"role": "user", "content": [{"type": "text", "text": NOTIFICATION}]},
    ]
    assert claude_code.typed_prompt(body) is None
    assert prompt_excerpt(json.dumps(body).encode()) == '[task-notification] Agent "Ask a helper" finished'
    assert claude_code.shown_text("<system-reminder>x</system-reminder> Hi") == "Hi"


def test_drift_names_both_versions_and_what_changed():
    body = sample("text-turn")
    headers = {"User-Agent": "claude-cli/2.1.328 (external, sdk-cli)"}
    newer = copy.deepcopy(body)
    newer["system"][2]["text"] += "\nline one\nline two"
    newer["tools"] = [t for t in newer["tools"] if t["name"] != "Edit"] + [
        {"name": "CronCreate", "input_schema": {}}
    ]
    newer["thinking"] = {"type": "adaptive", "display": "summarized"}
    line = claude_code.drift_line(
        headers, json.dumps(body).encode(), {"user-agent": "claude-cli/2.1.350"}, json.dumps(newer).encode()
    )
    assert (
        line
        == "claude-code 2.1.328 -> 2.1.350: system prompt 2 lines, tools +CronCreate -Edit, thinking.display"
    )
    assert (
        claude_code.drift_line(headers, json.dumps(body).encode(), headers, json.dumps(body).encode()) is None
    )
    assert claude_code.drift_line({}, b'{"messages": []}', {}, b'{"messages": []}') is None  # not Claude Code


def test_versions_come_from_the_user_agent_or_the_billing_header():
    body = sample("text-turn")
    assert claude_code.version({"User-Agent": "claude-cli/2.1.332 (external, cli)"}, body) == "2.1.332"
    assert claude_code.version({}, body) == "2.1.328"
