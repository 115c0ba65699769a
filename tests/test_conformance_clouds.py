"""`claude-vcr conformance --provider bedrock|vertex`: the scenario library sent as Claude on Bedrock and
Vertex takes it (the requests the official SDK's AnthropicBedrock and AnthropicVertex would send), signed
with SigV4 (checked with botocore) or carrying a Google token, and the answers judged, Bedrock's event
stream by the Anthropic events its frames carry."""

from __future__ import annotations

import json

import pytest
from claude_vcr.conformance import SCENARIOS
from claude_vcr.conformance.clouds import CloudPlace, cloud_request, has_form

from tests.support.bedrock_upstream import no_aws_in_env
from tests.support.cli import cli
from tests.support.loopback import serving
from tests.support.scenario_clouds import ScenarioBedrock, ScenarioVertex
from tests.support.vertex_upstream import PROJECT, REGION, TOKEN

CLOUD_SCENARIOS = {
    "bedrock": [s.name for s in SCENARIOS if has_form(s, "bedrock")],
    "vertex": [s.name for s in SCENARIOS if has_form(s, "vertex")],
}


def result_lines(output: str) -> dict[str, str]:
    """Each scenario's line, by scenario name."""
    return {line.split()[1]: line for line in output.splitlines() if line.startswith(("PASS ", "FAIL "))}


@pytest.mark.parametrize("provider", ["bedrock", "vertex"])
def test_requests_are_what_the_official_sdk_sends(provider):
    """Path and body as the SDK's _prepare_options makes them from the Messages request (anthropic_version
    aside: we send the version the clouds document, bedrock-2023-05-31 and vertex-2023-10-16)."""
    from anthropic._models import FinalRequestOptions
    from anthropic.lib.bedrock._client import _prepare_options as bedrock_options
    from anthropic.lib.vertex._client import _prepare_options as vertex_options

    model = "us.anthropic.claude-haiku-4-5-20251001-v1:0" if provider == "bedrock" else "claude-haiku-4-5@20251001"
    place = CloudPlace(provider, model, PROJECT, REGION)
    checked = 0
    for scenario in SCENARIOS:
        if not has_form(scenario, provider):
            continue
        sent = cloud_request(scenario, place)
        options = FinalRequestOptions.construct(
            method="post",
            url=scenario.path,
            json_data={**scenario.request, "model": model},
            headers=dict(scenario.request_headers),
        )
        if provider == "bedrock":
            expected = bedrock_options(options, {})
            path = expected.url
        else:
            expected = vertex_options(options, project_id=PROJECT, region=REGION)
            path = "/v1" + expected.url  # the SDK's Vertex base URL ends in /v1
        body = json.loads(sent.body)
        assert sent.path == path, scenario.name
        assert body.pop("anthropic_version") == f"{provider}-{'2023-05-31' if provider == 'bedrock' else '2023-10-16'}"
        expected.json_data.pop("anthropic_version")
        assert body == expected.json_data, scenario.name
        checked += 1
    assert checked == len(CLOUD_SCENARIOS[provider]) >= 24


def test_bedrock_passes_strict_signed_with_sigv4(loop_thread, aws_credentials, tmp_path):
    with serving(loop_thread, ScenarioBedrock()) as bedrock:
        junit = tmp_path / "junit.xml"
        result = cli("conformance", "--provider", "bedrock", "--target", bedrock.url, "--strict", "--junit", junit)
        assert bedrock.script.rejected == []
    assert result.exit_code == 0, result.output
    lines = result_lines(result.output)
    assert sorted(lines) == sorted(CLOUD_SCENARIOS["bedrock"]) and "models" not in lines
    assert sorted(bedrock.script.served) == sorted(CLOUD_SCENARIOS["bedrock"])
    assert "/invoke-with-response-stream 200" not in result.output  # lines name scenarios, not paths
    assert "SECRET" not in result.output and "SECRET" not in junit.read_text()


def test_bedrock_damaged_frames_fail_a1(loop_thread, aws_credentials):
    with serving(loop_thread, ScenarioBedrock(damage=True)) as bedrock:
        result = cli("conformance", "--provider", "bedrock", "--target", bedrock.url, "--scenario", "text_short")
    assert result.exit_code == 1, result.output
    [line] = result_lines(result.output).values()
    assert line.startswith("FAIL text_short 200") and "A1 bad message CRC" in line, line


def test_bedrock_without_credentials_is_one_line(loop_thread, monkeypatch, tmp_path):
    no_aws_in_env(monkeypatch, tmp_path)
    with serving(loop_thread, ScenarioBedrock()) as bedrock:
        result = cli("conformance", "--provider", "bedrock", "--target", bedrock.url)
        assert bedrock.script.calls == []
    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert line.startswith("Error: cannot sign for Bedrock: no AWS credentials"), line


def test_vertex_passes_strict_with_a_token(loop_thread, no_google_credentials, monkeypatch):
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("ANTHROPIC_VERTEX_PROJECT_ID", PROJECT)
    monkeypatch.setenv("CLOUD_ML_REGION", REGION)
    with serving(loop_thread, ScenarioVertex()) as vertex:
        result = cli("conformance", "--provider", "vertex", "--target", vertex.url, "--strict", "--json")
        assert vertex.script.rejected == []
    assert result.exit_code == 0, result.output
    results = json.loads(result.output)
    assert sorted(r["scenario"] for r in results) == sorted(CLOUD_SCENARIOS["vertex"])
    assert "count_tokens" in CLOUD_SCENARIOS["vertex"]
    assert all(f"/projects/{PROJECT}/locations/{REGION}/" in r["url"] for r in results)
    assert TOKEN not in result.output


def test_vertex_without_a_project_is_one_line(loop_thread, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_VERTEX_PROJECT_ID", raising=False)
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", TOKEN)
    with serving(loop_thread, ScenarioVertex()) as vertex:
        result = cli("conformance", "--provider", "vertex", "--target", vertex.url)
        assert vertex.script.calls == []
    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert "ANTHROPIC_VERTEX_PROJECT_ID" in line, line


def test_list_and_names_per_provider():
    listed = cli("conformance", "--list", "--provider", "bedrock", "--json")
    assert listed.exit_code == 0, listed.output
    assert [s["name"] for s in json.loads(listed.output)] == CLOUD_SCENARIOS["bedrock"]
    refused = cli("conformance", "--provider", "bedrock", "--scenario", "models", "--target", "http://127.0.0.1:9")
    assert refused.exit_code == 1
    assert refused.output.strip() == "Error: scenario(s) models have no bedrock form"


@pytest.mark.claude_code
@pytest.mark.parametrize("provider", ["bedrock", "vertex"])
def test_claude_code_through_a_cloud_gateway(
    claude, proxy, bedrock, vertex, aws_credentials, no_google_credentials, monkeypatch, provider
):
    """claude-vcr in passthrough with --upstream-format bedrock|vertex is a gateway that authenticates for
    Claude Code (run with CLAUDE_CODE_USE_BEDROCK / _VERTEX and its base URL); the scripted Bedrock verifies
    every signature, the scripted Vertex every token."""
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", TOKEN)
    monkeypatch.setenv("ANTHROPIC_VERTEX_PROJECT_ID", PROJECT)
    monkeypatch.setenv("CLOUD_ML_REGION", REGION)
    cloud = bedrock if provider == "bedrock" else vertex
    gateway = proxy(mode="passthrough", upstream=cloud.url, upstream_format=provider)
    result = cli(
        "conformance", "--provider", provider, "--target", gateway.url, "--scenario", "text_short",
        "--claude-code", claude,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("PASS text_short 200")
    assert lines[1].startswith("PASS claude-code text ") and lines[2].startswith("PASS claude-code bash ")
    assert cloud.script.rejected == []
    assert len(cloud.script.model_calls()) >= 4  # the scenario, the text turn, the Bash turn's two calls


def test_claude_code_on_a_cloud_needs_a_gateway(claude, aws_credentials):
    result = cli("conformance", "--provider", "bedrock", "--claude-code", claude, "--scenario", "text_short")
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: --claude-code needs --target: a gateway that authenticates to the cloud for Claude Code"
    )
