"""Stream/JSON conversion on replay, for the Messages API, Vertex and Bedrock's framed streams."""

from __future__ import annotations

import json

import pytest
from claude_vcr import eventstream
from claude_vcr.conversion import convert
from claude_vcr.sse import accumulate, message_to_sse, parse_sse

MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5",
    "content": [
        {"type": "text", "text": "I'll run it."},
        {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls -la"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "stop_details": None,
    "usage": {"input_tokens": 10, "output_tokens": 20},
}
JSON = [("content-type", "application/json")]
BEDROCK = "/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/invoke"
BEDROCK_STREAM = "/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/invoke-with-response-stream"
VERTEX = "/v1/projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"


def test_bedrock_json_recording_answers_a_stream_request_in_frames() -> None:
    body, content_type = convert(BEDROCK_STREAM, True, 200, JSON, json.dumps(MESSAGE).encode())
    assert content_type == eventstream.CONTENT_TYPE
    sse, problem = eventstream.to_sse(body)
    assert problem is None
    assert accumulate(parse_sse(sse)) == MESSAGE


def test_bedrock_framed_recording_answers_a_json_request() -> None:
    framed = eventstream.from_events(
        [json.loads(e.data) for e in parse_sse(message_to_sse(MESSAGE, ping=False))]
    )
    headers = [("content-type", eventstream.CONTENT_TYPE)]
    body, content_type = convert(BEDROCK, False, 200, headers, framed)
    assert content_type == "application/json" and json.loads(body) == MESSAGE
    assert convert(BEDROCK_STREAM, True, 200, headers, framed) is None  # already in the asked form


def test_damaged_frames_do_not_fold() -> None:
    framed = bytearray(
        eventstream.from_events([{"type": "message_start", "message": {**MESSAGE, "content": []}}])
    )
    framed[-1] ^= 1
    with pytest.raises(ValueError, match="CRC"):
        convert(BEDROCK, False, 200, [("content-type", eventstream.CONTENT_TYPE)], bytes(framed))


def test_vertex_converts_like_the_messages_api() -> None:
    body, content_type = convert(
        VERTEX.replace(":rawPredict", ":streamRawPredict"), True, 200, JSON, json.dumps(MESSAGE).encode()
    )
    assert content_type.startswith("text/event-stream") and accumulate(parse_sse(body)) == MESSAGE


def test_errors_and_other_paths_are_left_alone() -> None:
    assert convert(BEDROCK_STREAM, True, 400, JSON, b"{}") is None
    assert convert("/inference-profiles", True, 200, JSON, b"{}") is None


def test_converse_is_left_alone() -> None:
    """Bedrock's Converse API has its own message shapes: never converted, never checked as Messages."""
    from claude_vcr.protocol import validate_response

    path = "/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/converse-stream"
    framed = eventstream.encode({":event-type": "messageStart", ":message-type": "event"}, b'{"role":"assistant"}')
    headers = [("content-type", eventstream.CONTENT_TYPE)]
    assert convert(path, False, 200, headers, framed) is None
    assert validate_response(path, 200, headers, framed, b"{}") == []
