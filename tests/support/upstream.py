"""A scripted Anthropic-protocol upstream for the tests: realistic SSE and JSON, and a count of its calls.

What it answers depends on the last user text of a Messages request:
- `RUN:<command>` with a `Bash` tool offered: a Bash tool_use (as Claude Code's tool turns);
- `AGENT:<prompt>` with an `Agent` tool offered: an Agent tool_use starting a subagent with that prompt;
- `weather` with a `get_weather` tool offered: a get_weather tool_use;
- a tool_result as the last content: a text turn quoting the result (a subagent's: a fixed line, since its
  result holds Claude Code's random agent id);
- `SLOW`: the stream pauses after its first event until `release()` is called (or the server stops);
- `BIG:<kilobytes>`: a long text stream in many small chunks;
- `HUGE:<megabytes>`: a text stream of that size in 64 KB deltas;
- `BREAK`: the connection is dropped in the middle of the stream;
- `OVERLOADED`: the stream ends with an `error` event (overloaded_error) after a 200;
- `STATUS:<code>`: an Anthropic error with that status (429 carries retry-after);
- `GZIP`: the JSON answer is gzip-encoded whatever the client asked for;
- `BADINDEX`: content blocks are numbered from 1, breaking the protocol (for monitor-mode checks);
- anything else: a short text turn that names the call number, so two calls never answer alike.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from tests.support.loopback import Gate


@dataclass
class Call:
    method: str
    path: str
    headers: CIMultiDict[str]
    body: bytes


def sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


def last_user_text(body: dict[str, Any]) -> tuple[str, Any]:
    """The text of the last user message, and its tool_result content if it ends with one."""
    messages = [m for m in body.get("messages", []) if m.get("role") == "user"]
    if not messages:
        return "", None
    content = messages[-1].get("content")
    if isinstance(content, str):
        return content, None
    texts = [b.get("text", "") for b in content if b.get("type") == "text"]
    results = [b for b in content if b.get("type") == "tool_result"]
    return "\n".join(texts), (results[-1] if results else None)


def tool_result_text(result: dict[str, Any]) -> str:
    content = result.get("content")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content or "")


@dataclass
class ScriptedUpstream:
    """The stand-in for api.anthropic.com; run it with `loopback.serving()`."""

    calls: list[Call] = field(default_factory=list)
    finished_streams: int = 0
    """Streams written to their end; a stream the client or proxy cut off is not counted."""
    ended_streams: int = 0
    """Streams whose handler is done, finished or cut off."""
    slow: Gate = field(default_factory=Gate)
    _ended: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def message_calls(self) -> list[Call]:
        return [c for c in self.calls if c.path.startswith("/v1/messages") and "count_tokens" not in c.path]

    def release(self) -> None:
        """Let `SLOW` streams go on (callable from any thread)."""
        self.slow.open()

    def wait_ended(self, streams: int = 1, timeout: float = 30) -> None:
        """Block until this many streams have ended, finished or cut off (for synchronous tests)."""
        with self._ended:
            assert self._ended.wait_for(lambda: self.ended_streams >= streams, timeout), "no stream ended"

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.slow.attach(app)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.calls.append(Call(request.method, request.path_qs, CIMultiDict(request.headers), body))
        number = len(self.calls)
        path = request.path
        if path == "/v1/messages":
            return await self.messages(request, json.loads(body), number)
        if path == "/v1/messages/count_tokens":
            return web.json_response({"input_tokens": max(1, len(body) // 4)}, headers=self.ids(number))
        if path == "/v1/models":
            return web.json_response(
                {
                    "data": [
                        {
                            "type": "model",
                            "id": "claude-sonnet-4-5-20250929",
                            "display_name": "Claude Sonnet 4.5",
                            "created_at": "2025-09-29T00:00:00Z",
                        }
                    ],
                    "has_more": False,
                    "first_id": "claude-sonnet-4-5-20250929",
                    "last_id": "claude-sonnet-4-5-20250929",
                },
                headers=self.ids(number),
            )
        if path == "/v1/files":
            return web.json_response(
                {"id": f"file_{number:04d}", "bytes": len(body)}, headers=self.ids(number)
            )
        if path.startswith("/api/event_logging/"):
            return web.json_response({})
        if path == "/api/hello":
            return web.Response(status=200)
        return self.error(404, "not_found_error", f"scripted upstream has no {path}", number)

    def ids(self, number: int) -> dict[str, str]:
        return {
            "request-id": f"req_scripted{number:04d}",
            "anthropic-ratelimit-requests-limit": "4000",
            "anthropic-ratelimit-tokens-remaining": "399000",
            "set-cookie": f"__cf_bm=cookie-secret-{number}; path=/; HttpOnly",
        }

    def error(self, status: int, error_type: str, message: str, number: int) -> web.Response:
        headers = self.ids(number)
        if status in (429, 529):
            headers["retry-after"] = "7"
        body = {"type": "error", "error": {"type": error_type, "message": message}}
        body["request_id"] = headers["request-id"]
        return web.json_response(body, status=status, headers=headers)

    async def messages(self, request: web.Request, body: dict[str, Any], number: int) -> web.StreamResponse:
        text, tool_result = last_user_text(body)
        status = re.search(r"STATUS:(\d{3})", text)
        if status:
            code = int(status.group(1))
            kind = {429: "rate_limit_error", 529: "overloaded_error", 400: "invalid_request_error", 401: "authentication_error",
                    403: "permission_error", 404: "not_found_error", 413: "request_too_large", 422: "invalid_request_error"}
            return self.error(code, kind.get(code, "api_error"), f"scripted {code}", number)
        tool_names = {tool.get("name") for tool in body.get("tools", [])}
        blocks: list[dict[str, Any]]
        run = re.search(r"RUN:\s*(.+)", text)
        if tool_result is not None and "agentId:" in tool_result_text(tool_result):
            blocks = [{"type": "text", "text": "The subagent is on it."}]  # as told: never quote its id
        elif tool_result is not None:
            blocks = [{"type": "text", "text": f"The tool printed: {tool_result_text(tool_result).strip()}"}]
        elif run and "Bash" in tool_names:
            command = run.group(1).strip()
            blocks = [
                {"type": "text", "text": "I'll run that command."},
                {
                    "type": "tool_use",
                    "id": f"toolu_scripted{number:04d}",
                    "name": "Bash",
                    "input": {"command": command, "description": "Run the requested command"},
                },
            ]
        elif (agent := re.search(r"AGENT:\s*(.+)", text)) and "Agent" in tool_names:
            blocks = [
                {"type": "text", "text": "I'll ask a subagent."},
                {
                    "type": "tool_use",
                    "id": f"toolu_scripted{number:04d}",
                    "name": "Agent",
                    "input": {
                        "description": "Ask a helper",
                        "prompt": agent.group(1).strip(),
                        "subagent_type": "general-purpose",
                    },
                },
            ]
        elif "weather" in text and "get_weather" in tool_names:
            blocks = [
                {
                    "type": "tool_use",
                    "id": f"toolu_scripted{number:04d}",
                    "name": "get_weather",
                    "input": {"city": "Paris", "unit": "celsius"},
                }
            ]
        else:
            big = re.search(r"BIG:(\d+)", text)
            huge = re.search(r"HUGE:(\d+)", text)
            filler = (
                "All work and no play. " * 48 * int(big.group(1))
                if big
                else "Hello from the scripted upstream!"
            )
            if huge:
                filler = "".join(
                    f"line {i} of a very long answer.\n" for i in range(int(huge.group(1)) * 32_000)
                )
            reply = f"Scripted reply number {number}. {filler}"
            blocks = [{"type": "text", "text": reply}]
        stop_reason = "tool_use" if blocks[-1]["type"] == "tool_use" else "end_turn"
        message = {
            "id": f"msg_scripted{number:04d}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "claude-sonnet-4-5-20250929"),
            "content": blocks,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": 25 + number, "output_tokens": 10 + len(blocks)},
        }
        if not body.get("stream"):
            payload = json.dumps(message).encode()
            headers = self.ids(number)
            if "GZIP" in text:
                payload = gzip.compress(payload)
                headers["content-encoding"] = "gzip"
            return web.Response(body=payload, content_type="application/json", headers=headers)
        try:
            return await self.stream(request, message, text)
        finally:
            with self._ended:
                self.ended_streams += 1
                self._ended.notify_all()

    async def stream(self, request: web.Request, message: dict[str, Any], text: str) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
            | self.ids(int(message["id"][-4:]))
        )
        await response.prepare(request)
        start = dict(message, content=[], stop_reason=None)
        start["usage"] = dict(message["usage"], output_tokens=1)
        await response.write(sse({"type": "message_start", "message": start}))
        if "SLOW" in text:
            await self.slow.wait()
        await response.write(sse({"type": "ping"}))
        first_index = 1 if "BADINDEX" in text else 0
        for index, block in enumerate(message["content"], start=first_index):
            for event in self.block_events(index, block):
                await response.write(event)
                if "BIG" in text:
                    await asyncio.sleep(0)
            if "BREAK" in text:
                request.transport.close()
                return response
            if "OVERLOADED" in text:
                error = {"type": "overloaded_error", "message": "Overloaded"}
                await response.write(sse({"type": "error", "error": error}))
                await response.write_eof()
                return response
        await response.write(
            sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                    "usage": {"output_tokens": message["usage"]["output_tokens"]},
                }
            )
        )
        await response.write(sse({"type": "message_stop"}))
        await response.write_eof()
        self.finished_streams += 1
        return response

    def block_events(self, index: int, block: dict[str, Any]) -> list[bytes]:
        if block["type"] == "text" and len(block["text"]) > 1_000_000:
            start = {"type": "text", "text": ""}
            text = block["text"]
            deltas = [{"type": "text_delta", "text": text[i : i + 65536]} for i in range(0, len(text), 65536)]
        elif block["type"] == "text":
            start = {"type": "text", "text": ""}
            words = re.findall(r"\S+\s*", block["text"])
            pieces = ["".join(words[i : i + 3]) for i in range(0, len(words), 3)]
            deltas = [{"type": "text_delta", "text": piece} for piece in pieces]
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            raw = json.dumps(block["input"])
            fragments = [""] + [raw[i : i + 9] for i in range(0, len(raw), 9)]
            deltas = [{"type": "input_json_delta", "partial_json": part} for part in fragments]
        events = [sse({"type": "content_block_start", "index": index, "content_block": start})]
        events += [sse({"type": "content_block_delta", "index": index, "delta": d}) for d in deltas]
        events.append(sse({"type": "content_block_stop", "index": index}))
        return events
