"""A scripted Amazon Bedrock for the tests: every request's SigV4 signature checked with botocore (403
otherwise), InvokeModel answered as JSON or as real event-stream frames, and the control-plane calls
Claude Code makes on start-up.

The answers follow tests/support/upstream.py's script: `RUN:<command>` with a Bash tool offered gives a Bash
tool_use; a tool_result gives a text turn quoting it; anything else a short text turn naming the call number.
`LEAK:<text>` repeats the text in the answer; `DAMAGE` flips a bit inside the third frame of a stream; `TRUNCATE` cuts its last frame in half.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from anthropic import AnthropicBedrock
from claude_vcr import eventstream
from multidict import CIMultiDict

from tests.support.sigv4_check import verify
from tests.support.upstream import Call, last_user_text, tool_result_text

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLEsessionTOKENvalue0123456789abcdefSECRET"
REGION = "us-east-1"


MODEL = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
CLIENT_KEY, CLIENT_SECRET, CLIENT_TOKEN = (
    "AKIACLIENTSIDEKEY123",
    "client-side-secret-value-xyz",
    "client-session-token-abc",
)


def signature_problem(request: web.Request, body: bytes) -> str | None:
    """Why botocore refuses this request's SigV4 signature under the test credentials (None: it is good)."""
    return verify(
        request.method,
        f"http://{request.host}{request.raw_path}",
        list(request.headers.items()),
        body,
        {ACCESS_KEY: (SECRET_KEY, SESSION_TOKEN)},
    )


def client(url: str) -> AnthropicBedrock:
    """The SDK signs with its own (client-side) keys; the proxy must replace that signature."""
    return AnthropicBedrock(
        base_url=url,
        aws_region="us-east-1",
        aws_access_key=CLIENT_KEY,
        aws_secret_key=CLIENT_SECRET,
        aws_session_token=CLIENT_TOKEN,
        max_retries=0,
    )


def aws_env() -> dict[str, str]:
    """The credentials the proxy signs with (and the scripted Bedrock accepts)."""
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "AWS_REGION": REGION,
    }


def no_aws_in_env(monkeypatch: Any, tmp_path: Any) -> None:
    """No AWS credentials from the environment or the shared files (a pytest MonkeyPatch does the change)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))


def reply_blocks(body: dict[str, Any], number: int) -> list[dict[str, Any]]:
    """The scripted answer's content blocks for a Messages-shaped request body."""
    text, tool_result = last_user_text(body)
    tool_names = {tool.get("name") for tool in body.get("tools", [])}
    run = re.search(r"RUN:\s*(.+)", text)
    if tool_result is not None:
        return [{"type": "text", "text": f"The tool printed: {tool_result_text(tool_result).strip()}"}]
    if run and "Bash" in tool_names:
        return [
            {"type": "text", "text": "I'll run that command."},
            {
                "type": "tool_use",
                "id": f"toolu_bdrk{number:04d}",
                "name": "Bash",
                "input": {"command": run.group(1).strip(), "description": "Run the requested command"},
            },
        ]
    leak = re.search(r"LEAK:\s*(\S+)", text)
    if leak:  # the model repeats a credential it was shown
        return [{"type": "text", "text": f"Your key is {leak.group(1)} as you said."}]
    return [{"type": "text", "text": f"Bedrock reply number {number}. Hello from the scripted Bedrock!"}]


def stream_events(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The Anthropic stream events of a message, as Bedrock carries them (metrics on message_stop)."""
    start = dict(message, content=[], stop_reason=None)
    start["usage"] = dict(message["usage"], output_tokens=1)
    events: list[dict[str, Any]] = [{"type": "message_start", "message": start}]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            events.append(
                {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
            )
            words = re.findall(r"\S+\s*", block["text"])
            for at in range(0, len(words), 3):
                delta = {"type": "text_delta", "text": "".join(words[at : at + 3])}
                events.append({"type": "content_block_delta", "index": index, "delta": delta})
        else:
            start_block = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            events.append({"type": "content_block_start", "index": index, "content_block": start_block})
            raw = json.dumps(block["input"])
            for at in range(0, len(raw), 9):
                delta = {"type": "input_json_delta", "partial_json": raw[at : at + 9]}
                events.append({"type": "content_block_delta", "index": index, "delta": delta})
        events.append({"type": "content_block_stop", "index": index})
    events.append(
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": message["usage"]["output_tokens"]},
        }
    )
    metrics = {
        "inputTokenCount": message["usage"]["input_tokens"],
        "outputTokenCount": message["usage"]["output_tokens"],
        "invocationLatency": 120,
        "firstByteLatency": 40,
    }
    events.append({"type": "message_stop", "amazon-bedrock-invocationMetrics": metrics})
    return events


PROFILES = {
    "inferenceProfileSummaries": [
        {
            "inferenceProfileId": "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "inferenceProfileName": "US Claude Sonnet 4.5",
            "inferenceProfileArn": "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "status": "ACTIVE",
            "type": "SYSTEM_DEFINED",
            "models": [
                {
                    "modelArn": "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0"
                }
            ],
        }
    ]
}


@dataclass
class ScriptedBedrock:
    """The stand-in for bedrock-runtime and bedrock; run it with `loopback.serving()`."""

    calls: list[Call] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    """Why each refused request was refused (a bad or missing signature)."""

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def model_calls(self) -> list[Call]:
        return [call for call in self.calls if call.path.startswith("/model/")]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.calls.append(Call(request.method, request.raw_path, CIMultiDict(request.headers), body))
        number = len(self.calls)
        problem = signature_problem(request, body)
        ids = {"x-amzn-RequestId": f"00000000-0000-4000-8000-{number:012d}"}
        if problem is not None:
            self.rejected.append(problem)
            return web.json_response(
                {
                    "message": f"The request signature we calculated does not match the signature you provided ({problem})"
                },
                status=403,
                headers={**ids, "x-amzn-ErrorType": "InvalidSignatureException"},
            )
        match = re.fullmatch(
            r"/model/([^/]+)/(invoke|invoke-with-response-stream)", request.raw_path.split("?")[0]
        )
        if request.method == "GET" and request.path == "/inference-profiles":
            return web.json_response(PROFILES, headers=ids)
        if request.method == "GET" and request.path.startswith("/foundation-models"):
            return web.json_response({"modelSummaries": []}, headers=ids)
        if not match or request.method != "POST":
            return web.json_response(
                {"message": f"Unknown operation {request.method} {request.path}"},
                status=404,
                headers={**ids, "x-amzn-ErrorType": "UnknownOperationException"},
            )
        model = unquote(match.group(1))
        try:
            payload = json.loads(body)
        except ValueError:
            return web.json_response(
                {"message": "Malformed input request"},
                status=400,
                headers={**ids, "x-amzn-ErrorType": "ValidationException"},
            )
        if not isinstance(payload.get("anthropic_version"), str):
            return web.json_response(
                {"message": "anthropic_version is required"},
                status=400,
                headers={**ids, "x-amzn-ErrorType": "ValidationException"},
            )
        blocks = reply_blocks(payload, number)
        message = {
            "id": f"msg_bdrk_{number:04d}",
            "type": "message",
            "role": "assistant",
            "model": model.split(".", 1)[-1].split("-v")[0] if "." in model else model,
            "content": blocks,
            "stop_reason": "tool_use" if blocks[-1]["type"] == "tool_use" else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 25 + number, "output_tokens": 10 + len(blocks)},
        }
        if match.group(2) == "invoke":
            return web.json_response(
                message,
                headers={
                    **ids,
                    "X-Amzn-Bedrock-Input-Token-Count": str(message["usage"]["input_tokens"]),
                    "X-Amzn-Bedrock-Output-Token-Count": str(message["usage"]["output_tokens"]),
                    "X-Amzn-Bedrock-Invocation-Latency": "120",
                },
            )
        response = web.StreamResponse(
            headers={
                **ids,
                "Content-Type": eventstream.CONTENT_TYPE,
                "X-Amzn-Bedrock-Content-Type": "application/json",
            }
        )
        await response.prepare(request)
        frames = [eventstream.chunk_frame(event) for event in stream_events(message)]
        said = last_user_text(payload)[0]
        if (
            "DAMAGE" in said
        ):  # one flipped bit in the third frame's payload: its message CRC no longer matches
            third = bytearray(frames[2])
            third[-6] ^= 0x01
            frames[2] = bytes(third)
        if "TRUNCATE" in said:  # the stream ends halfway through its last frame
            frames[-1] = frames[-1][: len(frames[-1]) // 2]
        for frame in frames:
            await response.write(frame)
        await response.write_eof()
        return response
