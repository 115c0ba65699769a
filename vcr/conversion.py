"""Stream/JSON conversion on replay: a recorded answer in the other form than the request asks for.

The Messages API, Vertex (`:rawPredict` / `:streamRawPredict`, Anthropic SSE) and Bedrock (`invoke` /
`invoke-with-response-stream`, SSE carried in event-stream frames) share keys across the two forms, so a
stream recorded once answers a JSON request (the Message it folds to) and the reverse. Pure functions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from . import eventstream, providers, sse

JSON_MEDIA_TYPE = "application/json"
SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"


def converts(path: str) -> bool:
    """Whether answers on this path come in a stream and a JSON form that share a key."""
    return path.endswith("/messages") or providers.wants_stream_from_path(path) is not None


def convert(
    path: str,
    wants_stream: bool,
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    request_headers: Mapping[str, str] | None = None,
) -> tuple[bytes, str] | None:
    """(body, content type) in the form the request asks for, or None when the recording already has it
    (or cannot be converted: an error, another media type). Raises ValueError on a body that does not fold."""
    if not 200 <= status < 300 or not converts(path):
        return None
    framed = eventstream.is_framed(headers)
    is_stream = framed or sse.is_stream(headers, body)
    if wants_stream == is_stream or not (is_stream or sse.media_type(headers) == JSON_MEDIA_TYPE):
        return None
    if is_stream:
        events = body
        if framed:
            events, problem = eventstream.to_sse(body)
            if problem:
                raise ValueError(problem)
        message = sse.accumulate(sse.parse_sse(events), request_headers)
        return json.dumps(message).encode(), JSON_MEDIA_TYPE
    message: Any = json.loads(body)
    if providers.provider_of(path) == "bedrock":
        return eventstream.from_events(sse.message_to_events(message, ping=False)), eventstream.CONTENT_TYPE
    return sse.message_to_sse(message), SSE_CONTENT_TYPE
