"""A scripted Google Vertex AI for the tests: Claude's `:rawPredict`, `:streamRawPredict` and
`count-tokens:rawPredict`, answering only requests that carry the expected bearer token (401 otherwise).

The answers are tests/support/upstream.py's script (the model comes from the path, as Vertex takes it).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from aiohttp import web
from anthropic import AnthropicVertex
from multidict import CIMultiDict

from tests.support.upstream import Call, ScriptedUpstream

TOKEN = "ya29.a0AfH6SMBvertexEXAMPLEaccessTOKEN0123456789abcdef"
PROJECT, REGION = "vcr-test-project", "us-east5"
MODEL = "claude-sonnet-4-5@20250929"


def client(url: str, token: str | None = TOKEN) -> AnthropicVertex:
    """The SDK's Vertex client pointed at `url` (the proxy or the scripted Vertex) with its own token."""
    return AnthropicVertex(
        base_url=url + "/v1", region=REGION, project_id=PROJECT, access_token=token, max_retries=0
    )


_PATH = re.compile(
    r"^/v1/projects/([^/]+)/locations/([^/]+)/publishers/anthropic/models/([^/:]+):(rawPredict|streamRawPredict)$"
)


@dataclass
class ScriptedVertex(ScriptedUpstream):
    """The stand-in for {region}-aiplatform.googleapis.com; run it with `loopback.serving()`."""

    rejected: list[str] = field(default_factory=list)
    tokens: set[str] = field(default_factory=lambda: {TOKEN})
    """The bearer tokens it accepts (a scripted token endpoint adds those it issues)."""

    def model_calls(self) -> list[Call]:
        return [call for call in self.calls if "count-tokens" not in call.path and ":" in call.path]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.calls.append(Call(request.method, request.raw_path, CIMultiDict(request.headers), body))
        number = len(self.calls)
        if request.headers.get("Authorization") not in {f"Bearer {token}" for token in self.tokens}:
            self.rejected.append(request.headers.get("Authorization", "no Authorization"))
            error = {
                "code": 401,
                "message": "Request had invalid authentication credentials.",
                "status": "UNAUTHENTICATED",
            }
            return web.json_response({"error": error}, status=401)
        found = _PATH.match(request.path)
        if request.method != "POST" or not found:
            return web.json_response(
                {"error": {"code": 404, "message": f"no {request.path}", "status": "NOT_FOUND"}}, status=404
            )
        payload = json.loads(body)
        if not isinstance(payload.get("anthropic_version"), str):
            return self.error(400, "invalid_request_error", "anthropic_version is required", number)
        if found.group(3) == "count-tokens":
            return web.json_response({"input_tokens": max(1, len(body) // 4)})
        payload["model"] = found.group(3)
        payload["stream"] = found.group(4) == "streamRawPredict"
        return await self.messages(request, payload, number)
