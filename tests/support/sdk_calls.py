"""One SDK client class's calls as the cloud tests make them (Bedrock, Vertex): JSON, streamed, and the
Bash tool those tests offer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

BASH_TOOL = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}},
        "required": ["command"],
    },
}


def essence(message: dict) -> tuple:
    """What a conversion must keep: id, blocks, stop reason and token counts."""
    blocks = [(b["type"], b.get("text"), b.get("input")) for b in message["content"]]
    usage = (message["usage"]["input_tokens"], message["usage"]["output_tokens"])
    return message["id"], blocks, message["stop_reason"], usage


class SdkCalls:
    """Calls through clients made by `client(url)`: bound once per test module, so `call is stream_call`
    holds in parametrized tests."""

    def __init__(self, client: Callable[[str], Any]) -> None:
        self.client = client

    def json_call(self, url: str, params: dict) -> tuple[bytes, dict]:
        response = self.client(url).messages.with_raw_response.create(**params)
        return response.http_response.content, response.parse().model_dump()

    def one_stream_call(self, url: str, params: dict) -> tuple[bytes, dict]:
        """One streamed request: no raw bytes, the Message the SDK folds it to."""
        with self.client(url).messages.stream(**params) as stream:
            return b"", stream.get_final_message().model_dump()

    def stream_call(self, url: str, params: dict) -> tuple[bytes, dict]:
        """The raw bytes of one streamed request, and the Message the SDK folds a second one to."""
        with self.client(url).messages.with_streaming_response.create(stream=True, **params) as response:
            raw = response.read()
        with self.client(url).messages.stream(**params) as stream:
            return raw, stream.get_final_message().model_dump()
