"""The scenario library: Anthropic Messages API exchanges, each an exact request, the exact answer the API
gives, and what any conforming endpoint's answer must show (`Expect`).

Shapes follow the docs and SDK facts collected in PROTOCOL.md (W.2-W.11): ids with their real prefixes,
message_start usage like a real recording, a ping after message_start, tool JSON that starts with an empty
fragment and then arrives in pieces, signature_delta just before a thinking block stops, a web search result
block without deltas, cumulative usage in message_delta. `claude-vcr conformance` sends the requests to a
target and judges its answers (`conformance.judge`); the test suite serves the exact answers as an upstream.

Pure data and builders: no I/O, no aiohttp.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ..sse import MessageFold, encode_events, parse_sse

MODEL = "claude-opus-4-5-20251101"
HAIKU = "claude-haiku-4-5-20251001"
SSE_TYPE = "text/event-stream; charset=utf-8"
JSON_TYPE = "application/json"
CLAUDE_CODE_BETAS = (
    "claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"
)
Events = list[dict[str, Any]]

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def fake_id(prefix: str, seed: str, length: int = 24) -> str:
    """A realistic, stable id: `toolu_01` and base62 digits derived from the seed."""
    number = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big")
    digits = []
    while len(digits) < length - 2:
        number, rest = divmod(number, 62)
        digits.append(_BASE62[rest])
    return f"{prefix}01{''.join(digits)}"


def fake_signature(seed: str, size: int = 240) -> str:
    """An opaque base64 blob like a thinking signature or encrypted search result."""
    raw = b"".join(hashlib.sha256(f"{seed}/{i}".encode()).digest() for i in range(size // 32 + 1))
    return base64.b64encode(raw).decode()[:size]


# --- Claude Code's tools, as it declares them (abridged descriptions) --------------------------------------


def tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "input_schema": {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
            "$schema": "http://json-schema.org/draft-07/schema#",
        },
    }


STRING = {"type": "string"}
CLAUDE_CODE_TOOLS = [
    tool(
        "Bash",
        "Executes a given bash command in a persistent shell session.",
        {"command": STRING, "description": STRING, "timeout": {"type": "number"}},
        ["command"],
    ),
    tool(
        "Glob",
        "Fast file pattern matching tool that works with any codebase size.",
        {"pattern": STRING, "path": STRING},
        ["pattern"],
    ),
    tool(
        "Grep",
        "A powerful search tool built on ripgrep.",
        {
            "pattern": STRING,
            "path": STRING,
            "glob": STRING,
            "output_mode": {"type": "string", "enum": ["content", "files_with_matches", "count"]},
            "-n": {"type": "boolean"},
        },
        ["pattern"],
    ),
    tool(
        "Read",
        "Reads a file from the local filesystem.",
        {"file_path": STRING, "offset": {"type": "number"}, "limit": {"type": "number"}},
        ["file_path"],
    ),
    tool(
        "Edit",
        "Performs exact string replacements in files.",
        {"file_path": STRING, "old_string": STRING, "new_string": STRING, "replace_all": {"type": "boolean"}},
        ["file_path", "old_string", "new_string"],
    ),
    tool(
        "Write",
        "Writes a file to the local filesystem.",
        {"file_path": STRING, "content": STRING},
        ["file_path", "content"],
    ),
    tool(
        "TodoWrite",
        "Create and manage a structured task list for your current coding session.",
        {
            "todos": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "content": STRING,
                        "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]},
                        "activeForm": STRING,
                    },
                    "required": ["content", "status", "activeForm"],
                },
            }
        },
        ["todos"],
    ),
    tool(
        "WebFetch",
        "Fetches content from a specified URL and processes it.",
        {"url": STRING, "prompt": STRING},
        ["url", "prompt"],
    ),
    tool(
        "Task",
        "Launch a new agent to handle complex, multi-step tasks autonomously.",
        {"description": STRING, "prompt": STRING, "subagent_type": STRING},
        ["description", "prompt", "subagent_type"],
    ),
    tool(
        "NotebookEdit",
        "Completely replaces the contents of a specific cell in a Jupyter notebook.",
        {"notebook_path": STRING, "cell_id": STRING, "new_source": STRING},
        ["notebook_path", "new_source"],
    ),
    tool(
        "BashOutput",
        "Retrieves output from a running or completed background bash shell.",
        {"bash_id": STRING, "filter": STRING},
        ["bash_id"],
    ),
]
SYSTEM = [
    {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
    {
        "type": "text",
        "text": "You are an interactive CLI tool that helps users with software engineering tasks.\n"
        "Primary working directory: /home/dev/shop\nIs a git repository: true",
        "cache_control": {"type": "ephemeral"},
    },
]
CLAUDE_CODE_GUIDANCE = "\n".join(
    f"- {rule}"
    for rule in (
        "Use the dedicated tools (Read, Edit, Write, Glob, Grep) instead of shell equivalents.",
        "Keep answers short: fewer than four lines unless the user asks for detail.",
        "Never commit changes unless the user explicitly asks you to.",
        "Run the project's lint and type-check commands after a change when you know them.",
        "Use TodoWrite to plan and track multi-step tasks; mark each task completed as soon as it is done.",
        "Refuse to write or explain code that may be used maliciously.",
        "Follow the conventions of the surrounding code: libraries, naming, formatting, imports.",
        "When a tool call is rejected, ask the user what to do instead of retrying it.",
    )
    * 12
)
LARGE_SYSTEM = [
    SYSTEM[0],
    {
        "type": "text",
        "text": f"{SYSTEM[1]['text']}\n\n# Doing tasks\n{CLAUDE_CODE_GUIDANCE}",
        "cache_control": {"type": "ephemeral"},
    },
]
"""Claude Code's system prompt is large (~15 KB) and cached: this one is ~10 KB with cache_control."""
WEB_SEARCH_TOOL = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}


# --- building answers ---------------------------------------------------------------------------------------


def usage(
    input_tokens: int, output_tokens: int = 1, cache_read: int = 0, cache_creation: int = 0
) -> dict[str, Any]:
    """message_start usage with the shape of a real recording (PROTOCOL.md W.7)."""
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": cache_creation,
        "cache_read_input_tokens": cache_read,
        "cache_creation": {"ephemeral_5m_input_tokens": cache_creation, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def message(
    name: str, start_usage: dict[str, Any], model: str = MODEL, content: Any = None
) -> dict[str, Any]:
    """The Message object as message_start carries it (content empty, no stop reason yet)."""
    return {
        "id": fake_id("msg_", name),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [] if content is None else content,
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }


PING: dict[str, Any] = {"type": "ping"}
STOP: dict[str, Any] = {"type": "message_stop"}


def chunks(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def block_delta(index: int, **delta: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def block_stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def text_block(index: int, text: str, size: int = 24, *, stop: bool = True) -> Events:
    deltas = [block_delta(index, type="text_delta", text=piece) for piece in chunks(text, size)]
    return [block_start(index, {"type": "text", "text": ""}), *deltas, *([block_stop(index)] if stop else [])]


def tool_block(
    index: int,
    tool_id: str,
    name: str,
    tool_input: dict[str, Any] | str,
    size: int = 16,
    *,
    kind: str = "tool_use",
    stop: bool = True,
) -> Events:
    """A tool call: input {} at the start, then an empty fragment and the JSON in pieces (docs W.5)."""
    raw = tool_input if isinstance(tool_input, str) else json.dumps(tool_input, ensure_ascii=False)
    fragments = ["", *chunks(raw, size)]
    deltas = [block_delta(index, type="input_json_delta", partial_json=f) for f in fragments]
    start = block_start(index, {"type": kind, "id": tool_id, "name": name, "input": {}})
    return [start, *deltas, *([block_stop(index)] if stop else [])]


def thinking_block(index: int, thinking: str, signature: str, size: int = 40) -> Events:
    """Thinking deltas, then one signature_delta just before the stop (docs W.5)."""
    deltas = [block_delta(index, type="thinking_delta", thinking=piece) for piece in chunks(thinking, size)]
    deltas.append(block_delta(index, type="signature_delta", signature=signature))
    return [
        block_start(index, {"type": "thinking", "thinking": "", "signature": ""}),
        *deltas,
        block_stop(index),
    ]


def message_delta(
    stop_reason: str, output_tokens: int, stop_sequence: str | None = None, **extra: Any
) -> dict[str, Any]:
    """message_delta: `stop_details` goes to delta, anything else to (cumulative) usage."""
    delta: dict[str, Any] = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
    if "stop_details" in extra:
        delta["stop_details"] = extra.pop("stop_details")
    return {"type": "message_delta", "delta": delta, "usage": {"output_tokens": output_tokens, **extra}}


def response_headers(name: str, content_type: str, **extra: str) -> tuple[tuple[str, str], ...]:
    """What api.anthropic.com sends besides the body: ids, rate limits, edge noise, a cookie (never stored)."""
    headers = {
        "content-type": content_type,
        "request-id": fake_id("req_", name),
        "anthropic-organization-id": "6c4b3b9a-0f6d-4c5e-9a34-5f0c2a1e7d11",
        "anthropic-ratelimit-requests-limit": "4000",
        "anthropic-ratelimit-requests-remaining": "3999",
        "anthropic-ratelimit-requests-reset": "2025-11-21T10:00:01Z",
        "anthropic-ratelimit-tokens-limit": "400000",
        "anthropic-ratelimit-tokens-remaining": "399000",
        "anthropic-ratelimit-tokens-reset": "2025-11-21T10:00:02Z",
        "cf-ray": hashlib.sha256(name.encode()).hexdigest()[:16] + "-SJC",
        "x-envoy-upstream-service-time": "812",
        "via": "1.1 google",
        "set-cookie": f"__cf_bm={fake_signature(name, 40)}; path=/; HttpOnly; Secure",
    }
    if content_type == SSE_TYPE:
        headers["cache-control"] = "no-cache"
    headers.update(extra)
    return tuple(headers.items())


@dataclass(frozen=True)
class Expect:
    """What any conforming endpoint's answer to a scenario shows, beyond the protocol rules.

    `answer` is fixed by the API contract (an error if broken): "message" (a 2xx Message, streamed when the
    request streams), "client_error" (a 4xx Anthropic error body), "any" (a Message or a well-formed Anthropic
    error: the exchange is about an upstream failure a target cannot be asked for), "count" (count_tokens),
    "models" (the models list). `forced_tool` comes from the request's tool_choice (an error if missing).
    The rest only the model decides (warnings unless --strict): the stop reasons, the tools it calls, whether
    it thinks, whether it writes text.
    """

    answer: str = "message"
    stop_reasons: frozenset[str] = frozenset()
    tools: tuple[str, ...] = ()
    forced_tool: str | None = None
    thinking: bool = False
    text: bool = False


TEXT_TURN = Expect(stop_reasons=frozenset({"end_turn"}), text=True)


@dataclass(frozen=True)
class Scenario:
    """One exchange: the request a client sends, the exact answer the API gives to it, what any answer needs."""

    name: str
    covers: str
    method: str
    path: str
    request: dict[str, Any] | None
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    request_headers: tuple[tuple[str, str], ...] = ()
    lint_warnings: frozenset[str] = field(default_factory=frozenset)
    """Warning rules a clean lint still reports for it, because the rule says so (a max_tokens cut)."""
    expect: Expect = TEXT_TURN
    """What conformance checks in any endpoint's answer to the request."""

    @property
    def stream(self) -> bool:
        return bool(self.request and self.request.get("stream"))

    @property
    def is_sse(self) -> bool:
        return dict(self.headers).get("content-type", "").startswith("text/event-stream")

    @property
    def request_bytes(self) -> bytes:
        return b"" if self.request is None else json.dumps(self.request).encode()

    @property
    def events(self) -> Events:
        """The SSE payloads (the body parsed back), for the breakages that rewrite them."""
        return [event.parsed for event in parse_sse(self.body)]


def stream_scenario(
    name: str,
    covers: str,
    request: dict[str, Any],
    events: Events,
    *,
    path: str = "/v1/messages",
    **extra: Any,
) -> Scenario:
    return Scenario(
        name=name,
        covers=covers,
        method="POST",
        path=path,
        request={**request, "stream": True},
        status=200,
        headers=response_headers(name, SSE_TYPE),
        body=encode_events(events),
        **extra,
    )


def ask(
    text: str,
    *,
    tools: list[dict[str, Any]] | None = None,
    model: str = MODEL,
    max_tokens: int = 4096,
    **extra: Any,
) -> dict[str, Any]:
    """A Messages request as Claude Code sends it (system prompt and tools when it has them)."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": text}],
    }
    if tools is not None:
        body["system"] = SYSTEM
        body["tools"] = tools
    body.update(extra)
    return body


def tool_turn(*names: str) -> Expect:
    """A turn the model should answer by calling these tools."""
    return Expect(stop_reasons=frozenset({"tool_use"}), tools=names)


def tool_scenario(
    name: str, tool_name: str, text: str, intro: str, tool_input: dict[str, Any], tokens: int
) -> Scenario:
    """Claude Code's usual tool turn: a sentence, then one tool call, stop_reason tool_use."""
    tool_id = fake_id("toolu_", name)
    events = [
        {"type": "message_start", "message": message(name, usage(3, cache_read=14_210, cache_creation=312))},
        PING,
        *text_block(0, intro),
        *tool_block(1, tool_id, tool_name, tool_input),
        message_delta("tool_use", tokens),
        STOP,
    ]
    return stream_scenario(
        name, f"{tool_name} tool_use", ask(text, tools=CLAUDE_CODE_TOOLS), events, expect=tool_turn(tool_name)
    )


# --- the scenarios ------------------------------------------------------------------------------------------

LONG_TEXT = (
    "Record and replay testing keeps a test suite fast, free and deterministic. "
    "The first run talks to the real API and keeps every exchange; later runs answer from the recordings. "
) * 24


def _text_short() -> Scenario:
    name = "text_short"
    events = [
        {"type": "message_start", "message": message(name, usage(14), model=HAIKU)},
        PING,
        *text_block(0, "Hello! How can I help you today?", 12),
        message_delta("end_turn", 12),
        STOP,
    ]
    return stream_scenario(name, "short text", ask("Say hello.", model=HAIKU, max_tokens=256), events)


def _text_long() -> Scenario:
    name = "text_long"
    head, tail = LONG_TEXT[: len(LONG_TEXT) // 2], LONG_TEXT[len(LONG_TEXT) // 2 :]
    first = text_block(0, head, 37, stop=False)
    rest = [block_delta(0, type="text_delta", text=piece) for piece in chunks(tail, 41)]
    events = [
        {"type": "message_start", "message": message(name, usage(22))},
        PING,
        *first,
        PING,
        *rest,
        block_stop(0),
        message_delta("end_turn", 1032),
        STOP,
    ]
    return stream_scenario(
        name,
        "long text, many deltas, a ping mid-block",
        ask("Explain record and replay testing at length."),
        events,
    )


def _text_json() -> Scenario:
    name = "text_json"
    body = message(name, usage(17, output_tokens=9))
    body.update(
        content=[{"type": "text", "text": "Paris is the capital of France."}],
        stop_reason="end_turn",
    )
    return Scenario(
        name=name,
        covers="non-streaming text (JSON Message)",
        method="POST",
        path="/v1/messages",
        request=ask("What is the capital of France? One sentence.", max_tokens=128),
        status=200,
        headers=response_headers(name, JSON_TYPE),
        body=json.dumps(body).encode(),
    )


def _multi_tool() -> Scenario:
    name = "multi_tool"
    events = [
        {"type": "message_start", "message": message(name, usage(5, cache_read=14_210))},
        PING,
        *text_block(0, "I'll look at the config, search for its uses and list the tests."),
        *tool_block(1, fake_id("toolu_", name + "/1"), "Read", {"file_path": "/home/dev/shop/config.py"}),
        *tool_block(
            2,
            fake_id("toolu_", name + "/2"),
            "Grep",
            {"pattern": "load_config", "output_mode": "files_with_matches"},
        ),
        *tool_block(3, fake_id("toolu_", name + "/3"), "Glob", {"pattern": "tests/**/test_*.py"}),
        message_delta("tool_use", 188),
        STOP,
    ]
    request = ask("How is the config loaded, and which tests cover it?", tools=CLAUDE_CODE_TOOLS)
    return stream_scenario(
        name, "several tool calls in one turn", request, events, expect=tool_turn("Read", "Grep", "Glob")
    )


HISTORY_TOOL = fake_id("toolu_", "history/bash")


def _tool_error() -> Scenario:
    name = "tool_error"
    request = ask("Run the tests.", tools=CLAUDE_CODE_TOOLS)
    request["messages"] = [
        {"role": "user", "content": "Run the tests."},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "I'll run the test suite."},
                {"type": "tool_use", "id": HISTORY_TOOL, "name": "Bash", "input": {"command": "pytest -q"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": HISTORY_TOOL,
                    "is_error": True,
                    "content": "Exit code 127\n/bin/bash: line 1: pytest: command not found",
                }
            ],
        },
    ]
    events = [
        {"type": "message_start", "message": message(name, usage(48, cache_read=14_522))},
        PING,
        *text_block(
            0, "pytest is not installed in this environment. I'll run it through the project's virtualenv."
        ),
        *tool_block(
            1,
            fake_id("toolu_", name),
            "Bash",
            {"command": ".venv/bin/python -m pytest -q", "description": "Run tests in the venv"},
        ),
        message_delta("tool_use", 97),
        STOP,
    ]
    return stream_scenario(
        name, "a turn after a failed tool (tool_result is_error)", request, events, expect=tool_turn("Bash")
    )


def _multi_turn() -> Scenario:
    name = "multi_turn"
    read_id = fake_id("toolu_", "history/read")
    request = ask("What does main.py do?", tools=CLAUDE_CODE_TOOLS)
    request["messages"] = [
        {"role": "user", "content": "What does main.py do?"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": read_id,
                    "name": "Read",
                    "input": {"file_path": "/home/dev/shop/main.py"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": read_id,
                    "content": [
                        {
                            "type": "text",
                            "text": "     1\timport shop\n     2\t\n     3\tshop.serve(port=8080)\n",
                        }
                    ],
                }
            ],
        },
    ]
    events = [
        {"type": "message_start", "message": message(name, usage(61, cache_read=14_480))},
        PING,
        *text_block(0, "`main.py` imports the `shop` package and starts its server on port 8080.", 20),
        message_delta("end_turn", 24),
        STOP,
    ]
    return stream_scenario(name, "multi-turn: a tool_result answered with text", request, events)


def _thinking() -> Scenario:
    name = "thinking"
    thought = "The user asks for 17 * 23. 17 * 20 = 340 and 17 * 3 = 51, so the product is 391."
    events = [
        {"type": "message_start", "message": message(name, usage(46))},
        PING,
        *thinking_block(0, thought, fake_signature(name)),
        *text_block(1, "17 × 23 = 391."),
        message_delta("end_turn", 88),
        STOP,
    ]
    request = ask("What is 17 * 23?", thinking={"type": "enabled", "budget_tokens": 2048})
    expect = Expect(stop_reasons=frozenset({"end_turn"}), thinking=True, text=True)
    return stream_scenario(name, "extended thinking with its signature", request, events, expect=expect)


def _thinking_redacted() -> Scenario:
    name = "thinking_redacted"
    events = [
        {"type": "message_start", "message": message(name, usage(52))},
        PING,
        *thinking_block(0, "Let me plan the migration step by step.", fake_signature(name)),
        block_start(1, {"type": "redacted_thinking", "data": fake_signature(name + "/redacted", 400)}),
        block_stop(1),
        *text_block(2, "First back up the database, then run the migration in a transaction."),
        message_delta("end_turn", 140),
        STOP,
    ]
    request = ask(
        "How should I migrate the orders table?", thinking={"type": "enabled", "budget_tokens": 2048}
    )
    expect = Expect(stop_reasons=frozenset({"end_turn"}), thinking=True, text=True)
    return stream_scenario(name, "thinking plus a redacted_thinking block", request, events, expect=expect)


def _max_tokens_tool() -> Scenario:
    """The SDK fixture incomplete_partial_json_response: the tool block is never stopped, its JSON cut."""
    name = "max_tokens_tool"
    events = [
        {"type": "message_start", "message": message(name, usage(9, cache_read=14_210))},
        PING,
        *text_block(0, "I'll write the module."),
        *tool_block(
            1,
            fake_id("toolu_", name),
            "Write",
            '{"file_path": "/home/dev/shop/report.py", "content": "import csv\\n\\ndef report(rows):\\n    for row in',
            stop=False,
        ),
        message_delta("max_tokens", 64),
        STOP,
    ]
    request = ask("Write report.py that prints the orders as CSV.", tools=CLAUDE_CODE_TOOLS, max_tokens=64)
    return stream_scenario(
        name,
        "max_tokens cut in the middle of tool input",
        request,
        events,
        lint_warnings=frozenset({"S7", "B4"}),
        expect=Expect(stop_reasons=frozenset({"max_tokens"})),
    )


def _stop_sequence() -> Scenario:
    name = "stop_sequence"
    events = [
        {"type": "message_start", "message": message(name, usage(25))},
        PING,
        *text_block(0, "1. Apples\n2. Pears\n", 8),
        message_delta("stop_sequence", 11, stop_sequence="3."),
        STOP,
    ]
    request = ask("List three fruits, numbered.", stop_sequences=["3."], max_tokens=200)
    expect = Expect(stop_reasons=frozenset({"stop_sequence"}), text=True)
    return stream_scenario(name, "stop_sequence with the sequence that matched", request, events, expect=expect)


def _refusal() -> Scenario:
    """SDK refusal fixture shape: an empty text block without deltas, stop_details, no ping."""
    name = "refusal"
    details = {"type": "refusal", "category": "cyber", "explanation": "This request was declined."}
    events = [
        {"type": "message_start", "message": message(name, usage(31))},
        block_start(0, {"type": "text", "text": ""}),
        block_stop(0),
        message_delta("refusal", 120, stop_details=details, output_tokens_details={"thinking_tokens": 67}),
        STOP,
    ]
    return stream_scenario(
        name,
        "refusal with stop_details",
        ask("Write ransomware that encrypts a hospital network."),
        events,
        expect=Expect(stop_reasons=frozenset({"refusal"})),
    )


def _overloaded() -> Scenario:
    name = "overloaded"
    events = [
        {"type": "message_start", "message": message(name, usage(19))},
        PING,
        block_start(0, {"type": "text", "text": ""}),
        block_delta(0, type="text_delta", text="Here is"),
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    ]
    return stream_scenario(
        name,
        "error event after a 200 (overloaded)",
        ask("Summarise the changelog."),
        events,
        expect=Expect(answer="any"),
    )


def _rate_limited() -> Scenario:
    name = "rate_limited"
    headers = response_headers(name, JSON_TYPE, **{"retry-after": "17", "x-should-retry": "true"})
    body = {
        "type": "error",
        "error": {
            "type": "rate_limit_error",
            "message": "Number of request tokens has exceeded your per-minute rate limit",
        },
        "request_id": dict(headers)["request-id"],
    }
    return Scenario(
        name=name,
        covers="HTTP 429 with retry-after (recorded with --record-errors)",
        method="POST",
        path="/v1/messages",
        request={**ask("Refactor the whole repository."), "stream": True},
        status=429,
        headers=headers,
        body=json.dumps(body).encode(),
        expect=Expect(answer="any"),
    )


def _web_search() -> Scenario:
    """The docs web-search shape: server_tool_use, a result block without deltas, cited text."""
    name = "web_search"
    server_id = fake_id("srvtoolu_", name)
    result = {
        "type": "web_search_tool_result",
        "tool_use_id": server_id,
        "content": [
            {
                "type": "web_search_result",
                "title": "Python 3.14 released",
                "url": "https://www.python.org/downloads/release/python-3140/",
                "encrypted_content": fake_signature(name + "/content", 320),
                "page_age": "October 7, 2025",
            }
        ],
    }
    citation = {
        "type": "web_search_result_location",
        "url": "https://www.python.org/downloads/release/python-3140/",
        "title": "Python 3.14 released",
        "encrypted_index": fake_signature(name + "/index", 80),
        "cited_text": "Python 3.14.0 is the newest major release of the Python programming language.",
    }
    events = [
        {"type": "message_start", "message": message(name, usage(2679))},
        PING,
        *text_block(0, "I'll search for the latest Python release."),
        *tool_block(1, server_id, "web_search", {"query": "latest Python release"}, kind="server_tool_use"),
        block_start(2, result),
        block_stop(2),
        block_start(3, {"type": "text", "text": ""}),
        block_delta(3, type="citations_delta", citation=citation),
        block_delta(3, type="text_delta", text="The latest release is Python 3.14."),
        block_stop(3),
        message_delta("end_turn", 510, input_tokens=10682, server_tool_use={"web_search_requests": 1}),
        STOP,
    ]
    request = ask("What is the latest Python release?", tools=[WEB_SEARCH_TOOL])
    expect = Expect(tools=("web_search",), text=True)
    return stream_scenario(
        name, "server tool use (web search) with its result block", request, events, expect=expect
    )


def _citations() -> Scenario:
    name = "citations"
    document = {
        "type": "document",
        "source": {
            "type": "text",
            "media_type": "text/plain",
            "data": "The grass is green. The sky is blue.",
        },
        "title": "Colours",
        "citations": {"enabled": True},
    }
    citation = {
        "type": "char_location",
        "cited_text": "The grass is green. ",
        "document_index": 0,
        "document_title": "Colours",
        "start_char_index": 0,
        "end_char_index": 20,
    }
    events = [
        {"type": "message_start", "message": message(name, usage(610))},
        PING,
        *text_block(0, "According to the document, "),
        block_start(1, {"type": "text", "text": ""}),
        block_delta(1, type="citations_delta", citation=citation),
        block_delta(1, type="text_delta", text="the grass is green"),
        block_stop(1),
        *text_block(2, "."),
        message_delta("end_turn", 27),
        STOP,
    ]
    request = ask("x")
    request["messages"] = [
        {"role": "user", "content": [document, {"type": "text", "text": "What colour is the grass?"}]}
    ]
    return stream_scenario(name, "document citations (citations_delta)", request, events)


def _claude_code_beta() -> Scenario:
    """What Claude Code really sends: ?beta=true, its betas, metadata with a session id."""
    name = "claude_code_beta"
    request = ask("Summarise this project in one line.", tools=CLAUDE_CODE_TOOLS, max_tokens=32000)
    request["system"] = LARGE_SYSTEM
    request["metadata"] = {
        "user_id": "user_9f2c4e1ab7d3_account__session_5b1d1c0e-7a1e-4a53-9d5e-2f4b8c6a9e10"
    }
    events = [
        {"type": "message_start", "message": message(name, usage(4, cache_read=14_880, cache_creation=35))},
        PING,
        *text_block(0, "A small web shop: a `shop` package served by `main.py`, with pytest tests.", 18),
        message_delta(
            "end_turn", 23, input_tokens=4, cache_creation_input_tokens=35, cache_read_input_tokens=14_880
        ),
        STOP,
    ]
    return stream_scenario(
        name,
        "Claude Code's own request: ?beta=true, anthropic-beta, metadata.user_id",
        request,
        events,
        path="/v1/messages?beta=true",
        request_headers=(("anthropic-beta", CLAUDE_CODE_BETAS),),
    )


def _count_tokens() -> Scenario:
    name = "count_tokens"
    request = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "How many tokens is this?"}],
        "tools": CLAUDE_CODE_TOOLS[:2],
    }
    return Scenario(
        name=name,
        covers="count_tokens",
        method="POST",
        path="/v1/messages/count_tokens",
        request=request,
        status=200,
        headers=response_headers(name, JSON_TYPE),
        body=json.dumps({"input_tokens": 1187}).encode(),
        expect=Expect(answer="count"),
    )


def _models() -> Scenario:
    name = "models"
    data = [
        {
            "type": "model",
            "id": MODEL,
            "display_name": "Claude Opus 4.5",
            "created_at": "2025-11-24T00:00:00Z",
        },
        {
            "type": "model",
            "id": "claude-sonnet-4-5-20250929",
            "display_name": "Claude Sonnet 4.5",
            "created_at": "2025-09-29T00:00:00Z",
        },
        {
            "type": "model",
            "id": HAIKU,
            "display_name": "Claude Haiku 4.5",
            "created_at": "2025-10-15T00:00:00Z",
        },
    ]
    body = {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
    return Scenario(
        name=name,
        covers="models list",
        method="GET",
        path="/v1/models",
        request=None,
        status=200,
        headers=response_headers(name, JSON_TYPE),
        body=json.dumps(body).encode(),
        expect=Expect(answer="models"),
    )


def _tool_task() -> Scenario:
    return tool_scenario(
        "tool_task",
        "Task",
        "Find every caller of the checkout API across the repository.",
        "I'll hand this search to an agent.",
        {
            "description": "Find checkout API callers",
            "prompt": "List every file that calls shop.checkout, with line numbers.",
            "subagent_type": "general-purpose",
        },
        129,
    )


def _tool_json() -> Scenario:
    """The non-streaming form of a tool turn: a whole Message with a text and a tool_use block."""
    name = "tool_json"
    tool_input = {"command": "ls -la", "description": "List files"}
    body = message(name, usage(3, output_tokens=61, cache_read=14_210, cache_creation=312))
    body.update(
        content=[
            {"type": "text", "text": "I'll list the files."},
            {"type": "tool_use", "id": fake_id("toolu_", name), "name": "Bash", "input": tool_input},
        ],
        stop_reason="tool_use",
    )
    return Scenario(
        name=name,
        covers="non-streaming tool_use (JSON Message)",
        method="POST",
        path="/v1/messages",
        request=ask("Which files are in this directory?", tools=CLAUDE_CODE_TOOLS),
        status=200,
        headers=response_headers(name, JSON_TYPE),
        body=json.dumps(body).encode(),
        expect=tool_turn("Bash"),
    )


def _tool_choice_forced() -> Scenario:
    """tool_choice names a tool: the answer must call it (the API prefills it, so no text comes first)."""
    name = "tool_choice_forced"
    events = [
        {"type": "message_start", "message": message(name, usage(1_912))},
        PING,
        *tool_block(0, fake_id("toolu_", name), "Read", {"file_path": "/home/dev/shop/pyproject.toml"}),
        message_delta("tool_use", 41),
        STOP,
    ]
    request = ask(
        "Which Python version does this project need?",
        tools=CLAUDE_CODE_TOOLS,
        tool_choice={"type": "tool", "name": "Read"},
    )
    expect = Expect(stop_reasons=frozenset({"tool_use"}), tools=("Read",), forced_tool="Read")
    return stream_scenario(name, "tool_choice forcing one tool", request, events, expect=expect)


PIXEL_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
"""A 1x1 PNG, base64: the smallest image block the API accepts."""


def _image_input() -> Scenario:
    name = "image_input"
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL_PNG}}
    events = [
        {"type": "message_start", "message": message(name, usage(19))},
        PING,
        *text_block(0, "The image is a single pixel."),
        message_delta("end_turn", 9),
        STOP,
    ]
    request = ask("x", max_tokens=256)
    request["messages"] = [
        {"role": "user", "content": [image, {"type": "text", "text": "Describe this image in one line."}]}
    ]
    return stream_scenario(name, "an image input (base64 PNG)", request, events)


def _max_tokens_text() -> Scenario:
    name = "max_tokens_text"
    events = [
        {"type": "message_start", "message": message(name, usage(18))},
        PING,
        *text_block(0, "Record and replay testing keeps a suite fast, free and", 10),
        message_delta("max_tokens", 12),
        STOP,
    ]
    request = ask("Explain record and replay testing in detail.", max_tokens=12)
    expect = Expect(stop_reasons=frozenset({"max_tokens"}), text=True)
    return stream_scenario(name, "max_tokens reached in text", request, events, expect=expect)


def _invalid_request() -> Scenario:
    """No messages at all: the API answers 400 invalid_request_error, and so must any gateway."""
    name = "invalid_request"
    headers = response_headers(name, JSON_TYPE)
    error = {"type": "invalid_request_error", "message": "messages: at least one message is required"}
    body = {"type": "error", "error": error, "request_id": dict(headers)["request-id"]}
    return Scenario(
        name=name,
        covers="an invalid request (no messages): a 4xx Anthropic error body",
        method="POST",
        path="/v1/messages",
        request={"model": MODEL, "max_tokens": 64, "messages": []},
        status=400,
        headers=headers,
        body=json.dumps(body).encode(),
        expect=Expect(answer="client_error"),
    )


def json_form(scenario: Scenario, name: str) -> Scenario:
    """The non-streaming form of a streamed scenario: the same request without `stream` (and with a stop
    sequence that never matches, so a record/replay proxy does not take it for the streamed one), answered
    with the Message its stream folds into (as the API answers it)."""
    request = {key: value for key, value in (scenario.request or {}).items() if key != "stream"}
    request["stop_sequences"] = [f"<<{name}: end>>"]
    folded = MessageFold().feed(scenario.events).finish()
    folded["id"] = fake_id("msg_", name)
    return Scenario(
        name=name,
        covers=f"{scenario.covers} (non-streaming)",
        method=scenario.method,
        path=scenario.path,
        request=request,
        status=scenario.status,
        headers=response_headers(name, JSON_TYPE),
        body=json.dumps(folded).encode(),
        request_headers=scenario.request_headers,
        expect=scenario.expect,
    )


def _tool_scenarios() -> list[Scenario]:
    return [
        tool_scenario(
            "tool_read",
            "Read",
            "Show me the README.",
            "I'll read the README.",
            {"file_path": "/home/dev/shop/README.md"},
            71,
        ),
        tool_scenario(
            "tool_write",
            "Write",
            "Create a .gitignore for Python.",
            "I'll create the file.",
            {"file_path": "/home/dev/shop/.gitignore", "content": "__pycache__/\n*.pyc\n.venv/\n"},
            93,
        ),
        tool_scenario(
            "tool_edit",
            "Edit",
            "Change the port to 9090.",
            "I'll update the port.",
            {
                "file_path": "/home/dev/shop/main.py",
                "old_string": "shop.serve(port=8080)",
                "new_string": "shop.serve(port=9090)",
            },
            112,
        ),
        tool_scenario(
            "tool_bash",
            "Bash",
            "What changed since the last commit?",
            "I'll check git.",
            {"command": "git status --short && git diff --stat", "description": "Show working tree changes"},
            84,
        ),
        tool_scenario(
            "tool_grep",
            "Grep",
            "Where is TODO used?",
            "I'll search for TODOs.",
            {"pattern": "TODO", "path": "/home/dev/shop", "output_mode": "content", "-n": True},
            80,
        ),
        tool_scenario(
            "tool_glob",
            "Glob",
            "Which YAML files are there?",
            "I'll list them.",
            {"pattern": "**/*.{yml,yaml}"},
            66,
        ),
        tool_scenario(
            "tool_todowrite",
            "TodoWrite",
            "Plan the refactoring of the checkout.",
            "I'll plan it as a list.",
            {
                "todos": [
                    {
                        "content": "Extract the price calculation",
                        "status": "in_progress",
                        "activeForm": "Extracting the price calculation",
                    },
                    {
                        "content": "Add tests for discounts",
                        "status": "pending",
                        "activeForm": "Adding tests for discounts",
                    },
                ]
            },
            150,
        ),
        tool_scenario(
            "tool_webfetch",
            "WebFetch",
            "What does the aiohttp changelog say about 3.13?",
            "I'll fetch the changelog.",
            {"url": "https://docs.aiohttp.org/en/stable/changes.html", "prompt": "What changed in 3.13?"},
            77,
        ),
    ]


def build_scenarios() -> list[Scenario]:
    """Every scenario, in a stable order."""
    return [
        _text_short(),
        _text_long(),
        _text_json(),
        *_tool_scenarios(),
        _tool_task(),
        _tool_json(),
        _tool_choice_forced(),
        _multi_tool(),
        json_form(_multi_tool(), "multi_tool_json"),
        _tool_error(),
        _multi_turn(),
        _thinking(),
        json_form(_thinking(), "thinking_json"),
        _thinking_redacted(),
        _max_tokens_tool(),
        _max_tokens_text(),
        _stop_sequence(),
        _refusal(),
        _overloaded(),
        _rate_limited(),
        _web_search(),
        _citations(),
        _image_input(),
        _claude_code_beta(),
        _count_tokens(),
        _models(),
        _invalid_request(),
    ]


SCENARIOS: list[Scenario] = build_scenarios()
BY_NAME: dict[str, Scenario] = {scenario.name: scenario for scenario in SCENARIOS}
