"""`claude-vcr verify` on recordings made on Bedrock and Vertex: each request re-sent to the cloud signed with
SigV4 (the scripted Bedrock checks every signature with botocore) or with a Google bearer token, the answers
compared by meaning, Bedrock's binary event stream read as the Anthropic events its frames carry."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from claude_vcr import eventstream
from claude_vcr.catalog import Catalog
from claude_vcr.sse import parse_sse
from claude_vcr.verify import Addressing, check_answer

from tests.support.bedrock_upstream import (
    ACCESS_KEY,
    MODEL,
    SECRET_KEY,
    SESSION_TOKEN,
    aws_env,
    no_aws_in_env,
)
from tests.support.bedrock_upstream import client as bedrock_client
from tests.support.cli import cli
from tests.support.google_token_endpoint import SECRETS as GOOGLE_SECRETS
from tests.support.sdk_calls import BASH_TOOL, SdkCalls
from tests.support.vertex_upstream import MODEL as VERTEX_MODEL
from tests.support.vertex_upstream import TOKEN
from tests.support.vertex_upstream import client as vertex_client

TOOL_TURN = [{"role": "user", "content": "Please RUN: ls -la"}]
TEXT_TURN = [{"role": "user", "content": "Say hello"}]
BEDROCK = SdkCalls(bedrock_client)
VERTEX = SdkCalls(vertex_client)


def record(
    proxy, cloud, upstream_format: str, calls: SdkCalls, model: str, turn: list = TOOL_TURN, forget: bool = True
) -> None:
    """One turn recorded through the proxy as JSON and streamed (twice); then the scripted cloud forgets
    its calls, so a test sees verify's alone. Its text answers name the call number: after `forget=False`,
    verify's calls are numbered on from the recording's, and say something else."""
    recorder = proxy(mode="record", upstream=cloud.url, upstream_format=upstream_format)
    params = {"model": model, "max_tokens": 200, "tools": [BASH_TOOL], "messages": turn}
    calls.json_call(recorder.url, params)
    calls.stream_call(recorder.url, params)
    recorder.stop()
    if forget:
        cloud.script.calls.clear()


def verify(db_path, *args: str):
    return cli("verify", "--db", db_path, *args)


def lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(("PASS", "FAIL"))]


def test_bedrock_recordings_verify_against_bedrock_signed_with_sigv4(
    proxy, bedrock, aws_credentials, db_path, tmp_path
):
    record(proxy, bedrock, "bedrock", BEDROCK, MODEL)
    report = tmp_path / "junit.xml"
    result = verify(db_path, "--target", bedrock.url, "--junit", str(report))
    assert result.exit_code == 0, result.output
    passed = lines(result.output)
    assert len(passed) == 3 and all(line.startswith("PASS") for line in passed), result.output
    assert any("/invoke-with-response-stream 200" in line for line in passed)
    assert bedrock.script.rejected == [] and len(bedrock.script.model_calls()) == 3
    for call in bedrock.script.model_calls():  # signed by verify with the environment's keys
        assert call.headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
        assert call.headers["X-Amz-Security-Token"] == SESSION_TOKEN
        assert "x-api-key" not in call.headers
    written = result.output + report.read_text()
    for secret in (SECRET_KEY, SESSION_TOKEN, "Signature="):
        assert secret not in written


def test_a_bedrock_answer_that_says_something_else_fails(proxy, bedrock, aws_credentials, db_path):
    record(proxy, bedrock, "bedrock", BEDROCK, MODEL, TEXT_TURN, forget=False)
    result = verify(db_path, "--target", bedrock.url)
    assert result.exit_code == 1, result.output
    failed = lines(result.output)
    assert len(failed) == 3 and all(line.startswith("FAIL") and "V3" in line for line in failed), result.output
    assert sum("/invoke-with-response-stream" in line for line in failed) == 2
    assert "Traceback" not in result.output


def test_bedrock_without_aws_credentials_is_one_line_and_sends_nothing(
    proxy, bedrock, aws_credentials, db_path, monkeypatch, tmp_path
):
    record(proxy, bedrock, "bedrock", BEDROCK, MODEL)
    no_aws_in_env(monkeypatch, tmp_path)
    result = verify(db_path, "--target", bedrock.url)
    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert line.startswith("Error: cannot sign for Bedrock: no AWS credentials"), line
    assert bedrock.script.calls == []


def test_vertex_recordings_verify_with_the_environments_token(
    proxy, vertex, no_google_credentials, db_path, monkeypatch
):
    record(proxy, vertex, "vertex", VERTEX, VERTEX_MODEL)
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", TOKEN)
    result = verify(db_path, "--target", vertex.url, "--json")
    assert result.exit_code == 0, result.output
    results = json.loads(result.output)
    assert len(results) == 3 and all(r["passed"] for r in results), result.output
    assert vertex.script.rejected == [] and len(vertex.script.model_calls()) == 3
    assert TOKEN not in result.output


def test_vertex_verify_with_application_default_credentials(
    proxy, vertex, google_adc, google_token, db_path
):
    record(proxy, vertex, "vertex", VERTEX, VERTEX_MODEL)
    google_adc("authorized_user")
    result = verify(db_path, "--target", vertex.url)
    assert result.exit_code == 0, result.output
    assert len(google_token.script.issued) == 1  # one token for the run, not one per request
    assert {call.headers["Authorization"] for call in vertex.script.calls} == {
        f"Bearer {google_token.script.issued[0]}"
    }
    for secret in GOOGLE_SECRETS:
        assert secret not in result.output


def test_vertex_without_google_credentials_is_one_line(
    proxy, vertex, no_google_credentials, db_path
):
    record(proxy, vertex, "vertex", VERTEX, VERTEX_MODEL)
    result = verify(db_path, "--target", vertex.url)
    assert result.exit_code == 1
    [line] = result.output.splitlines()
    assert "GOOGLE_OAUTH_ACCESS_TOKEN" in line and "application-default" in line, line
    assert vertex.script.calls == []


def test_without_target_first_party_recordings_are_not_sent(proxy, upstream, db_path):
    from tests.support.client import client

    recorder = proxy(mode="record", upstream=upstream.url)
    client(recorder.url).messages.create(
        model="claude-sonnet-4-5", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
    )
    recorder.stop()
    calls = len(upstream.script.calls)
    result = verify(db_path)
    assert result.exit_code == 1
    [line, summary] = result.output.splitlines()
    assert line.startswith("FAIL ") and "V10" in line and "need --target" in line, line
    assert "their clouds' endpoints" in summary
    assert len(upstream.script.calls) == calls


# --- where a cloud recording goes without --target, and what it is signed for (no request sent) ----------


def _bedrock_detail(proxy, bedrock, db_path):
    record(proxy, bedrock, "bedrock", BEDROCK, MODEL)
    with Catalog.open(db_path) as catalog:
        return next(d for d in catalog.iter_details(None) if d.row.path.endswith("/invoke"))


@pytest.mark.parametrize(
    ("target", "region", "host"),
    [
        (None, "eu-west-1", "bedrock-runtime.eu-west-1.amazonaws.com"),
        ("https://bedrock-runtime.ap-south-1.amazonaws.com", "ap-south-1", "bedrock-runtime.ap-south-1.amazonaws.com"),
    ],
    ids=["region-from-aws-env", "region-from-target-host"],
)
def test_bedrock_address_and_signing_region(proxy, bedrock, aws_credentials, db_path, target, region, host):
    import asyncio

    detail = _bedrock_detail(proxy, bedrock, db_path)
    env = {**aws_env(), "AWS_REGION": "eu-west-1"}
    url, headers = asyncio.run(Addressing(target, "unused", env).request(None, detail))
    assert url.host == host and url.raw_path == detail.row.path
    authorization = dict(headers)["Authorization"]
    assert f"/{region}/bedrock/aws4_request" in authorization
    assert dict(headers)["Host"] == host


# --- frame-aware comparison (no network: check_answer judges a given answer) -----------------------------


def _stream_detail(proxy, bedrock, db_path):
    record(proxy, bedrock, "bedrock", BEDROCK, MODEL)
    with Catalog.open(db_path) as catalog:
        return next(d for d in catalog.iter_details(None) if d.row.path.endswith("/invoke-with-response-stream"))


def _events(detail) -> list[dict]:
    sse, problem = eventstream.to_sse(detail.response_body)
    assert problem is None
    return [event.parsed for event in parse_sse(sse)]


def test_a_stream_framed_and_chunked_differently_but_equal_passes(proxy, bedrock, aws_credentials, db_path):
    detail = _stream_detail(proxy, bedrock, db_path)
    events = _events(detail)
    rechunked = []
    for event in events:  # every text delta split in two: other frames, other bytes, the same meaning
        delta = event.get("delta") or {}
        if event["type"] == "content_block_delta" and delta.get("type") == "text_delta" and len(delta["text"]) > 1:
            half = len(delta["text"]) // 2
            for text in (delta["text"][:half], delta["text"][half:]):
                rechunked.append({**event, "delta": {**delta, "text": text}})
        else:
            rechunked.append(event)
    body = eventstream.from_events(rechunked)
    assert body != detail.response_body
    findings, failures = check_answer(detail, 200, list(detail.response_headers), body)
    assert failures == [], failures


def test_a_stream_carrying_other_text_fails_v3(proxy, bedrock, aws_credentials, db_path):
    detail = _stream_detail(proxy, bedrock, db_path)
    events = _events(detail)
    for event in events:
        if event.get("delta", {}).get("type") == "text_delta":
            event["delta"]["text"] = "something else entirely "
            break
    _, failures = check_answer(detail, 200, list(detail.response_headers), eventstream.from_events(events))
    assert [f.rule for f in failures] == ["V3"], failures


def test_a_damaged_live_stream_is_a1_not_a_crash(proxy, bedrock, aws_credentials, db_path):
    detail = _stream_detail(proxy, bedrock, db_path)
    damaged = bytearray(detail.response_body)
    damaged[len(damaged) // 2] ^= 0x01
    _, failures = check_answer(detail, 200, list(detail.response_headers), bytes(damaged))
    assert "A1" in {f.rule for f in failures}, failures


def test_sse_where_the_recording_has_frames_is_v1(proxy, bedrock, aws_credentials, db_path):
    detail = _stream_detail(proxy, bedrock, db_path)
    sse, _ = eventstream.to_sse(detail.response_body)
    headers = [("content-type", "text/event-stream")]
    _, failures = check_answer(detail, 200, headers, sse)
    [v1] = [f for f in failures if f.rule == "V1"]
    assert "answered 200 sse, recorded 200 sse in eventstream frames" in str(v1)
    assert "A1" in {f.rule for f in failures}  # and Bedrock's clients cannot read SSE there


def test_junit_names_the_cloud_target(proxy, bedrock, aws_credentials, db_path, tmp_path):
    record(proxy, bedrock, "bedrock", BEDROCK, MODEL)
    report = tmp_path / "junit.xml"
    verify(db_path, "--target", bedrock.url, "--junit", str(report))
    root = ET.parse(report).getroot()
    assert [p.get("value") for p in root.iter("property")] == [bedrock.url]
    assert len(list(root.iter("testcase"))) == 3
