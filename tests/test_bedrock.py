"""Claude on Amazon Bedrock: the SDK's AnthropicBedrock records through claude-vcr (each request re-signed
with SigV4 and checked by botocore upstream), then replays strict with Bedrock down and no AWS credentials."""

from __future__ import annotations

import pytest
from claude_vcr import eventstream
from claude_vcr.catalog import Catalog

from tests.support.bedrock_upstream import (
    ACCESS_KEY,
    CLIENT_KEY,
    CLIENT_SECRET,
    CLIENT_TOKEN,
    MODEL,
    SECRET_KEY,
    SESSION_TOKEN,
    client,
    no_aws_in_env,
)
from tests.support.cli import cli
from tests.support.db_scan import every_value
from tests.support.loopback import unreachable_url
from tests.support.sdk_calls import BASH_TOOL, SdkCalls

TEXT = {"model": MODEL, "max_tokens": 100, "messages": [{"role": "user", "content": "Hi there"}]}
TOOL = {**TEXT, "tools": [BASH_TOOL], "messages": [{"role": "user", "content": "RUN: echo hi"}]}


CALLS = SdkCalls(client)
json_call, one_stream_call, stream_call = CALLS.json_call, CALLS.one_stream_call, CALLS.stream_call


SECRETS = [
    ACCESS_KEY,
    SECRET_KEY,
    SESSION_TOKEN,
    CLIENT_KEY,
    CLIENT_SECRET,
    CLIENT_TOKEN,
    "Signature=",
    "AWS4-HMAC-SHA256",
]


@pytest.mark.parametrize("call", [json_call, stream_call], ids=["json", "stream"])
@pytest.mark.parametrize("params", [TEXT, TOOL], ids=["text", "tool"])
def test_sdk_records_then_replays_strict_offline(
    proxy, bedrock, aws_credentials, db_path, monkeypatch, tmp_path, call, params
):
    recorder = proxy(mode="record", upstream=bedrock.url, upstream_format="bedrock")
    recorded_bytes, recorded = call(recorder.url, params)
    recorder.stop()
    assert bedrock.script.rejected == []
    assert len(bedrock.script.model_calls()) >= 1
    if call is stream_call:
        decoded = eventstream.decode(recorded_bytes)
        assert decoded.problem is None and decoded.frames
    if params is TOOL:
        assert recorded["stop_reason"] == "tool_use"
        assert recorded["content"][-1]["input"] == {
            "command": "echo hi",
            "description": "Run the requested command",
        }
    bedrock.stop()
    calls = len(bedrock.script.calls)
    no_aws_in_env(monkeypatch, tmp_path)

    replayer = proxy(mode="replay", upstream=unreachable_url(), upstream_format="bedrock")
    replayed_bytes, replayed = call(replayer.url, params)
    assert replayed_bytes == recorded_bytes
    assert replayed == recorded
    assert len(bedrock.script.calls) == calls
    stored = every_value(db_path)
    for secret in SECRETS:
        assert secret.encode() not in stored, secret


def test_client_signature_alone_is_refused_upstream(bedrock, aws_credentials):
    """The scripted Bedrock really checks: the SDK's own signature (unknown keys) gets a 403 without the proxy."""
    import anthropic

    with pytest.raises(anthropic.PermissionDeniedError):
        client(bedrock.url).messages.create(**TEXT)
    assert bedrock.script.rejected == ["unknown access key 'AKIACLIENTSIDEKEY123'"]


def test_record_without_credentials_is_a_one_line_502(proxy, bedrock, monkeypatch, tmp_path):
    no_aws_in_env(monkeypatch, tmp_path)
    recorder = proxy(mode="record", upstream=bedrock.url, upstream_format="bedrock")
    import anthropic

    with pytest.raises(anthropic.APIStatusError) as caught:
        client(recorder.url).messages.create(**TEXT)
    assert caught.value.status_code == 502
    assert "no AWS credentials" in str(caught.value) and "\n" not in caught.value.message
    assert bedrock.script.calls == []


@pytest.mark.parametrize(
    ("word", "problem"), [("DAMAGE", "bad message CRC"), ("TRUNCATE", "truncated frame")]
)
def test_damaged_event_stream_is_a_lint_finding(proxy, bedrock, aws_credentials, db_path, word, problem):
    recorder = proxy(mode="record", upstream=bedrock.url, upstream_format="bedrock")
    params = {**TEXT, "messages": [{"role": "user", "content": f"please {word} this"}]}
    with client(recorder.url).messages.with_streaming_response.create(stream=True, **params) as response:
        assert response.status_code == 200
        response.read()
    recorder.stop()
    result = cli("lint", "--db", db_path)
    assert result.exit_code == 1, result.output
    [line, summary] = result.output.splitlines()
    assert "/invoke-with-response-stream: E A1" in line and problem in line, line
    assert "Traceback" not in result.output


def test_clean_bedrock_recordings_lint_clean(proxy, bedrock, aws_credentials, db_path):
    recorder = proxy(mode="record", upstream=bedrock.url, upstream_format="bedrock")
    for call in (json_call, stream_call):
        call(recorder.url, TOOL)
    recorder.stop()
    result = cli("lint", "--db", db_path)
    assert result.exit_code == 0, result.output
    assert " E " not in result.output


def test_list_show_stats_name_provider_and_model(proxy, bedrock, aws_credentials, db_path):
    recorder = proxy(mode="record", upstream=bedrock.url, upstream_format="bedrock")
    with client(recorder.url).messages.with_streaming_response.create(stream=True, **TEXT) as response:
        response.read()
    recorder.stop()
    listed = cli("list", "--db", db_path)
    assert listed.exit_code == 0, listed.output
    header, row, *_ = listed.output.splitlines()
    assert "PROVIDER:MODEL" in header and f"bedrock:{MODEL}" in row and "yes" in row
    key = next(word for word in row.split() if len(word) == 12 and all(c in "0123456789abcdef" for c in word))
    shown = cli("show", key, "--db", db_path)
    assert shown.exit_code == 0, shown.output
    assert f"provider bedrock, model {MODEL}" in shown.output
    assert "message_start" in shown.output and "Bedrock reply number" in shown.output
    stats = cli("stats", "--cassette", "default", "--db", db_path)
    assert f"  {MODEL}: 1" in stats.output


@pytest.mark.parametrize("redact", [False, True], ids=["scan", "redact"])
def test_secret_inside_event_stream_payloads_is_found(proxy, bedrock, aws_credentials, db_path, redact):
    """Bedrock's chunks carry the events base64-encoded: the scanner reads them decoded; --redact re-frames."""
    secret = "sk-ant-api03-" + "Q" * 93 + "AA"
    recorder = proxy(mode="record", upstream=bedrock.url, upstream_format="bedrock", redact=redact)
    params = {**TEXT, "messages": [{"role": "user", "content": "LEAK: " + secret}]}
    with client(recorder.url).messages.with_streaming_response.create(stream=True, **params) as response:
        response.read()
    recorder.stop()
    scanned = cli("scan", "--db", db_path)
    response_findings = [
        line for line in scanned.output.splitlines() if "response" in line and "anthropic-key" in line
    ]
    if redact:
        assert response_findings == [], scanned.output
        with Catalog.open(db_path) as catalog:
            [row] = [r for r in catalog.recordings() if "invoke" in r.path]
            body = catalog.detail(row).response_body
        decoded = eventstream.decode(body)
        assert decoded.problem is None
        assert secret.encode() not in eventstream.to_sse(body)[0]
    else:
        assert response_findings, scanned.output


def test_export_import_keeps_the_event_stream_bytes(
    proxy, bedrock, aws_credentials, db_path, tmp_path, monkeypatch
):
    recorder = proxy(mode="record", upstream=bedrock.url, upstream_format="bedrock")
    recorded_bytes, recorded = stream_call(recorder.url, TOOL)
    recorder.stop()
    bedrock.stop()
    assert cli("export", str(tmp_path / "out"), "--db", db_path).exit_code == 0
    other = tmp_path / "imported.db"
    imported = cli("import", str(tmp_path / "out"), "--db", other)
    assert imported.exit_code == 0, imported.output
    no_aws_in_env(monkeypatch, tmp_path)
    replayer = proxy(mode="replay", db=other, upstream=unreachable_url(), upstream_format="bedrock")
    assert stream_call(replayer.url, TOOL) == (recorded_bytes, recorded)


@pytest.mark.parametrize(
    ("first", "then"),
    [(json_call, stream_call), (one_stream_call, json_call)],
    ids=["json-then-stream", "stream-then-json"],
)
def test_invoke_and_invoke_with_response_stream_convert_on_replay(
    proxy, bedrock, aws_credentials, monkeypatch, tmp_path, first, then
):
    """One recording answers both forms: frames folded into the Message, or the Message framed as events."""
    recorder = proxy(mode="record", upstream=bedrock.url, upstream_format="bedrock")
    _, recorded = first(recorder.url, TOOL)
    recorder.stop()
    bedrock.stop()
    no_aws_in_env(monkeypatch, tmp_path)
    replayer = proxy(mode="replay", upstream=unreachable_url(), upstream_format="bedrock")
    raw, replayed = then(replayer.url, TOOL)
    assert {k: v for k, v in replayed.items() if k != "stop_details"} == {
        k: v for k, v in recorded.items() if k != "stop_details"
    }
    if then is stream_call:
        assert eventstream.decode(raw).problem is None


def test_a_recorded_stream_is_relayed_as_it_arrives(proxy, bedrock, aws_credentials):
    """Frames are streamed on while recording (x-vcr-outcome says `recording`), not held to the end."""
    recorder = proxy(mode="record", upstream=bedrock.url, upstream_format="bedrock")
    with client(recorder.url).messages.with_streaming_response.create(stream=True, **TEXT) as response:
        assert response.headers["x-vcr-outcome"] == "recording"
        response.read()


def test_a_damaged_recording_is_a_one_line_replay_error(
    proxy, bedrock, aws_credentials, caplog, monkeypatch, tmp_path
):
    import anthropic

    recorder = proxy(mode="record", upstream=bedrock.url, upstream_format="bedrock")
    params = {**TEXT, "messages": [{"role": "user", "content": "please DAMAGE this"}]}
    with client(recorder.url).messages.with_streaming_response.create(stream=True, **params) as response:
        response.read()
    recorder.stop()
    bedrock.stop()
    no_aws_in_env(monkeypatch, tmp_path)
    replayer = proxy(mode="replay", upstream=unreachable_url(), upstream_format="bedrock")
    with (
        caplog.at_level("ERROR", logger="claude_vcr.proxy"),
        pytest.raises(anthropic.InternalServerError) as caught,
    ):
        with client(replayer.url).messages.stream(**params) as stream:
            stream.get_final_message()
    assert "is damaged: bad message CRC in the frame at byte" in caught.value.message
    [line] = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert "\n" not in line and "Traceback" not in caplog.text


def test_a_strict_miss_names_the_difference_without_contacting_bedrock(
    proxy, bedrock, aws_credentials, monkeypatch, tmp_path
):
    import anthropic

    recorder = proxy(mode="record", upstream=bedrock.url, upstream_format="bedrock")
    json_call(recorder.url, TEXT)
    recorder.stop()
    calls = len(bedrock.script.calls)
    no_aws_in_env(monkeypatch, tmp_path)
    replayer = proxy(mode="replay", upstream=bedrock.url, upstream_format="bedrock")
    other = {**TEXT, "messages": [{"role": "user", "content": "Hi over there"}]}
    with pytest.raises(anthropic.BadRequestError) as caught:
        client(replayer.url).messages.create(**other)
    assert "Hi over there" in caught.value.message or "messages[0]" in caught.value.message, (
        caught.value.message
    )
    assert len(bedrock.script.calls) == calls
