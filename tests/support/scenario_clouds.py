"""The scenario library served as Claude on Bedrock and on Vertex would serve it, for `conformance --provider`.

Each cloud reads a request the way the service does (the model and the stream flag from the path, the
body's `anthropic_version` required and dropped, Bedrock's `anthropic_beta`), turns it back into the
Messages request it stands for, and answers with that scenario's exact answer: on Bedrock the stream in real
event-stream frames (an error event as an exception frame) and errors in Bedrock's shape, every request's
SigV4 signature checked with botocore (403 otherwise); on Vertex the Anthropic answer as is, only for the
expected bearer token (401 otherwise). `damage` flips a bit in every stream's third frame.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from aiohttp import web
from claude_vcr import eventstream
from multidict import CIMultiDict

from tests.support.bedrock_upstream import signature_problem
from tests.support.scenario_upstream import ScenarioUpstream, request_identity
from tests.support.vertex_upstream import TOKEN

_BEDROCK = re.compile(r"^/model/([^/]+)/(invoke|invoke-with-response-stream)$")
_VERTEX = re.compile(
    r"^/v1/projects/([^/]+)/locations/([^/]+)/publishers/anthropic/models/([^/:]+):(rawPredict|streamRawPredict)$"
)
_VERTEX_MODEL = re.compile(r"^(claude-.+)@(\d{8})$")


def _error(status: int, message: str, kind: str) -> web.Response:
    return web.json_response({"message": message}, status=status, headers={"x-amzn-ErrorType": kind})


@dataclass
class ScenarioBedrock(ScenarioUpstream):
    """The scenario library behind Bedrock's InvokeModel."""

    rejected: list[str] = field(default_factory=list)
    damage: bool = False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.calls.append((request.method, request.raw_path, CIMultiDict(request.headers), body))
        problem = signature_problem(request, body)
        if problem is not None:
            self.rejected.append(problem)
            return _error(403, f"signature mismatch ({problem})", "InvalidSignatureException")
        found = _BEDROCK.match(request.raw_path)
        payload = json.loads(body) if found else None
        if not found or not isinstance(payload, dict) or payload.pop("anthropic_version", None) != "bedrock-2023-05-31":
            return _error(400, "Malformed input request", "ValidationException")
        payload.pop("anthropic_beta", None)
        model = unquote(found.group(1)).removeprefix("us.anthropic.").removesuffix("-v1:0")
        messages_request = {"model": model, **payload}
        if found.group(2) == "invoke-with-response-stream":
            messages_request["stream"] = True
        scenario = self.index.get(
            request_identity("POST", "/v1/messages", json.dumps(messages_request).encode())
        )
        if scenario is None:
            return _error(400, "no scenario takes this request", "ValidationException")
        self.served.append(scenario.name)
        status, headers, answer = self.answer(scenario)
        if status >= 400:
            error = json.loads(answer).get("error", {})
            return _error(status, str(error.get("message")), str(error.get("type")))
        if not dict(headers).get("content-type", "").startswith("text/event-stream"):
            return web.Response(status=status, body=answer, content_type="application/json")
        frames = [
            eventstream.exception_frame(event["error"]["type"], event["error"]["message"])
            if event.get("type") == "error"
            else eventstream.chunk_frame(event)
            for event in self._events(answer)
        ]
        if self.damage and len(frames) > 2:
            third = bytearray(frames[2])
            third[-6] ^= 0x01
            frames[2] = bytes(third)
        response = web.StreamResponse(status=status, headers={"Content-Type": eventstream.CONTENT_TYPE})
        await response.prepare(request)
        for frame in frames:
            await response.write(frame)
        await response.write_eof()
        return response

    @staticmethod
    def _events(sse: bytes) -> list[dict]:
        """The stream's events; pings are not framed (Bedrock sends none)."""
        events = []
        for line in sse.decode().split("\n"):
            if line.startswith("data: "):
                event = json.loads(line[6:])
                if event.get("type") != "ping":
                    events.append(event)
        return events


@dataclass
class ScenarioVertex(ScenarioUpstream):
    """The scenario library behind Vertex's rawPredict, streamRawPredict and count-tokens."""

    rejected: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.calls.append((request.method, request.raw_path, CIMultiDict(request.headers), body))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.rejected.append(request.headers.get("Authorization", "no Authorization"))
            return web.json_response({"error": {"code": 401, "status": "UNAUTHENTICATED"}}, status=401)
        found = _VERTEX.match(request.raw_path)
        payload = json.loads(body) if found else None
        if not found or not isinstance(payload, dict) or payload.pop("anthropic_version", None) != "vertex-2023-10-16":
            return web.json_response({"error": {"code": 400, "status": "INVALID_ARGUMENT"}}, status=400)
        if found.group(3) == "count-tokens":
            path, model = "/v1/messages/count_tokens", str(payload.get("model"))
        else:
            path, model = "/v1/messages", unquote(found.group(3))
        dated = _VERTEX_MODEL.match(model)
        payload["model"] = f"{dated.group(1)}-{dated.group(2)}" if dated else model
        scenario = self.match("POST", path, json.dumps(payload).encode())
        if scenario is None:
            return web.json_response({"error": {"code": 400, "status": "INVALID_ARGUMENT"}}, status=400)
        self.served.append(scenario.name)
        status, headers, answer = self.answer(scenario)
        if not dict(headers).get("content-type", "").startswith("text/event-stream"):
            return web.Response(status=status, body=answer, headers=CIMultiDict(headers))
        response = web.StreamResponse(status=status, headers=CIMultiDict(headers))
        await response.prepare(request)
        await response.write(answer)
        await response.write_eof()
        return response
