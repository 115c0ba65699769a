"""Requests as clients send them: Messages bodies, one urllib request, one official-SDK call, the test key."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import anthropic

TEST_API_KEY = "sk-ant-api03-EXAMPLE-TESTKEY-do-not-store-0123456789abcdef"
MESSAGES = "/v1/messages"
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def body(text: str = "Hello", *, stream: bool = False, **extra: Any) -> dict[str, Any]:
    """A Messages body for urllib requests (`post`), with `stream` always present."""
    return {
        "model": "claude-opus-5-5",
        "max_tokens": 64,
        "stream": stream,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def post(url: str, payload: dict | bytes, headers: dict | None = None, method: str = "POST"):
    """One request with urllib: (status, headers, body bytes); errors are answers too."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("content-type", "application/json")
    request.add_header("x-api-key", TEST_API_KEY)
    request.add_header("anthropic-version", "2023-06-01")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def reset(url: str) -> None:
    """Start the repeat order of every cassette again, as a new proxy run would."""
    assert post(url + "/__vcr__/reset", b"")[0] == 200


def params(text: str, model: str = "claude-opus-5-5", **extra: Any) -> dict[str, Any]:
    """Keyword arguments for the SDK's `messages.create`."""
    return {"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": text}], **extra}


def client(base_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=base_url, api_key=TEST_API_KEY, max_retries=0)


def call(base_url: str, **request: Any) -> bytes:
    """One Messages call through the proxy; returns the response bytes exactly as the client got them."""
    if request.get("stream"):
        request = {k: v for k, v in request.items() if k != "stream"}
        with client(base_url).messages.with_streaming_response.create(stream=True, **request) as response:
            return response.read()
    return client(base_url).messages.with_raw_response.create(**request).http_response.content
