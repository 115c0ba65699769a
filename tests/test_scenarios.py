"""The scenario library: what it covers, that every answer is protocol-clean and readable by the official SDK,
and that recorded through the proxy it lints clean and replays byte for byte."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import anthropic
import pytest
from claude_vcr.catalog import Catalog
from claude_vcr.conformance.library import BY_NAME, SCENARIOS, Scenario
from claude_vcr.protocol import validate_response
from claude_vcr.sse import StreamError, accumulate, parse_sse

from tests.support.broken_endpoints import equivalent, fresh_ids
from tests.support.cli import cli
from tests.support.client import client
from tests.support.loopback import serving
from tests.support.scenario_upstream import CASSETTE, ScenarioUpstream, record_library, send

REQUIRED = {
    "text_short": "short text",
    "text_long": "long text",
    "tool_read": "Read",
    "tool_write": "Write",
    "tool_edit": "Edit",
    "tool_bash": "Bash",
    "tool_grep": "Grep",
    "tool_glob": "Glob",
    "multi_tool": "several tools in one turn",
    "tool_error": "a tool error turn",
    "multi_turn": "multi-turn with tool_result",
    "thinking": "thinking with signature",
    "max_tokens_tool": "max_tokens cut mid-tool-input",
    "stop_sequence": "stop_sequence",
    "refusal": "refusal",
    "overloaded": "error event after 200",
    "rate_limited": "HTTP 429 with retry-after",
    "web_search": "server tool use with its result block",
    "citations": "citations",
    "count_tokens": "count_tokens",
    "models": "models list",
}


def findings_of(scenario: Scenario, status: int, headers, body: bytes):
    return validate_response(
        scenario.path,
        status,
        headers,
        body,
        scenario.request_bytes,
        request_headers=scenario.request_headers,
    )


def severities(findings, severity: str) -> set[str]:
    return {f.rule for f in findings if f.severity == severity}


def test_library_covers_what_the_issue_lists():
    assert len(SCENARIOS) >= 20
    assert len(BY_NAME) == len(SCENARIOS)
    missing = set(REQUIRED) - set(BY_NAME)
    assert not missing
    tools = {
        block["content_block"]["name"]
        for scenario in SCENARIOS
        if scenario.is_sse
        for block in scenario.events
        if block.get("type") == "content_block_start" and block["content_block"]["type"] == "tool_use"
    }
    assert {"Read", "Write", "Edit", "Bash", "Grep", "Glob"} <= tools
    multi = [e for e in BY_NAME["multi_tool"].events if e["type"] == "content_block_start"]
    assert [b["content_block"]["type"] for b in multi].count("tool_use") >= 2
    thinking = BY_NAME["thinking"].events
    assert any(e.get("delta", {}).get("type") == "signature_delta" for e in thinking)
    assert BY_NAME["rate_limited"].status == 429 and dict(BY_NAME["rate_limited"].headers)["retry-after"]
    web = [
        e["content_block"]["type"] for e in BY_NAME["web_search"].events if e["type"] == "content_block_start"
    ]
    assert {"server_tool_use", "web_search_tool_result"} <= set(web)
    assert any(e.get("delta", {}).get("type") == "citations_delta" for e in BY_NAME["citations"].events)


@pytest.mark.parametrize("name", [s.name for s in SCENARIOS])
def test_every_answer_is_protocol_clean(name: str):
    scenario = BY_NAME[name]
    findings = findings_of(scenario, scenario.status, scenario.headers, scenario.body)
    assert severities(findings, "error") == set(), findings
    assert severities(findings, "warning") == scenario.lint_warnings, findings


@pytest.mark.parametrize("variant", [equivalent, fresh_ids], ids=["equivalent", "fresh_ids"])
def test_the_noise_variants_stay_protocol_clean(variant):
    """The correct peers of the verify tests must themselves be valid, or they would prove nothing."""
    for scenario in SCENARIOS:
        status, headers, body = variant(scenario)
        assert (status, headers, body) != (
            scenario.status,
            scenario.headers,
            scenario.body,
        ) or scenario.name == "models"
        findings = findings_of(scenario, status, headers, body)
        assert severities(findings, "error") == set(), (scenario.name, findings)
        assert severities(findings, "warning") == scenario.lint_warnings, (scenario.name, findings)


def test_streams_fold_like_the_sdk():
    for scenario in SCENARIOS:
        if not scenario.is_sse:
            continue
        events = parse_sse(scenario.body)
        if scenario.name == "overloaded":
            with pytest.raises(StreamError):
                accumulate(events)
            continue
        message = accumulate(events)
        assert message["stop_reason"] and message["content"], scenario.name


def test_the_official_sdk_reads_every_answer(scenario_upstream):
    """Each stream is consumed by the SDK's own stream helper, each error raises the SDK's own exception."""
    sdk = client(scenario_upstream.url)
    for scenario in SCENARIOS:
        request = {k: v for k, v in (scenario.request or {}).items() if k != "stream"}
        if scenario.name == "rate_limited":
            with pytest.raises(anthropic.RateLimitError) as caught:
                sdk.messages.create(**request, stream=True)
            assert caught.value.response.headers["retry-after"] == "17"
        elif scenario.name == "overloaded":
            with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
                with sdk.messages.stream(**request) as stream:
                    stream.get_final_message()
        elif scenario.name == "count_tokens":
            assert sdk.messages.count_tokens(**request).input_tokens == 1187
        elif scenario.name == "models":
            assert [m.id for m in sdk.models.list()][0] == json.loads(scenario.body)["first_id"]
        elif scenario.name == "text_json":
            assert sdk.messages.create(**request).content[0].text == "Paris is the capital of France."
        elif scenario.name == "tool_json":
            answer = sdk.messages.create(**request)
            assert answer.stop_reason == "tool_use" and answer.content[1].input["command"] == "ls -la"
        elif scenario.name.endswith("_json"):
            answer = sdk.messages.create(**request)
            assert answer.model_dump(exclude_none=True)["content"] == json.loads(scenario.body)["content"]
        elif scenario.name == "invalid_request":
            with pytest.raises(anthropic.BadRequestError) as refused:
                sdk.messages.create(**request)
            assert refused.value.body["error"]["type"] == "invalid_request_error"
        elif scenario.name == "claude_code_beta":
            betas = dict(scenario.request_headers)["anthropic-beta"].split(",")
            with sdk.beta.messages.stream(**request, betas=betas, extra_query={"beta": "true"}) as stream:
                assert stream.get_final_message().stop_reason == "end_turn"
        else:
            with sdk.messages.stream(**request) as stream:
                final = stream.get_final_message()
            folded = accumulate(parse_sse(scenario.body))
            assert final.stop_reason == folded["stop_reason"], scenario.name
            assert [b.type for b in final.content] == [b["type"] for b in folded["content"]], scenario.name
            for block, expected in zip(final.content, folded["content"], strict=True):
                if block.type == "tool_use" and scenario.name != "max_tokens_tool":
                    assert block.input == expected["input"] and block.input, scenario.name
    assert {name for name in scenario_upstream.script.served} == set(BY_NAME)


def test_unknown_requests_get_an_anthropic_404(scenario_upstream):
    request = urllib.request.Request(
        scenario_upstream.url + "/v1/messages",
        data=json.dumps({"model": "x", "max_tokens": 1, "messages": []}).encode(),
        headers={"content-type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 404
    assert json.loads(caught.value.read())["error"]["type"] == "not_found_error"


def test_recorded_library_lints_clean(scenario_db):
    with Catalog.open(scenario_db) as catalog:
        recordings = catalog.recordings(CASSETTE)
    assert len(recordings) == len(SCENARIOS)
    assert {r.status for r in recordings} == {200, 400, 429}
    assert any(r.path == "/v1/messages?beta=true" for r in recordings)
    result = cli("lint", "--db", scenario_db)
    assert result.exit_code == 0, result.output
    *lines, summary = result.output.splitlines()
    assert summary == (
        f"Linted {len(SCENARIOS)} recording(s) in 1 cassette(s): 0 error(s), 2 warning(s) in 1 recording(s)"
    )
    [line] = lines
    assert " W S7 @" in line and " W B4 @" in line and " E " not in line


def test_replay_answers_the_library_byte_for_byte(scenario_db, scenario_upstream, proxy):
    served = len(scenario_upstream.script.served)
    replay = proxy(mode="replay")
    replayed = record_library(f"{replay.url}/c/{CASSETTE}")
    for scenario in SCENARIOS:
        assert replayed[scenario.name] == (scenario.status, scenario.body), scenario.name
    assert len(scenario_upstream.script.served) == served


def test_the_upstream_only_counts_real_changes_as_altered(loop_thread):
    with serving(loop_thread, ScenarioUpstream(transform=lambda s: (s.status, s.headers, s.body))) as running:
        for scenario in SCENARIOS[:3]:
            assert send(running.url, scenario) == (scenario.status, scenario.body)
        assert running.script.altered == set()
    with serving(loop_thread, ScenarioUpstream(transform=equivalent)) as running:
        send(running.url, BY_NAME["text_short"])
        assert running.script.altered == {"text_short"}
