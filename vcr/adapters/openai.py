"""The OpenAI-compatible upstream: Anthropic Messages to the client, Chat Completions to the upstream.

`serve --upstream-format openai --upstream URL [--model-map 'claude-*=vendor/model']`, with the key in the
variable `--upstream-key-env` names (sent as `Authorization: Bearer`, never stored).

Where requests go: `{URL}/chat/completions`. A URL with a path is used as given (`https://openrouter.ai/api/v1`,
`http://host:8000/v1`, `https://generativelanguage.googleapis.com/v1beta/openai`); a bare host gets `/v1`
(`http://localhost:11434` -> `http://localhost:11434/v1/chat/completions`).

What the client may call:

| client request | answered by |
| --- | --- |
| `POST /v1/messages` (any query) | the upstream's `/chat/completions`, translated both ways |
| `POST /v1/messages/count_tokens` | locally: `openai_messages.estimate_input_tokens` (documented estimate) |
| `GET /v1/models`, `GET /v1/models/{id}` | locally: the models the model map names (`openai_messages.models_page`) |
| `HEAD /api/hello`, `/api/event_logging/*` | locally: 200 (Claude Code's probe and telemetry) |
| anything else | 404 `not_found_error` |

Request mapping (Anthropic -> Chat Completions):

| Anthropic | Chat Completions |
| --- | --- |
| `model` | the first `--model-map` glob that matches, else the name as is |
| `system` (string or text blocks, joined by a blank line) | a first `system` message |
| a `system` role inside `messages` (Claude Code sends one) | a `system` message in place |
| user text / image (base64 or url) / document | content string (all text) or parts: `text`, `image_url` (data: URL), `file` |
| assistant text + tool_use | `content` + `tool_calls` (`function.arguments` = input as JSON) |
| thinking / redacted_thinking in history | dropped |
| tool_result (string or blocks; images follow in a user message) | a `tool` message, before the turn's other content |
| tool_result with `is_error` | the `tool` message's text prefixed `Error: ` |
| tool_use / tool_result ids | `toolu_X` -> `X` (inverse of the id mapping below; no state) |
| `tools` (custom) | `type: function` (`input_schema` -> `parameters`, `strict` kept); server tools dropped, logged |
| a tool name OpenAI refuses (over 64 characters, other characters) | shortened with a hash suffix, mapped back in answers |
| `tool_choice` auto / any / tool / none | `auto` / `required` / `{"type":"function",...}` / `none` |
| `disable_parallel_tool_use` | `parallel_tool_calls: false` |
| `max_tokens`, `temperature`, `top_p`, `top_k` | same names |
| `stop_sequences` | `stop` |
| `thinking` enabled (budget <4096 / <16384 / more) | `reasoning_effort` low / medium / high |
| `thinking` adaptive | `reasoning_effort` = `output_config.effort` (max -> high; unset -> high) |
| `stream: true` | `stream: true, stream_options: {include_usage: true}` |
| `metadata`, `cache_control`, `context_management`, `service_tier`, ... | not sent |

If the upstream answers 400 about reasoning or thinking (OpenAI's non-reasoning models reject
`reasoning_effort`, Ollama's say they "do not support thinking"), the request is sent once more without it, and
that model is sent none from then on (per proxy run).

Answer mapping (Chat Completions -> Anthropic), streamed (`openai_stream.StreamTranslator`) or not
(`openai_messages.message_from_completion`):

| Chat Completions | Anthropic |
| --- | --- |
| (response headers) | `message_start` at once: `msg_` id, the client's model, input_tokens estimated |
| `delta.reasoning_content` or `delta.reasoning` | a `thinking` block (a new one per segment), `thinking_delta` |
| (end of a reasoning segment) | `signature_delta` `openai-reasoning:<sha256 of the text, 32 hex>`: no Anthropic signature exists for it; the adapter drops thinking from history, so it never goes back anywhere |
| `delta.content`, `delta.refusal` | a `text` block, `text_delta` (whitespace before a tool call makes no block) |
| `delta.tool_calls[i]` | a `tool_use` block, id `toolu_` + upstream id (`toolu_vcr<hash>` when missing or unfit), `input_json_delta` fragments as they come |
| parallel calls, interleaved | one block at a time; a waiting call's fragments are kept and sent once the open call's JSON is whole |
| arguments not a JSON object at block close | an `error` event (api_error), logged; never an empty `{}` |
| blank arguments | `{}` (sent as an explicit `input_json_delta`) |
| `finish_reason` stop / length / tool_calls / content_filter | `end_turn` / `max_tokens` / `tool_use` / `refusal` (see `openai_messages.stop_reason`) |
| vLLM `stop_reason` = one of `stop_sequences` | `stop_sequence` with that sequence |
| trailing usage chunk | `message_delta.usage`, held until `[DONE]`: input_tokens = prompt - cached - cache writes, `cache_read_input_tokens` = `prompt_tokens_details.cached_tokens` (DeepSeek: `prompt_cache_hit_tokens`) |
| no usage at all | estimates (count_tokens' for input, the output's size for output), logged |
| nothing to send the client for `ping_interval` s (silence, or upstream `:` comments) | `event: ping` |
| no byte from the upstream for the read timeout | an `error` event: pings never hide a dead upstream for ever (P13) |
| `data: [DONE]` | nothing (`message_stop` ends the stream) |
| HTTP error before the stream | an Anthropic error body, same status (`openai_messages.STATUS_ERROR_TYPES`), `retry-after` kept |
| `{"error":...}` chunk, `finish_reason: error`, a cut connection | an `error` event, then the stream is broken off |
| non-streaming request | `stream` not sent; the completion becomes one Message (invalid tool JSON: 502 api_error) |
| a JSON completion to a streaming request (server ignored `stream`) | the Message's stream (`sse.message_to_sse`) |
| `x-request-id`; `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` | `request-id` (`req_`-prefixed, generated if absent); `anthropic-ratelimit-*` (resets as RFC 3339 times); plus `x-vcr-upstream-model` |

Failures mid-stream: the client gets an Anthropic `error` event; ERROR_GRACE_SECONDS later `iter_body()` raises
`UpstreamError`, so the proxy treats the answer as a broken stream and stores nothing (a 200 stream that ended
in an error must not replay as a good recording). Invalid tool JSON is handled the same way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import aiohttp

from .. import sse
from ..adapters.openai_messages import (
    RequestError,
    ToolArgumentsError,
    chat_request,
    error_message,
    error_type,
    estimate_input_tokens,
    map_model,
    message_from_completion,
    message_id,
    model_by_id,
    models_page,
    tool_names,
)
from ..adapters.openai_stream import StreamTranslator
from ..errors import UpstreamError
from ..headers import Headers
from ..protocol import error_body
from .failures import broke_off, reach_failure

log = logging.getLogger("claude_vcr.adapters.openai")

_FAILURES = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream; charset=utf-8"
RATE_LIMITS = {
    "x-ratelimit-limit-requests": "anthropic-ratelimit-requests-limit",
    "x-ratelimit-remaining-requests": "anthropic-ratelimit-requests-remaining",
    "x-ratelimit-reset-requests": "anthropic-ratelimit-requests-reset",
    "x-ratelimit-limit-tokens": "anthropic-ratelimit-tokens-limit",
    "x-ratelimit-remaining-tokens": "anthropic-ratelimit-tokens-remaining",
    "x-ratelimit-reset-tokens": "anthropic-ratelimit-tokens-reset",
}
"""OpenAI rate-limit headers and the Anthropic names they are passed on as (resets become RFC 3339 times)."""
KEPT_HEADERS = ("retry-after", "retry-after-ms")
ERROR_GRACE_SECONDS = 0.5
"""After an error event, how long the stream stays open before it is broken off (so nothing is stored):
clients (undici's fetch in Claude Code, httpx) drop bytes they have not read yet when a connection is cut,
and this gives them time to read the event, raise, and hang up themselves."""
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def chat_completions_url(base_url: str) -> str:
    """`{base}/chat/completions`; a base with no path gets `/v1` first (see the module docstring)."""
    base = base_url.rstrip("/")
    if urlsplit(base).path in ("", "/"):
        base += "/v1"
    return base + "/chat/completions"


def _reset_time(value: str, now: datetime) -> str | None:
    """An OpenAI reset duration (`1s`, `6m0s`, `20ms`) as the RFC 3339 time Anthropic's header carries."""
    parts = _DURATION.findall(value.strip())
    if not parts or "".join(number + unit for number, unit in parts) != value.strip():
        return None
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    seconds = sum(float(number) * scale[unit] for number, unit in parts)
    return (now + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def reply_headers(
    upstream: Iterable[tuple[str, str]], content_type: str, model: str | None = None
) -> Headers:
    """Headers for the client: content type, a `req_` request-id (the upstream's if it sent one), rate limits
    and retry hints translated, and the upstream model that answered."""
    request_id = None
    headers: Headers = [("content-type", content_type)]
    now = datetime.now(timezone.utc)
    for name, value in upstream:
        lowered = name.lower()
        if lowered in ("x-request-id", "request-id") and request_id is None and value:
            request_id = value if value.startswith("req_") else "req_" + re.sub(r"[^A-Za-z0-9_-]", "", value)
        elif lowered in KEPT_HEADERS:
            headers.append((lowered, value))
        elif lowered in RATE_LIMITS:
            translated = (
                _reset_time(value, now)
                if lowered.endswith("reset-requests") or lowered.endswith("reset-tokens")
                else value
            )
            if translated is not None:
                headers.append((RATE_LIMITS[lowered], translated))
    headers.append(("request-id", request_id or "req_vcr" + uuid.uuid4().hex[:24]))
    if content_type.startswith("text/event-stream"):
        headers.append(("cache-control", "no-cache"))
    if model:
        headers.append(("x-vcr-upstream-model", model))
    return headers


class LocalReply:
    """An answer complete before it is sent: local endpoints, errors, non-streaming Messages."""

    def __init__(self, status: int, headers: Headers, body: bytes, reason: str | None = None) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    async def iter_body(self) -> AsyncIterator[bytes]:
        if self.body:
            yield self.body

    async def release(self) -> None:
        return None


def json_reply(status: int, value: Any, upstream_headers: Iterable[tuple[str, str]] = ()) -> LocalReply:
    """A JSON answer with Anthropic's headers."""
    body = json.dumps(value, ensure_ascii=False).encode()
    return LocalReply(status, reply_headers(upstream_headers, JSON_TYPE), body)


def error_reply(
    status: int, message: str, upstream_headers: Iterable[tuple[str, str]] = (), kind: str | None = None
) -> LocalReply:
    """An Anthropic error body with the status's error type (or `kind`) and the request-id in both places."""
    headers = reply_headers(upstream_headers, JSON_TYPE)
    request_id = dict(headers)["request-id"]
    return LocalReply(status, headers, error_body(kind or error_type(status), message, request_id))


class StreamReply:
    """A streamed Chat Completions answer, translated chunk by chunk, with pings during silences."""

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        translator: StreamTranslator,
        ping_interval: float,
        model: str,
    ) -> None:
        self._response = response
        self._translator = translator
        self._ping_interval = ping_interval
        self.status = 200
        self.reason = "OK"
        self.headers = reply_headers(response.headers.items(), SSE_TYPE, model)

    async def iter_body(self) -> AsyncIterator[bytes]:
        translator = self._translator
        yield sse.encode_events(translator.start())
        parser = sse.SSEParser()
        last_sent = time.monotonic()
        saw_done = False
        while not translator.done:
            wait = max(self._ping_interval - (time.monotonic() - last_sent), 0.0)
            try:
                data = await asyncio.wait_for(self._response.content.readany(), timeout=wait)
            except aiohttp.ClientError as error:  # before TimeoutError: the read timeout is both
                events = translator.fail("api_error", f"the upstream broke off: {error!r}")
            except asyncio.TimeoutError:
                yield sse.encode_event({"type": "ping"})
                last_sent = time.monotonic()
                continue
            except OSError as error:
                events = translator.fail("api_error", f"the upstream broke off: {error!r}")
            else:
                events = []
                for event in parser.feed(data) if data else parser.close():
                    if (event.data or "").strip() == "[DONE]":
                        saw_done = True
                        break
                    if isinstance(event.parsed, dict):
                        events += translator.feed(event.parsed)
                    elif event.data:
                        log.warning("skipping upstream SSE data that is not JSON: %r", event.data[:80])
                if saw_done or not data:
                    events += translator.end(saw_done=saw_done)
            if events:
                yield sse.encode_events(events)
                last_sent = time.monotonic()
        if translator.failed is not None:
            await asyncio.sleep(ERROR_GRACE_SECONDS)
            raise UpstreamError(f"upstream stream failed: {translator.failed}")

    async def release(self) -> None:
        if self._translator.done and self._translator.failed is None:
            self._response.release()
        else:
            self._response.close()


class OpenAIUpstream:
    """Translates Anthropic Messages requests to an OpenAI-compatible Chat Completions API and back."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        model_map: Iterable[tuple[str, str]] = (),
        ping_interval: float = 15.0,
        read_timeout: float = 600.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.endpoint = chat_completions_url(base_url)
        self.model_map = tuple(model_map)
        self.ping_interval = ping_interval
        self._api_key = api_key
        self._without_reasoning: set[str] = set()
        """Upstream models that refused `reasoning_effort` in this run."""
        self.session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=read_timeout),
            connector=aiohttp.TCPConnector(limit=0),
        )

    async def send(self, method: str, target: str, headers: Headers, body: bytes) -> LocalReply | StreamReply:
        """Route one client request (see the table above); the client's headers (its Anthropic key,
        anthropic-beta...) mean nothing upstream and are not sent."""
        split = urlsplit(target)
        path = split.path.rstrip("/")
        if path == "/v1/messages" and method == "POST":
            return await self._messages(body)
        if path == "/v1/messages/count_tokens" and method == "POST":
            try:
                return json_reply(200, {"input_tokens": estimate_input_tokens(self._parse(body))})
            except RequestError as error:
                return error_reply(400, str(error))
        if path == "/v1/models" and method == "GET":
            try:
                return json_reply(200, models_page(self.model_map, dict(parse_qsl(split.query))))
            except RequestError as error:
                return error_reply(400, str(error))
        if path.startswith("/v1/models/") and method == "GET":
            model_id = unquote(path.removeprefix("/v1/models/"))
            info = model_by_id(self.model_map, model_id)
            return json_reply(200, info) if info else error_reply(404, f"model {model_id!r} is not mapped")
        if path == "/api/hello":
            return LocalReply(200, reply_headers((), "text/plain; charset=utf-8"), b"")
        if path.startswith("/api/event_logging/"):
            return json_reply(200, {})
        return error_reply(404, f"claude-vcr's OpenAI adapter does not serve {method} {path}")

    @staticmethod
    def _parse(body: bytes) -> dict[str, Any]:
        """The client's JSON body, or a RequestError."""
        try:
            value = json.loads(body or b"null")
        except ValueError as error:
            raise RequestError(f"the request body is not JSON: {error}") from error
        if not isinstance(value, dict):
            raise RequestError("the request body must be a JSON object")
        return value

    async def _messages(self, body: bytes) -> LocalReply | StreamReply:
        """Translate, send, and answer: a StreamReply for streams, the whole Message (or error) otherwise."""
        try:
            request = self._parse(body)
            model = request.get("model")
            if not isinstance(model, str) or not model:
                raise RequestError("model: a model name is required")
            upstream_model = map_model(model, self.model_map)
            stream = request.get("stream") is True
            chat = chat_request(
                request,
                upstream_model,
                stream=stream,
                reasoning=upstream_model not in self._without_reasoning,
            )
        except RequestError as error:
            return error_reply(400, str(error))
        response = await self._post(chat)
        if response.status == 400 and "reasoning_effort" in chat:
            text = (await self._read(response)).decode("utf-8", "replace")
            if "reasoning" not in text.lower() and "think" not in text.lower():
                return error_reply(400, error_message(text), response.headers.items())
            log.warning("%s refused reasoning_effort; sending it none from now on", upstream_model)
            self._without_reasoning.add(upstream_model)
            chat.pop("reasoning_effort")
            response = await self._post(chat)
        if not 200 <= response.status < 300:
            text = await self._read(response)
            log.warning("upstream answered %d: %s", response.status, error_message(text)[:200])
            status = response.status if response.status >= 400 else 502
            return error_reply(status, error_message(text), response.headers.items())
        if stream and sse.media_type(response.headers.items()) == sse.SSE_MEDIA_TYPE:
            translator = StreamTranslator(
                message_id=message_id(),
                model=model,
                input_tokens=estimate_input_tokens(request),
                stop_sequences=request.get("stop_sequences") or (),
                tool_names=tool_names(request),
            )
            return StreamReply(response, translator, self.ping_interval, upstream_model)
        return await self._whole_answer(response, request, model, upstream_model, stream)

    async def _post(self, chat: dict[str, Any]) -> aiohttp.ClientResponse:
        """POST to `/chat/completions`, with the key if there is one."""
        headers = {"content-type": JSON_TYPE, "accept": SSE_TYPE if chat.get("stream") else JSON_TYPE}
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        try:
            return await self.session.post(self.endpoint, json=chat, headers=headers, allow_redirects=False)
        except _FAILURES as error:
            raise UpstreamError(reach_failure(self.endpoint, error)) from error

    @staticmethod
    async def _read(response: aiohttp.ClientResponse) -> bytes:
        """A whole (error or JSON) body; a transport failure is an UpstreamError (the proxy answers 502)."""
        try:
            async with response:
                return await response.read()
        except _FAILURES as error:
            raise UpstreamError(broke_off(str(response.url), error)) from error

    async def _whole_answer(
        self,
        response: aiohttp.ClientResponse,
        request: dict[str, Any],
        model: str,
        upstream_model: str,
        stream: bool,
    ) -> LocalReply:
        """A JSON completion (asked for, or sent by a server that ignored `stream`): the Message, as JSON or,
        for a stream request, as the stream that carries it."""
        raw = await self._read(response)
        try:
            completion = json.loads(raw)
        except ValueError:
            return error_reply(502, f"the upstream answered with something that is not JSON: {raw[:200]!r}")
        if not isinstance(completion, dict) or "error" in completion:
            detail = completion.get("error") if isinstance(completion, dict) else None
            status = detail.get("code") if isinstance(detail, dict) else None
            status = status if isinstance(status, int) and 400 <= status < 600 else 502
            return error_reply(status, error_message(raw), response.headers.items())
        try:
            message = message_from_completion(completion, model=model, request=request)
        except ToolArgumentsError as error:
            log.warning("answering 502: %s", error)
            return error_reply(502, str(error), response.headers.items(), kind="api_error")
        if stream:
            body = sse.message_to_sse(message)
            return LocalReply(200, reply_headers(response.headers.items(), SSE_TYPE, upstream_model), body)
        body = json.dumps(message, ensure_ascii=False).encode()
        return LocalReply(200, reply_headers(response.headers.items(), JSON_TYPE, upstream_model), body)

    async def close(self) -> None:
        await self.session.close()
