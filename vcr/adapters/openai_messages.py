"""Anthropic Messages <-> OpenAI Chat Completions, the parts that need no network: pure functions over JSON.

Requests go one way (Anthropic body -> Chat Completions body), answers the other (a completion -> a Message,
an upstream error -> an Anthropic error). The stream translator lives in `openai_stream`; the HTTP side, pings
and the local endpoints in `openai`. Every rule here is stated in the docstring of the function that applies
it, so the mapping tables in `vcr/adapters/openai.py` stay true to the code.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import math
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from .. import protocol

log = logging.getLogger("claude_vcr.adapters.openai")

_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]+$")
"""The pattern the Anthropic API accepts for tool_use ids."""
TOOL_ID_PREFIX = "toolu_"
GENERATED_TOOL_PREFIX = TOOL_ID_PREFIX + "vcr"
SIGNATURE_PREFIX = "openai-reasoning:"
"""Thinking blocks made from upstream reasoning carry `openai-reasoning:<sha256 of the text, 32 hex>`."""
MEDIA_TOKENS = 1600
"""count_tokens' estimate for one image or document (Anthropic's cost of a ~1.15 megapixel image)."""
MESSAGE_TOKENS = 3
"""count_tokens' overhead per message (role and turn markers)."""
MODEL_CREATED_AT = "1970-01-01T00:00:00Z"
"""`created_at` of the models the adapter lists: fixed, so the listing records and replays identically."""

STOP_REASONS = {
    "stop": "end_turn",
    "end_turn": "end_turn",
    "length": "max_tokens",
    "max_tokens": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "tool_use": "tool_use",
    "content_filter": "refusal",
}
"""OpenAI finish_reason -> Anthropic stop_reason (`error` is not here: it becomes an error event)."""

STATUS_ERROR_TYPES = {
    **protocol.STATUS_ERROR_TYPES,
    408: "timeout_error",
    422: "invalid_request_error",
    502: "api_error",
    503: "overloaded_error",
}
"""Upstream HTTP status -> Anthropic error type: the pairs the docs state, and the statuses they leave open
that OpenAI-compatible servers send; other 4xx are invalid_request_error, other 5xx api_error."""

ERROR_CODES = {
    "rate_limit_exceeded": "rate_limit_error",
    "insufficient_quota": "billing_error",
    "invalid_api_key": "authentication_error",
    "context_length_exceeded": "invalid_request_error",
    "invalid_request_error": "invalid_request_error",
    "model_not_found": "not_found_error",
    "server_error": "api_error",
    "overloaded": "overloaded_error",
    "timeout": "timeout_error",
}
"""OpenAI error `code`/`type` strings (mid-stream errors carry no status) -> Anthropic error type."""


class RequestError(ValueError):
    """The client's request cannot be translated; answered as a 400 invalid_request_error."""


class ToolArgumentsError(ValueError):
    """The upstream's tool call arguments are not a JSON object (never passed on as an empty `{}`)."""

    def __init__(self, name: str, tool_id: str, arguments: str) -> None:
        self.name, self.tool_id, self.arguments = name, tool_id, arguments
        excerpt = arguments if len(arguments) <= 200 else arguments[:100] + " ... " + arguments[-80:]
        super().__init__(
            f"the upstream sent tool call {name} ({tool_id}) with arguments that are not a JSON object: "
            f"{excerpt!r}"
        )


def parse_arguments(name: str, tool_id: str, arguments: Any) -> dict[str, Any]:
    """A tool call's arguments as an object: blank means no arguments; anything else must parse to one."""
    if isinstance(arguments, dict):
        return arguments
    text = arguments if isinstance(arguments, str) else ""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ToolArgumentsError(name, tool_id, text)
    return value


# ----------------------------------------------------------------------------------------------------------
# Ids, models, usage, stop reasons


def anthropic_tool_id(upstream_id: Any, seed: str) -> str:
    """`toolu_` + the upstream's id when it fits Anthropic's pattern, so it maps back with no state.

    Ids that do not fit (missing, other characters, too long) become `toolu_vcr` + 24 hex digits of a hash of
    the id or, without one, of `seed` (the completion id and the call's position): deterministic either way.
    """
    if isinstance(upstream_id, str) and _SAFE_ID.match(upstream_id) and len(upstream_id) <= 58:
        return TOOL_ID_PREFIX + upstream_id
    source = upstream_id if isinstance(upstream_id, str) and upstream_id else seed
    return GENERATED_TOOL_PREFIX + hashlib.sha256(source.encode()).hexdigest()[:24]


def upstream_tool_id(anthropic_id: Any) -> str:
    """The id sent upstream for a client tool_use/tool_result id: `toolu_X` -> `X`, the inverse of above."""
    if not isinstance(anthropic_id, str) or not anthropic_id:
        raise RequestError("a tool_use or tool_result block has no id")
    if anthropic_id.startswith(TOOL_ID_PREFIX) and len(anthropic_id) > len(TOOL_ID_PREFIX):
        return anthropic_id[len(TOOL_ID_PREFIX) :]
    return anthropic_id


_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""What OpenAI accepts as a function name (Claude Code's MCP tool names can be longer)."""


def upstream_tool_name(name: str) -> str:
    """A tool name as the upstream may take it: unchanged when it fits, else its first 55 fitting characters,
    `_` and 8 hex of its hash (deterministic, so answers map back by the request's own tool list)."""
    if _FUNCTION_NAME.match(name):
        return name
    kept = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:55]
    return f"{kept}_{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def tool_names(body: Mapping[str, Any]) -> dict[str, str]:
    """Upstream name -> client name for every tool the request declares whose name had to change."""
    names: dict[str, str] = {}
    for tool in body.get("tools") or []:
        name = tool.get("name") if isinstance(tool, dict) else None
        if isinstance(name, str) and upstream_tool_name(name) != name:
            names[upstream_tool_name(name)] = name
    return names


def message_id(upstream_id: Any = None) -> str:
    """`msg_` + the upstream's completion id when it is a plain token, else a random one."""
    if isinstance(upstream_id, str) and _SAFE_ID.match(upstream_id) and len(upstream_id) <= 80:
        return "msg_" + upstream_id
    return "msg_vcr" + uuid.uuid4().hex[:24]


def reasoning_signature(thinking: str) -> str:
    """The signature of a thinking block made from upstream reasoning: a marker, never valid at Anthropic."""
    return SIGNATURE_PREFIX + hashlib.sha256(thinking.encode()).hexdigest()[:32]


def map_model(model: str, model_map: Iterable[tuple[str, str]]) -> str:
    """The upstream model for a client model: the first glob that matches (case-sensitive), else as named."""
    for pattern, target in model_map:
        if fnmatch.fnmatchcase(model, pattern):
            return target
    return model


def anthropic_usage(usage: Mapping[str, Any]) -> dict[str, int]:
    """OpenAI usage -> Anthropic: cached prompt tokens as cache reads, input_tokens net of all cache tokens."""

    def number(value: Any) -> int:
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    details = usage.get("prompt_tokens_details") or {}
    details = details if isinstance(details, dict) else {}
    cached = number(details.get("cached_tokens")) or number(usage.get("prompt_cache_hit_tokens"))
    written = number(details.get("cache_write_tokens")) or number(details.get("cache_creation_tokens"))
    prompt = number(usage.get("prompt_tokens"))
    return {
        "input_tokens": max(prompt - cached - written, 0),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
        "output_tokens": number(usage.get("completion_tokens")),
    }


def stop_reason(
    finish_reason: Any,
    *,
    tool_calls: bool,
    refused: bool = False,
    matched: Any = None,
    stop_sequences: Iterable[str] = (),
) -> tuple[str, str | None]:
    """(stop_reason, stop_sequence) for an upstream finish_reason; see STOP_REASONS.

    A vLLM-style `stop_reason` naming one of the request's stop sequences gives `stop_sequence`; tool calls
    under any non-truncating reason give `tool_use` (some servers say `stop`), and `tool_calls` without any
    gives end_turn; a refusal gives `refusal`; an unknown or missing reason gives end_turn, logged.
    """
    mapped = STOP_REASONS.get(finish_reason) if isinstance(finish_reason, str) else None
    if mapped is None:
        log.warning("upstream finish_reason %r is not known; answering end_turn", finish_reason)
        mapped = "end_turn"
    if mapped == "max_tokens":
        return mapped, None
    if tool_calls:
        return "tool_use", None
    if mapped == "tool_use":
        log.warning("upstream finish_reason %r came with no tool call; answering end_turn", finish_reason)
        mapped = "end_turn"
    if refused:
        return "refusal", None
    if mapped == "end_turn" and isinstance(matched, str) and matched in set(stop_sequences):
        return "stop_sequence", matched
    return mapped, None


def error_type(status: int) -> str:
    """The Anthropic error type for an HTTP status; see STATUS_ERROR_TYPES."""
    if status in STATUS_ERROR_TYPES:
        return STATUS_ERROR_TYPES[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


def error_type_for(error: Mapping[str, Any], default: str = "api_error") -> str:
    """The Anthropic error type of an error object carried in a 200 stream (OpenRouter puts a status in
    `code`; OpenAI a string code)."""
    code = error.get("code")
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code < 600:
        return error_type(code)
    for value in (code, error.get("type")):
        if isinstance(value, str) and value in ERROR_CODES:
            return ERROR_CODES[value]
    return default


def error_message(body: bytes | str | Any) -> str:
    """The human part of an upstream error body: OpenAI `error.message`, FastAPI `detail`, or the text."""
    payload = body
    if isinstance(body, (bytes, str)):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        try:
            payload = json.loads(text)
        except ValueError:
            return text.strip()[:1000] or "(empty body)"
    if isinstance(payload, dict):
        error = payload.get("error")
        candidates = [error.get("message") if isinstance(error, dict) else error]
        candidates += [payload.get("message"), payload.get("detail")]
        for value in candidates:
            if isinstance(value, str) and value:
                return value
    return json.dumps(payload, ensure_ascii=False)[:1000]


# ----------------------------------------------------------------------------------------------------------
# Requests: Anthropic -> Chat Completions


def _text_of(content: Any, joiner: str = "\n\n") -> str:
    """The text of a string or of a list of blocks (non-text blocks left out)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return joiner.join(
            block.get("text", "")
            for block in content
            if isinstance(block, dict) and block.get("type") == "text"
        )
    return ""


def _media_part(block: Mapping[str, Any]) -> dict[str, Any]:
    """An image or document block as a Chat Completions content part (data: URLs for base64 sources; a PDF
    by URL goes as `file_data`, which OpenRouter accepts and OpenAI refuses with a 400 the client sees)."""
    source = block.get("source") if isinstance(block.get("source"), dict) else {}
    kind = source.get("type")
    if block.get("type") == "image":
        if kind == "base64":
            url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
        elif kind == "url":
            url = source.get("url", "")
        else:
            raise RequestError(f"image source type {kind!r} cannot be sent to an OpenAI-compatible upstream")
        return {"type": "image_url", "image_url": {"url": url}}
    if kind == "text":
        return {"type": "text", "text": source.get("data", "")}
    if kind == "base64":
        data_url = f"data:{source.get('media_type', 'application/pdf')};base64,{source.get('data', '')}"
        return {
            "type": "file",
            "file": {"filename": block.get("title") or "document.pdf", "file_data": data_url},
        }
    if kind == "url":
        return {"type": "file", "file": {"file_data": source.get("url", "")}}
    raise RequestError(f"document source type {kind!r} cannot be sent to an OpenAI-compatible upstream")


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """User content: one string when every part is text (what every server accepts), else the parts."""
    if all(part["type"] == "text" for part in parts):
        return "\n\n".join(part["text"] for part in parts)
    return parts


def _user_messages(blocks: list[Any]) -> list[dict[str, Any]]:
    """A user turn: each tool_result becomes a `tool` message (first, as OpenAI requires them right after the
    assistant's tool_calls), the rest one user message. Error results are marked `Error: `; images inside a
    tool result follow in the user message, introduced by a line naming the call."""
    tools: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in blocks:
        if not isinstance(block, dict):
            raise RequestError("a content block is not an object")
        kind = block.get("type")
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind in ("image", "document"):
            parts.append(_media_part(block))
        elif kind == "tool_result":
            call_id = upstream_tool_id(block.get("tool_use_id"))
            content = block.get("content")
            text = _text_of(content)
            media = (
                [b for b in content if isinstance(b, dict) and b.get("type") in ("image", "document")]
                if isinstance(content, list)
                else []
            )
            if block.get("is_error"):
                text = f"Error: {text}" if text else "Error"
            tools.append({"role": "tool", "tool_call_id": call_id, "content": text})
            if media:
                parts.append({"type": "text", "text": f"(attachments of the result of tool call {call_id})"})
                parts.extend(map(_media_part, media))
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            log.warning("dropping a user %s block: it has no Chat Completions equivalent", kind)
    messages = tools
    if parts:
        messages.append({"role": "user", "content": _content(parts)})
    return messages


def _assistant_message(blocks: list[Any]) -> dict[str, Any]:
    """An assistant turn: text joined as it was generated, tool_use as tool_calls; thinking is dropped (an
    upstream cannot check it, and some reject reasoning sent back)."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in blocks:
        if not isinstance(block, dict):
            raise RequestError("a content block is not an object")
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use":
            arguments = json.dumps(block.get("input") or {}, ensure_ascii=False, separators=(",", ":"))
            calls.append(
                {
                    "id": upstream_tool_id(block.get("id")),
                    "type": "function",
                    "function": {"name": upstream_tool_name(block.get("name", "")), "arguments": arguments},
                }
            )
        elif kind not in ("thinking", "redacted_thinking"):
            log.warning("dropping an assistant %s block: it has no Chat Completions equivalent", kind)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """system (string or blocks) first, then each turn; a `system` role inside messages stays in place."""
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        messages.append({"role": "system", "content": _text_of(system)})
    turns = body.get("messages")
    if not isinstance(turns, list) or not turns:
        raise RequestError("messages: a non-empty list is required")
    for turn in turns:
        if not isinstance(turn, dict):
            raise RequestError("messages: each message must be an object")
        role, content = turn.get("role"), turn.get("content")
        if role == "system":
            messages.append({"role": "system", "content": _text_of(content)})
        elif role not in ("user", "assistant"):
            raise RequestError(f"messages: unknown role {role!r}")
        elif isinstance(content, str):
            messages.append({"role": role, "content": content})
        elif not isinstance(content, list):
            raise RequestError(f"messages: {role} content must be a string or a list of blocks")
        elif role == "user":
            messages.extend(_user_messages(content))
        else:
            messages.append(_assistant_message(content))
    return messages


def _tools(tools: Any) -> list[dict[str, Any]]:
    """Client tools as functions; server tools (web_search, bash_20250124, ...) have no equivalent: dropped,
    logged."""
    functions = []
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict):
            continue
        if tool.get("type") not in (None, "custom") or "input_schema" not in tool:
            log.warning(
                "dropping tool %r of type %r: an OpenAI upstream has no server tools",
                tool.get("name"),
                tool.get("type"),
            )
            continue
        function: dict[str, Any] = {
            "name": upstream_tool_name(tool.get("name", "")),
            "parameters": tool["input_schema"],
        }
        if tool.get("description"):
            function["description"] = tool["description"]
        if "strict" in tool:
            function["strict"] = tool["strict"]
        functions.append({"type": "function", "function": function})
    return functions


def _tool_choice(choice: Any) -> tuple[Any, bool | None]:
    """(tool_choice, parallel_tool_calls): auto -> auto, any -> required, tool -> that function, none -> none;
    disable_parallel_tool_use -> parallel_tool_calls false."""
    if not isinstance(choice, dict):
        return None, None
    kind = choice.get("type")
    parallel = False if choice.get("disable_parallel_tool_use") else None
    if kind == "auto":
        return "auto", parallel
    if kind == "any":
        return "required", parallel
    if kind == "none":
        return "none", None
    if kind == "tool":
        return {
            "type": "function",
            "function": {"name": upstream_tool_name(choice.get("name", ""))},
        }, parallel
    raise RequestError(f"tool_choice type {kind!r} is not known")


EFFORTS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}


def reasoning_effort(body: Mapping[str, Any]) -> str | None:
    """thinking -> OpenAI `reasoning_effort`: a budget under 4,096 tokens is low, under 16,384 medium, else
    high; adaptive thinking follows output_config.effort (high when unset, as the API's default)."""
    thinking = body.get("thinking")
    if not isinstance(thinking, dict):
        return None
    kind = thinking.get("type")
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        budget = budget if isinstance(budget, int) else 0
        return "low" if budget < 4096 else "medium" if budget < 16384 else "high"
    if kind == "adaptive":
        config = body.get("output_config")
        effort = config.get("effort") if isinstance(config, dict) else None
        return EFFORTS.get(effort, "high") if isinstance(effort, str) else "high"
    return None


def chat_request(
    body: Mapping[str, Any], model: str, *, stream: bool, reasoning: bool = True
) -> dict[str, Any]:
    """The Chat Completions request for an Anthropic Messages request (see the mapping table in `openai`)."""
    request: dict[str, Any] = {"model": model, "messages": _messages(body)}
    if isinstance(body.get("max_tokens"), int):
        request["max_tokens"] = body["max_tokens"]
    for key in ("temperature", "top_p", "top_k"):
        if body.get(key) is not None:
            request[key] = body[key]
    stops = body.get("stop_sequences")
    if isinstance(stops, list) and stops:
        request["stop"] = list(stops)
    tools = _tools(body.get("tools"))
    if tools:
        request["tools"] = tools
        choice, parallel = _tool_choice(body.get("tool_choice"))
        if choice is not None:
            request["tool_choice"] = choice
        if parallel is not None:
            request["parallel_tool_calls"] = parallel
    effort = reasoning_effort(body) if reasoning else None
    if effort:
        request["reasoning_effort"] = effort
    if stream:
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
    return request


# ----------------------------------------------------------------------------------------------------------
# count_tokens and models, answered locally


def text_tokens(text: str) -> float:
    """About four ASCII characters per token; any other character a token of its own."""
    ascii_chars = len(text.encode("ascii", "ignore"))
    return ascii_chars / 4 + (len(text) - ascii_chars)


def _tokens(value: Any) -> float:
    """Tokens of a JSON value: strings and keys by `text_tokens`, media blocks at MEDIA_TOKENS each."""
    if isinstance(value, str):
        return text_tokens(value)
    if isinstance(value, list):
        return sum(_tokens(item) for item in value)
    if isinstance(value, dict):
        if value.get("type") in ("image", "document") and isinstance(value.get("source"), dict):
            source = value["source"]
            return _tokens(source.get("data")) if source.get("type") == "text" else MEDIA_TOKENS
        return sum(
            text_tokens(key) + _tokens(item)
            for key, item in value.items()
            if key not in ("type", "cache_control", "id", "tool_use_id", "signature")
        )
    return 0 if value is None else 1


def estimate_input_tokens(body: Mapping[str, Any]) -> int:
    """count_tokens' documented estimate: about 4 ASCII characters per token (1 token per other character)
    over the system prompt, every message (text, tool calls and results) and the tool definitions (names,
    descriptions and schemas), 1,600 per image or document and 3 per message; at least 1."""
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    total = _tokens(body.get("system")) + _tokens(messages) + _tokens(body.get("tools"))
    return max(1, math.ceil(total + MESSAGE_TOKENS * len(messages)))


def model_info(model_id: str, display_name: str) -> dict[str, Any]:
    """One ModelInfo as the Anthropic API lists it."""
    return {"type": "model", "id": model_id, "display_name": display_name, "created_at": MODEL_CREATED_AT}


def mapped_models(model_map: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """The models a client can name: each literal (wildcard-free) pattern, then each upstream model."""
    pairs = list(model_map)
    models: dict[str, dict[str, Any]] = {}
    for pattern, target in pairs:
        if not any(char in pattern for char in "*?["):
            models.setdefault(pattern, model_info(pattern, f"{pattern} (as {target})"))
    for _, target in pairs:
        models.setdefault(target, model_info(target, target))
    return list(models.values())


def models_page(model_map: Iterable[tuple[str, str]], query: Mapping[str, str]) -> dict[str, Any]:
    """`GET /v1/models`: the mapped models with the API's paging (limit 1-1000, default 20; after_id,
    before_id)."""
    models = mapped_models(model_map)
    ids = [model["id"] for model in models]
    try:
        limit = min(max(int(query.get("limit", 20)), 1), 1000)
    except ValueError as error:
        raise RequestError(f"limit: {query.get('limit')!r} is not an integer") from error
    start, end = 0, len(models)
    if query.get("after_id") in ids:
        start = ids.index(query["after_id"]) + 1
    if query.get("before_id") in ids:
        end = ids.index(query["before_id"])
        if "after_id" not in query:
            start = max(0, end - limit)
    page = models[start:end][:limit]
    backwards = query.get("before_id") in ids and "after_id" not in query
    return {
        "data": page,
        "has_more": start > 0 if backwards else start + len(page) < end,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
    }


def model_by_id(model_map: Iterable[tuple[str, str]], model_id: str) -> dict[str, Any] | None:
    """`GET /v1/models/{id}`: a listed model, or any name a pattern maps; None for the rest (a 404)."""
    pairs = list(model_map)
    for model in mapped_models(pairs):
        if model["id"] == model_id:
            return model
    for pattern, target in pairs:
        if fnmatch.fnmatchcase(model_id, pattern):
            return model_info(model_id, f"{model_id} (as {target})")
    return None


# ----------------------------------------------------------------------------------------------------------
# Non-streaming answers: a completion -> a Message


def content_text(content: Any) -> str:
    """A message's or delta's `content`: a string, or a list of text parts (some servers)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def reasoning_text(holder: Mapping[str, Any]) -> str:
    """Reasoning of a message or delta: `reasoning_content` (DeepSeek, vLLM) or `reasoning` (OpenRouter,
    Ollama, newer vLLM), never both, so a server that sends both is not doubled."""
    for key in ("reasoning_content", "reasoning"):
        value = holder.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def message_from_completion(
    completion: Mapping[str, Any], *, model: str, request: Mapping[str, Any]
) -> dict[str, Any]:
    """The Message for a non-streaming completion: thinking, text, then tool_use blocks, in that order.

    Raises ToolArgumentsError when a call's arguments are not a JSON object.
    """
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    content: list[dict[str, Any]] = []
    thinking = reasoning_text(message)
    if thinking:
        content.append({"type": "thinking", "thinking": thinking, "signature": reasoning_signature(thinking)})
    text = content_text(message.get("content"))
    refusal = message.get("refusal") if isinstance(message.get("refusal"), str) else ""
    if text or refusal:
        content.append({"type": "text", "text": text + refusal})
    seed = str(completion.get("id") or "")
    names = tool_names(request)
    for position, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        tool_id = anthropic_tool_id(call.get("id"), f"{seed}:{position}")
        name = function.get("name") or ""
        name = names.get(name, name)
        arguments = parse_arguments(name, tool_id, function.get("arguments"))
        content.append({"type": "tool_use", "id": tool_id, "name": name, "input": arguments})
    reason, sequence = stop_reason(
        choice.get("finish_reason"),
        tool_calls=any(block["type"] == "tool_use" for block in content),
        refused=bool(refusal),
        matched=choice.get("stop_reason"),
        stop_sequences=request.get("stop_sequences") or (),
    )
    usage = completion.get("usage")
    if isinstance(usage, dict):
        anthropic = anthropic_usage(usage)
    else:
        log.warning("upstream answer has no usage; the counts are estimates")
        output = sum(_tokens(block.get(key)) for block in content for key in ("text", "thinking", "input"))
        anthropic = {
            "input_tokens": estimate_input_tokens(request),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": math.ceil(output),
        }
    return {
        "id": message_id(completion.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": anthropic,
    }
