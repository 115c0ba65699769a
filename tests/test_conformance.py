"""`claude-vcr conformance`: the shipped scenario library against the exact API (passes), against each
deliberately broken peer (fails with that peer's rule ids), and against claude-vcr's own OpenAI adapter in
front of the scripted OpenAI upstream (0 errors with --translated); the real Claude Code CLI through it."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from claude_vcr.config import ProxyConfig
from claude_vcr.conformance import SCENARIOS, judge_answer, run_conformance
from claude_vcr.conformance.library import BY_NAME

from tests.support.broken_endpoints import BREAKAGES, Breakage
from tests.support.cli import cli
from tests.support.loopback import LoopThread, serving
from tests.support.openai_upstream import MODEL, OpenAIScript, serve_openai
from tests.support.proxies import ProxyHandle
from tests.support.scenario_upstream import ScenarioUpstream

PROTOCOL_ERRORS = frozenset({"S1", "S4", "S5", "M2", "E2", "B1", "B8"})
"""The rules of the broken peers that PROTOCOL.md rates E (the others are W: F2, M8, M5, B5, H1, B7)."""
LINE = r"^(PASS|FAIL) (\S+) (\d{3}|---) \d+ms"


def failing_rules(results) -> set[str]:
    return {f.rule for r in results for f in r.failures}


@pytest.fixture(scope="module")
def module_loop() -> Iterator[LoopThread]:
    with LoopThread("conformance") as thread:
        yield thread


@pytest.fixture(scope="module")
def adapter_url(module_loop: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """claude-vcr in passthrough with --upstream-format openai, in front of the scripted OpenAI upstream."""
    with serve_openai(module_loop, OpenAIScript(numbered=False)) as upstream:
        config = ProxyConfig(
            db=tmp_path_factory.mktemp("adapter") / "vcr.db",
            mode="passthrough",
            port=0,
            upstream=upstream.url,
            upstream_format="openai",
            model_map=(("claude-*", MODEL),),
        )
        proxy = ProxyHandle(module_loop, config)
        try:
            yield proxy.url
        finally:
            proxy.stop()


def test_the_library_covers_what_the_issue_lists():
    names = set(BY_NAME)
    assert len(SCENARIOS) >= 24
    tools = {"Read", "Write", "Edit", "Bash", "Glob", "Grep", "WebFetch", "TodoWrite", "Task"}
    assert tools <= {tool for s in SCENARIOS for tool in s.expect.tools}
    wanted = {
        "text_short", "text_long", "text_json", "tool_json", "multi_tool", "tool_error", "multi_turn",
        "thinking", "max_tokens_text", "max_tokens_tool", "stop_sequence", "tool_choice_forced",
        "image_input", "count_tokens", "models", "invalid_request", "claude_code_beta",
    }  # fmt: skip
    assert wanted <= names
    claude_code = BY_NAME["claude_code_beta"]
    assert len(claude_code.request["tools"]) >= 10
    assert len(json.dumps(claude_code.request["system"])) > 8000
    assert any("cache_control" in part for part in claude_code.request["system"])
    assert dict(claude_code.request_headers)["anthropic-beta"].startswith("claude-code-")
    assert BY_NAME["tool_choice_forced"].expect.forced_tool == "Read"
    assert BY_NAME["invalid_request"].status == 400


def test_the_exact_api_passes_strict(scenario_upstream, tmp_path: Path):
    junit = tmp_path / "conformance.xml"
    result = cli("conformance", "--target", scenario_upstream.url, "--strict", "--junit", junit)
    assert result.exit_code == 0, result.output
    *lines, summary = result.output.splitlines()
    assert len(lines) == len(SCENARIOS)
    assert all(line.startswith(f"PASS {s.name} ") for line, s in zip(lines, SCENARIOS, strict=True))
    assert summary.startswith(f"Checked {len(SCENARIOS)} scenario(s) against {scenario_upstream.url}: ")
    assert f"{len(SCENARIOS)} passed, 0 failed" in summary
    [cut] = [line for line in lines if "tolerated" in line]
    assert cut.startswith("PASS max_tokens_tool ") and "W S7 @" in cut and "W B4 @" in cut
    suite = ET.parse(junit).getroot()
    assert suite.get("name") == "claude-vcr conformance"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == (str(len(SCENARIOS)), "0", "0")
    served = sorted(scenario_upstream.script.served)
    assert served == sorted(s.name for s in SCENARIOS)


@pytest.mark.parametrize("breakage", BREAKAGES, ids=[b.name for b in BREAKAGES])
def test_each_broken_peer_fails_with_its_rules(breakage: Breakage, loop_thread):
    """The protocol rules a peer breaks fail it (warnings with --strict); verify's V-rules compare with a
    recording, which conformance has not: a peer without pings is conforming (pings are optional)."""
    expected = {rule for rule in breakage.rules if not rule.startswith("V")}
    with serving(loop_thread, ScenarioUpstream(transform=breakage.transform)) as broken:
        lenient = run_conformance(broken.url)
        strict = run_conformance(broken.url, strict=True)
    assert expected <= failing_rules(strict), (breakage.name, failing_rules(strict))
    assert (expected & PROTOCOL_ERRORS) <= failing_rules(lenient)
    if not expected:
        assert all(r.passed for r in strict)


def test_a_broken_peer_on_the_command_line(loop_thread, tmp_path: Path):
    breakage = next(b for b in BREAKAGES if b.name == "hard_coded_index")
    junit = tmp_path / "broken.xml"
    with serving(loop_thread, ScenarioUpstream(transform=breakage.transform)) as broken:
        result = cli("conformance", "--target", broken.url, "--junit", junit)
        as_json = cli("conformance", "--target", broken.url, "--json", "--scenario", "multi_tool")
    assert result.exit_code == 1
    failed = [line for line in result.output.splitlines() if line.startswith("FAIL ")]
    assert failed and all(": E S4 @" in line for line in failed)
    assert "FAIL multi_tool 200 " in result.output
    cases = {case.get("name"): case for case in ET.parse(junit).getroot().iter("testcase")}
    assert cases["multi_tool"].find("failure").get("type") == "S4"
    assert cases["text_short"].find("failure") is None
    assert as_json.exit_code == 1
    [entry] = json.loads(as_json.output)
    assert entry["scenario"] == "multi_tool" and entry["passed"] is False
    assert {f["rule"] for f in entry["failures"]} == {"S4"}


def test_claude_vcr_openai_adapter_passes_translated(adapter_url: str):
    result = cli("conformance", "--target", adapter_url, "--translated", "--json")
    assert result.exit_code == 0, result.output
    results = json.loads(result.output)
    assert [r["scenario"] for r in results] == [s.name for s in SCENARIOS]
    assert [f for r in results for f in r["failures"]] == []
    by_name = {r["scenario"]: r for r in results}
    assert by_name["invalid_request"]["status"] == 400
    assert not any(f["rule"] == "X4" for f in by_name["tool_choice_forced"]["tolerated"])
    # the scripted model does not call tools unless forced: a warning, failing only with --strict
    assert {f["rule"] for f in by_name["tool_read"]["tolerated"]} >= {"X5", "X6"}
    strict = cli("conformance", "--target", adapter_url, "--translated", "--strict", "--scenario", "tool_read")
    assert strict.exit_code == 1 and "FAIL tool_read 200 " in strict.output and "W X6 " in strict.output


def test_translated_softens_what_a_translator_cannot_produce():
    """The exact thinking answer without its signature: an error for the API itself, a warning translated."""
    scenario = BY_NAME["thinking"]
    events = [e for e in scenario.events if e.get("delta", {}).get("type") != "signature_delta"]
    from claude_vcr.sse import encode_events

    body = encode_events(events)
    _, failures = judge_answer(scenario, 200, scenario.headers, body)
    findings, translated = judge_answer(scenario, 200, scenario.headers, body, translated=True)
    assert {f.rule for f in failures} == {"B8"}
    assert translated == [] and any(f.rule == "B8" and f.severity == "warning" for f in findings)


def test_list_unknown_names_and_bad_targets(tmp_path: Path):
    listed = cli("conformance", "--list")
    assert listed.exit_code == 0
    assert [line.split()[0] for line in listed.output.splitlines()[1:]] == [s.name for s in SCENARIOS]
    unknown = cli("conformance", "--target", "http://127.0.0.1:9", "--scenario", "nope")
    assert unknown.exit_code == 1 and unknown.output.strip().endswith("shows them")
    assert "Traceback" not in unknown.output
    missing = cli("conformance")
    assert missing.exit_code == 2 and "--target" in missing.output
    refused = cli("conformance", "--target", "http://127.0.0.1:9", "--scenario", "text_short", "--timeout", "5")
    assert refused.exit_code == 1
    assert refused.output.startswith("FAIL text_short --- ") and ": E X1 no answer from" in refused.output


def test_claude_code_through_the_adapter(adapter_url: str, claude: str):
    result = cli("conformance", "--target", adapter_url, "--translated", "--scenario", "text_short",
                 "--claude-code", claude)  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].startswith("PASS claude-code text ")
    assert lines[2].startswith("PASS claude-code bash ")


def test_claude_code_that_does_not_complete_fails(adapter_url: str):
    result = cli("conformance", "--target", adapter_url, "--scenario", "text_short", "--claude-code", "/bin/false")
    assert result.exit_code == 1
    assert "FAIL claude-code text 1 " in result.output and ": E CC1 Claude Code exited 1" in result.output
    assert "FAIL claude-code bash 1 " in result.output and ": E CC2 " in result.output


def test_the_sdk_reads_a_models_list_without_first_and_last_id(loop_thread):
    """Why D1 only warns when the envelope's has_more/first_id/last_id are missing (a peer's answer, by hand)."""
    import anthropic
    from aiohttp import web
    from claude_vcr.protocol import validate_models

    body = {"data": [{"type": "model", "id": "claude-x", "display_name": "X", "created_at": "2025-01-01T00:00:00Z"}]}

    class Models:
        def app(self) -> web.Application:
            app = web.Application()
            app.router.add_get("/v1/models", lambda request: web.json_response(body))
            return app

    with serving(loop_thread, Models()) as server:
        listed = anthropic.Anthropic(base_url=server.url, api_key="sk-ant-test", max_retries=0).models.list()
        assert [model.id for model in listed] == ["claude-x"]
    findings = validate_models(body)
    assert {(f.rule, f.severity) for f in findings} == {("D1", "warning")}


def test_optional_endpoints_and_the_kind_of_answer():
    """X9: a gateway may leave count_tokens and models out (404, an Anthropic error body); X3: a stream for a
    stream:false request; X2: a success for an invalid request."""
    from claude_vcr.protocol import error_body

    missing = error_body("not_found_error", "no such route")
    json_type = (("content-type", "application/json"), ("request-id", "req_011CTest"))
    for name in ("count_tokens", "models"):
        findings, failures = judge_answer(BY_NAME[name], 404, json_type, missing)
        assert [(f.rule, f.severity) for f in findings] == [("X9", "warning")] and failures == []
    _, failures = judge_answer(BY_NAME["count_tokens"], 500, json_type, error_body("api_error", "boom"))
    assert [f.rule for f in failures] == ["X2"]
    stream = BY_NAME["text_short"]
    _, failures = judge_answer(BY_NAME["text_json"], 200, stream.headers, stream.body)
    assert "X3" in {f.rule for f in failures}
    text = BY_NAME["text_json"]
    _, failures = judge_answer(BY_NAME["invalid_request"], 200, text.headers, text.body)
    assert [f.rule for f in failures] == ["X2"]
