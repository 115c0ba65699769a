"""`claude-vcr fixture`: a recording as normalised, deterministic JSON with the assertions a snapshot test needs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from claude_vcr.catalog import Catalog
from claude_vcr.conformance.library import BY_NAME, HISTORY_TOOL, SCENARIOS, Scenario, fake_id
from claude_vcr.fixtures import build_fixture, fixture_json, semantic_view
from claude_vcr.sse import encode_events, message_to_events, message_to_sse

from tests.support.broken_endpoints import fresh_ids
from tests.support.cli import cli
from tests.support.client import TEST_API_KEY
from tests.support.loopback import serving
from tests.support.scenario_upstream import CASSETTE, ScenarioUpstream, record_library, scenario_of


def keys_by_name(db: Path, cassette: str = CASSETTE) -> dict[str, str]:
    """The key of each scenario's recording."""
    with Catalog.open(db) as catalog:
        return {
            scenario_of(d.row.method, d.row.path, d.request_body).name: d.row.key
            for d in catalog.iter_details(cassette)
        }


def key_of(db: Path, name: str, cassette: str = CASSETTE) -> str:
    return keys_by_name(db, cassette)[name]


def fixture_of(db: Path, name: str) -> tuple[str, dict]:
    result = cli("fixture", key_of(db, name)[:8], "--db", db)
    assert result.exit_code == 0, result.output
    return result.output, json.loads(result.output)


def originals(scenario: Scenario) -> list[str]:
    """Every id, signature and encrypted blob the raw exchange carries."""
    found: list[str] = [dict(scenario.headers)["request-id"]]

    def walk(value) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                if key in (
                    "id",
                    "tool_use_id",
                    "signature",
                    "encrypted_content",
                    "encrypted_index",
                    "data",
                ) and (isinstance(child, str) and len(child) > 12):
                    found.append(child)
                walk(child)
        elif isinstance(value, list):
            for child in value:
                walk(child)

    walk(scenario.request)
    walk(scenario.events if scenario.is_sse else json.loads(scenario.body))
    return found


def test_ids_keep_prefix_and_cross_references(scenario_db):
    text, fixture = fixture_of(scenario_db, "tool_error")
    messages = fixture["request"]["body"]["messages"]
    assert messages[1]["content"][1]["id"] == "toolu_1"
    assert messages[2]["content"][0]["tool_use_id"] == "toolu_1"
    start = fixture["response"]["events"][0]
    assert start["type"] == "message_start" and start["message"]["id"] == "msg_1"
    blocks = fixture["assertions"]["blocks"]
    assert blocks[1] == {
        "index": 1,
        "type": "tool_use",
        "id": "toolu_2",
        "name": "Bash",
        "input": {"command": ".venv/bin/python -m pytest -q", "description": "Run tests in the venv"},
    }
    assert fixture["response"]["headers"]["request-id"] == "req_1"
    assert HISTORY_TOOL not in text and fake_id("toolu_", "tool_error") not in text
    for original in originals(BY_NAME["tool_error"]):
        assert original not in text


def test_assertions(scenario_db):
    _, fixture = fixture_of(scenario_db, "multi_tool")
    assertions = fixture["assertions"]
    assert "ping" not in assertions["event_types"]
    assert assertions["event_types"][0] == "message_start" and assertions["event_types"][-1] == "message_stop"
    assert len(assertions["event_types"]) == sum(
        1 for e in BY_NAME["multi_tool"].events if e["type"] != "ping"
    )
    assert [(b["index"], b["type"], b.get("name")) for b in assertions["blocks"]] == [
        (0, "text", None),
        (1, "tool_use", "Read"),
        (2, "tool_use", "Grep"),
        (3, "tool_use", "Glob"),
    ]
    assert (
        assertions["blocks"][0]["text"] == "I'll look at the config, search for its uses and list the tests."
    )
    assert assertions["blocks"][2]["input"] == {"pattern": "load_config", "output_mode": "files_with_matches"}
    assert [b["id"] for b in assertions["blocks"][1:]] == ["toolu_1", "toolu_2", "toolu_3"]
    assert assertions["stop_reason"] == "tool_use" and assertions["stop_sequence"] is None
    assert {"input_tokens", "output_tokens", "cache_read_input_tokens"} <= set(assertions["usage_fields"])
    assert assertions["status"] == 200 and assertions["kind"] == "sse"
    assert any(e["type"] == "ping" for e in fixture["response"]["events"]), (
        "the events keep the recorded pings"
    )


def test_signatures_and_encrypted_data_become_length_placeholders(scenario_db):
    text, fixture = fixture_of(scenario_db, "thinking_redacted")
    events = fixture["response"]["events"]
    signature = next(
        e["delta"]["signature"] for e in events if e.get("delta", {}).get("type") == "signature_delta"
    )
    assert signature == "<SIGNATURE len=240>"
    assert fixture["assertions"]["blocks"][0]["signature"] == "<SIGNATURE len=240>"
    assert fixture["assertions"]["blocks"][1] == {
        "index": 1,
        "type": "redacted_thinking",
        "data": "<ENCRYPTED len=400>",
    }
    for original in originals(BY_NAME["thinking_redacted"]):
        assert original not in text

    text, fixture = fixture_of(scenario_db, "web_search")
    server, result, cited = fixture["assertions"]["blocks"][1:]
    assert server["id"] == "srvtoolu_1" and server["input"] == {"query": "latest Python release"}
    assert result["tool_use_id"] == "srvtoolu_1"
    assert result["content"][0]["encrypted_content"] == "<ENCRYPTED len=320>"
    assert cited["citations"][0]["encrypted_index"] == "<ENCRYPTED len=80>"
    for original in originals(BY_NAME["web_search"]):
        assert original not in text


def test_headers_volatile_dropped_secrets_absent_metadata_normalised(scenario_db):
    text, fixture = fixture_of(scenario_db, "claude_code_beta")
    request = fixture["request"]
    assert request["path"] == "/v1/messages?beta=true"
    assert set(request["headers"]) == {"anthropic-beta", "anthropic-version", "content-type"}
    assert request["headers"]["anthropic-beta"].startswith("claude-code-20250219,")
    assert request["body"]["metadata"] == {"user_id": "<USER_ID>"}
    response = fixture["response"]["headers"]
    assert set(response) == {
        "content-type",
        "request-id",
        "anthropic-ratelimit-requests-limit",
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-reset",
        "anthropic-ratelimit-tokens-limit",
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-reset",
    }
    assert response["anthropic-ratelimit-tokens-remaining"] == "<VOLATILE>"
    assert response["anthropic-ratelimit-tokens-limit"] == "400000"
    for secret in (TEST_API_KEY, "x-api-key", "__cf_bm", "set-cookie", "cf-ray", "date", "_session_"):
        assert secret not in text

    _, rate_limited = fixture_of(scenario_db, "rate_limited")
    assert rate_limited["response"]["headers"]["retry-after"] == "<VOLATILE>"
    assert rate_limited["response"]["body"]["request_id"] == rate_limited["response"]["headers"]["request-id"]
    assert rate_limited["assertions"] == {
        "status": 429,
        "kind": "json",
        "error": {"type": "rate_limit_error"},
        "headers": ["request-id", "retry-after", "x-should-retry"],
    }


def test_other_endpoints(scenario_db):
    _, counted = fixture_of(scenario_db, "count_tokens")
    assert counted["assertions"]["json"] == {"input_tokens": 1187}
    assert counted["request"]["path"] == "/v1/messages/count_tokens"
    _, models = fixture_of(scenario_db, "models")
    assert [m["id"] for m in models["response"]["body"]["data"]][0] == "claude-opus-4-5-20251101"
    assert "body" not in models["request"]


def test_deterministic_across_runs_and_fresh_ids(scenario_db, proxy, loop_thread, tmp_path):
    """The same exchange recorded again (new ids, signatures, request ids, dates) gives the same bytes."""
    again = tmp_path / "again.db"
    with serving(loop_thread, ScenarioUpstream(transform=fresh_ids)) as fresh:
        recorder = proxy(mode="record", upstream=fresh.url, record_errors=True, db=again)
        record_library(f"{recorder.url}/c/{CASSETTE}")
        recorder.stop()
        assert fresh.script.altered == set(BY_NAME)
    keys = keys_by_name(scenario_db)
    assert keys == keys_by_name(again)
    for scenario in SCENARIOS:
        key = keys[scenario.name]
        first = cli("fixture", key, "--db", scenario_db).output
        assert cli("fixture", key, "--db", scenario_db).output == first
        assert cli("fixture", key, "--db", again).output == first, scenario.name
    with Catalog.open(scenario_db) as a, Catalog.open(again) as b:
        detail = a.detail(a.resolve(key_of(scenario_db, "thinking")))
        other = b.detail(b.resolve(key_of(scenario_db, "thinking")))
        assert detail.response_body != other.response_body
        assert fixture_json(build_fixture(detail)) == fixture_json(build_fixture(other))


def test_output_file_and_prefix_resolution(scenario_db, tmp_path, proxy, loop_thread):
    key = key_of(scenario_db, "text_short")
    target = tmp_path / "out" / "text.json"
    target.parent.mkdir()
    written = cli("fixture", key[:6], "-o", target, "--db", scenario_db)
    assert written.exit_code == 0 and str(target) in written.output
    assert target.read_text() == cli("fixture", key, "--db", scenario_db).output
    assert target.read_text().endswith("}\n")

    short = cli("fixture", key[:3], "--db", scenario_db)
    assert short.exit_code == 1 and "at least 4 hex digits" in short.output
    unknown = cli("fixture", "ffff0000", "--db", scenario_db)
    assert unknown.exit_code == 1 and "no recording" in unknown.output

    copy = tmp_path / "copy.db"
    shutil.copy(scenario_db, copy)
    with serving(loop_thread, ScenarioUpstream()) as upstream:
        recorder = proxy(mode="record", upstream=upstream.url, db=copy)
        record_library(f"{recorder.url}/c/second", [BY_NAME["text_short"]])
        recorder.stop()
    ambiguous = cli("fixture", key[:8], "--db", copy)
    assert ambiguous.exit_code == 1 and "matches 2 recordings" in ambiguous.output
    assert CASSETTE in ambiguous.output and "second" in ambiguous.output
    picked = cli("fixture", key[:8], "--cassette", "second", "--db", copy)
    assert picked.exit_code == 0 and json.loads(picked.output)["cassette"] == "second"


def test_a_streamed_and_a_whole_message_have_the_same_view():
    """Both go through the one fold's Message: tool input normalised alike, a cut-short call marked."""
    message = {
        "id": "msg_01AbCdEfGhIj",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [
            {"type": "tool_use", "id": "toolu_01AbCdEf", "name": "Read", "input": {"id": "file_01AbCdEf"}}
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 7},
    }
    streamed = semantic_view(
        "/v1/messages", 200, [("content-type", "text/event-stream")], message_to_sse(message)
    )
    whole = semantic_view(
        "/v1/messages", 200, [("content-type", "application/json")], json.dumps(message).encode()
    )
    keys = ("id", "blocks", "stop_reason", "stop_sequence", "usage", "usage_fields")
    assert {k: streamed[k] for k in keys} == {k: whole[k] for k in keys}
    assert streamed["blocks"][0]["input"] == {"id": "file_1"}

    events = message_to_events(message)
    [tool_json] = [e["delta"] for e in events if e["type"] == "content_block_delta"]
    tool_json["partial_json"] = '{"id": "file_01Ab'
    [block] = semantic_view("/v1/messages", 200, None, encode_events(events))["blocks"]
    assert block["input"] == {} and block["input_complete"] is False


def test_a_bedrock_stream_fixture_holds_the_events_its_frames_carry(proxy, bedrock, aws_credentials, db_path):
    from tests.support.bedrock_upstream import MODEL
    from tests.support.bedrock_upstream import client as bedrock_client

    recorder = proxy(mode="record", upstream=bedrock.url, upstream_format="bedrock")
    with bedrock_client(recorder.url).messages.with_streaming_response.create(
        model=MODEL, max_tokens=50, stream=True, messages=[{"role": "user", "content": "Hi"}]
    ) as response:
        response.read()
    recorder.stop()
    with Catalog.open(db_path) as catalog:
        [row] = catalog.recordings()
    result = cli("fixture", row.short, "--db", db_path)
    assert result.exit_code == 0, result.output
    fixture = json.loads(result.output)
    response = fixture["response"]
    assert response["framing"] == "eventstream" and "body_text" not in response
    assert [e["type"] for e in response["events"]][:2] == ["message_start", "content_block_start"]
    assert fixture["assertions"]["kind"] == "sse" and fixture["assertions"]["stop_reason"] == "end_turn"
    assert "Bedrock reply number 1" in fixture["assertions"]["blocks"][0]["text"]
