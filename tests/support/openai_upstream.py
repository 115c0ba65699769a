"""A scripted OpenAI-compatible upstream (Chat Completions) for the adapter tests: realistic chunks, and a
count of its calls.

`GET .../models` lists the one model; `POST .../chat/completions` answers by the last message of the request
(a `tool` message first):
- a tool result last: a text turn quoting it (`The tool printed: ...`);
- `RUN:<command>` with a `Bash` tool offered: some text, then a Bash call whose arguments come in 7-character
  fragments (as Claude Code's tool turns);
- `PARALLEL` with `get_weather`: two calls whose fragments interleave (index 0, 1, 0, 1...);
- `ONECHUNK` with `get_weather`: one chunk holding the call's id, name, whole arguments, finish_reason and
  usage (fake-stream providers);
- `NOID` with `get_weather`: a call with no id at all;
- `BADJSON` with `get_weather`: a call whose arguments never become JSON;
- `REASONING`: `reasoning_content` then text; `OPENROUTER`: the `reasoning` field, in two segments
  around text;
- `LENGTH`, `FILTER`: finish_reason length / content_filter; `STOPSEQ`: vLLM's `stop_reason` naming the
  request's first stop sequence;
- `CACHED`: usage with cached prompt tokens; `NOUSAGE`: no usage chunk; `NODONE`: no `data: [DONE]`;
- `SLOW`: a silence between the first and the second chunk, until `release()` (or for `slow_seconds`);
- `STATUS:<code>`: an OpenAI error body with that status (429 carries retry-after);
- `MIDFAIL`: the connection is dropped after the first text; `MIDERROR`: an OpenRouter-style error chunk;
- `tool_choice` naming a function (or `required`: the first tool): a call to it, its required string
  arguments filled in (as an API that honours tool_choice must);
- no messages at all: a 400, as OpenAI answers it;
- anything else: a short text that names the call number, so two calls never answer alike.
Non-streaming requests get the same answer folded into one completion. Tests can also queue an exact `Plan`.
"""

from __future__ import annotations

import asyncio
import json
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from tests.support.loopback import Gate, LoopbackServer, LoopThread, serving

MODEL = "scripted/model-1"
CUT = "<cut the connection>"
"""A plan item: drop the connection here, mid-stream."""
HOLD = "<hold the stream>"
"""A plan item: send nothing more until `release()` (or for `slow_seconds` when set)."""


@dataclass
class Plan:
    """One answer: a status and JSON body (whatever the request asked for), or stream items: chunk dicts, raw
    strings, HOLD, CUT (folded into one completion for a non-streaming request)."""

    status: int = 200
    items: list[Any] = field(default_factory=list)
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    done: bool = True
    """Whether the stream ends with `data: [DONE]`."""


@dataclass
class Call:
    path: str
    headers: CIMultiDict[str]
    body: dict[str, Any]


class Chunks:
    """Chunk dicts of one completion, all with its id."""

    def __init__(self, number: int) -> None:
        self.id = f"chatcmpl-scripted{number:04d}"

    def chunk(
        self, delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta or {}, "finish_reason": finish, "logprobs": None}
        choice.update(extra.pop("choice", {}))
        value = {"id": self.id, "object": "chat.completion.chunk", "created": 1_763_700_000, "model": MODEL}
        value["choices"] = [choice]
        value.update(extra)
        return value

    def role(self) -> dict[str, Any]:
        return self.chunk({"role": "assistant", "content": ""})

    def text(self, text: str, key: str = "content", size: int = 12) -> list[dict[str, Any]]:
        return [self.chunk({key: text[i : i + size]}) for i in range(0, len(text), size)]

    def call_start(self, index: int, call_id: str | None, name: str, arguments: str = "") -> dict[str, Any]:
        call: dict[str, Any] = {
            "index": index,
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }
        if call_id is not None:
            call["id"] = call_id
        return self.chunk({"tool_calls": [call]})

    def call_args(self, index: int, fragment: str) -> dict[str, Any]:
        return self.chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})

    def tool_call(
        self, index: int, call_id: str | None, name: str, arguments: str, size: int = 7
    ) -> list[dict[str, Any]]:
        pieces = [arguments[i : i + size] for i in range(0, len(arguments), size)]
        return [self.call_start(index, call_id, name)] + [self.call_args(index, piece) for piece in pieces]

    def usage(self, prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if cached:
            usage["prompt_tokens_details"] = {"cached_tokens": cached}
        value = {"id": self.id, "object": "chat.completion.chunk", "created": 1_763_700_000, "model": MODEL}
        value.update({"choices": [], "usage": usage})
        return value


def _text(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):
        content = "\n".join(part.get("text", "") for part in content if part.get("type") == "text")
    return content


def last_turn(body: dict[str, Any]) -> tuple[str, str | None]:
    """The user text of the last turn (every user message since the last assistant one: some gateways move
    system reminders into a user message of their own after the prompt), and the content of the last message
    if it is a tool result."""
    messages = body.get("messages") or []
    tool = messages[-1].get("content") if messages and messages[-1].get("role") == "tool" else None
    users = [m for m in messages if m.get("role") == "user"]
    turn: list[dict[str, Any]] = []
    for message in reversed(messages):
        if message.get("role") == "assistant":
            break
        if message.get("role") == "user":
            turn.insert(0, message)
    return "\n".join(_text(m) for m in turn or users[-1:]), tool


def forced_tool(body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The function tool_choice forces (`required`: the first tool), with its required arguments filled in."""
    choice, tools = body.get("tool_choice"), body.get("tools") or []
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
    elif choice == "required" and tools:
        name = tools[0]["function"]["name"]
    else:
        return None
    function = next((t["function"] for t in tools if t["function"]["name"] == name), None)
    if function is None:
        return None
    schema = function.get("parameters") or {}
    arguments = {key: f"scripted {key}" for key in schema.get("required") or []}
    return name, arguments


def fold(items: list[Any]) -> dict[str, Any]:
    """The non-streaming completion the stream items stand for."""
    message: dict[str, Any] = {"role": "assistant", "content": None}
    calls: dict[int, dict[str, Any]] = {}
    finish, usage, completion_id = None, None, None
    for item in items:
        if not isinstance(item, dict):
            continue
        completion_id = item.get("id", completion_id)
        usage = item.get("usage") or usage
        for choice in item.get("choices") or []:
            delta = choice.get("delta") or {}
            for key in ("content", "reasoning_content", "reasoning"):
                if delta.get(key):
                    message[key] = (message.get(key) or "") + delta[key]
            for fragment in delta.get("tool_calls") or []:
                call = calls.setdefault(
                    fragment["index"], {"type": "function", "function": {"name": "", "arguments": ""}}
                )
                if fragment.get("id"):
                    call["id"] = fragment["id"]
                function = fragment.get("function") or {}
                call["function"]["name"] += function.get("name") or ""
                call["function"]["arguments"] += function.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    if calls:
        message["tool_calls"] = [calls[index] for index in sorted(calls)]
    completion = {"id": completion_id, "object": "chat.completion", "created": 1_763_700_000, "model": MODEL}
    completion["choices"] = [{"index": 0, "message": message, "finish_reason": finish}]
    if usage:
        completion["usage"] = usage
    return completion


@dataclass
class OpenAIScript:
    """The stand-in for an OpenAI-compatible API; run it with `serve_openai()`."""

    calls: list[Call] = field(default_factory=list)
    plans: list[Plan] = field(default_factory=list)
    slow_seconds: float | None = None
    """How long a HOLD lasts; None: until `release()` (tests), a number: a timed silence (the peer report)."""
    numbered: bool = True
    """Whether default replies name the call number (two calls never alike); off for `claude-vcr verify`."""
    finished_streams: int = 0
    held: Gate = field(default_factory=Gate)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.held.attach(app)
        return app

    def release(self) -> None:
        """End every HOLD, now and later (callable from any thread)."""
        self.held.open()

    def chat_calls(self) -> list[Call]:
        return [call for call in self.calls if call.path.endswith("/chat/completions")]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw) if raw else {}
        self.calls.append(Call(request.path_qs, CIMultiDict(request.headers), body))
        if request.path.endswith("/models") and request.method == "GET":
            model = {"id": MODEL, "object": "model", "created": 1_763_700_000, "owned_by": "scripted"}
            return web.json_response({"object": "list", "data": [model]})
        if not request.path.endswith("/chat/completions") or request.method != "POST":
            error = {"error": {"message": f"no route {request.path}", "type": "invalid_request_error"}}
            return web.json_response(error, status=404)
        plan = self.plans.pop(0) if self.plans else self.scenario(body, len(self.calls))
        headers = {"x-request-id": f"req_openai{len(self.calls):04d}", **plan.headers}
        if plan.status != 200 or plan.body is not None:
            return web.json_response(plan.body, status=plan.status, headers=headers)
        if not body.get("stream"):
            return web.json_response(fold(plan.items), headers=headers)
        response = web.StreamResponse(headers={"content-type": "text/event-stream", **headers})
        await response.prepare(request)
        for item in plan.items:
            if item == HOLD:
                if self.slow_seconds is None:
                    await self.held.wait()
                else:
                    await asyncio.sleep(self.slow_seconds)
            elif item == CUT:
                assert request.transport is not None
                request.transport.close()
                return response
            elif isinstance(item, str):
                await response.write(item.encode())
            else:
                await response.write(f"data: {json.dumps(item)}\n\n".encode())
        if plan.done:
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        self.finished_streams += 1
        return response

    def scenario(self, body: dict[str, Any], number: int) -> Plan:
        """The answer a request's last turn asks for (see the module docstring)."""
        text, tool_result = last_turn(body)
        tools = {tool["function"]["name"] for tool in body.get("tools") or []}
        status = re.search(r"STATUS:(\d{3})", text)
        if status and tool_result is None:
            code = int(status.group(1))
            kinds = {429: "rate_limit_exceeded", 401: "invalid_api_key", 400: "invalid_request_error"}
            error = {
                "message": f"scripted {code}",
                "type": kinds.get(code, "server_error"),
                "code": kinds.get(code),
            }
            return Plan(
                status=code, body={"error": error}, headers={"retry-after": "7"} if code == 429 else {}
            )
        if not body.get("messages"):
            error = {"message": "[] is too short - 'messages'", "type": "invalid_request_error", "code": None}
            return Plan(status=400, body={"error": error})
        c = Chunks(number)
        items: list[Any] = [c.role()]
        finish = "stop"
        prompt, output, cached = 30 + number, 12, 0
        plan = Plan()
        if tool_result is not None:
            items += c.text(f"The tool printed: {tool_result.strip()}")
        elif forced := forced_tool(body):
            items += c.tool_call(0, f"call_forced{number:04d}", forced[0], json.dumps(forced[1]))
            finish = "tool_calls"
        elif (run := re.search(r"RUN:\s*(.+)", text)) and "Bash" in tools:
            arguments = json.dumps(
                {"command": run.group(1).strip(), "description": "Run the requested command"}
            )
            items += c.text("I'll run that command.")
            items += c.tool_call(0, f"call_scripted{number:04d}", "Bash", arguments)
            finish = "tool_calls"
        elif "PARALLEL" in text and "get_weather" in tools:
            first, second = json.dumps({"city": "Paris"}), json.dumps({"city": "London", "unit": "celsius"})
            items.append(c.call_start(0, f"call_paris{number:04d}", "get_weather"))
            items.append(c.call_start(1, f"call_london{number:04d}", "get_weather"))
            for i in range(0, max(len(first), len(second)), 4):
                items += [c.call_args(0, first[i : i + 4])] if first[i : i + 4] else []
                items += [c.call_args(1, second[i : i + 4])] if second[i : i + 4] else []
            finish = "tool_calls"
        elif "ONECHUNK" in text and "get_weather" in tools:
            call = {"index": 0, "id": f"call_one{number:04d}", "type": "function"}
            call["function"] = {"name": "get_weather", "arguments": json.dumps({"city": "Oslo"})}
            usage = c.usage(prompt, output)["usage"]
            items = [c.chunk({"role": "assistant", "tool_calls": [call]}, "tool_calls", usage=usage)]
            return Plan(items=items)
        elif "NOID" in text and "get_weather" in tools:
            items += c.tool_call(0, None, "get_weather", json.dumps({"city": "Rome"}))
            finish = "tool_calls"
        elif "BADJSON" in text and "get_weather" in tools:
            items += c.tool_call(0, f"call_bad{number:04d}", "get_weather", '{"city": "Par')
            finish = "tool_calls"
        elif "REASONING" in text:
            items += c.text("The user wants a greeting. I will greet.", key="reasoning_content")
            items += c.text("Hello after thinking.")
        elif "OPENROUTER" in text:
            items += c.text("First I think.", key="reasoning")
            items += c.text("Some text.")
            items += c.text("Then I think again.", key="reasoning")
            items += c.text("More text.")
        else:
            name = f" number {number}" if self.numbered else ""
            items += c.text(f"Scripted reply{name}. Hello from the scripted OpenAI upstream!")
        if "LENGTH" in text:
            finish = "length"
        elif "FILTER" in text:
            finish = "content_filter"
        if "SLOW" in text:
            items.insert(2, HOLD)
        if "MIDFAIL" in text:
            return Plan(items=items[:2] + [CUT])
        if "MIDERROR" in text:
            error = {
                "message": "Provider returned error",
                "code": 502,
                "metadata": {"raw": "upstream overloaded"},
            }
            return Plan(items=items[:2] + [c.chunk({}, "error", error=error)], done=False)
        choice = {}
        if "STOPSEQ" in text and body.get("stop"):
            choice = {"stop_reason": body["stop"][0]}
        items.append(c.chunk({}, finish, choice=choice))
        if "CACHED" in text:
            cached = 20
        if "NOUSAGE" not in text:
            items.append(c.usage(prompt, output, cached))
        plan.items = items
        plan.done = "NODONE" not in text
        return plan


OpenAIServer = LoopbackServer[OpenAIScript]
"""The scripted OpenAI upstream listening on 127.0.0.1."""


def serve_openai(
    loop_thread: LoopThread, script: OpenAIScript | None = None
) -> AbstractContextManager[OpenAIServer]:
    """Run an OpenAIScript on a free loopback port for the block; the server's `url` is its base (with /v1)."""
    return serving(loop_thread, script or OpenAIScript(), path="/v1")
