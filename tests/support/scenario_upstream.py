"""An Anthropic-protocol upstream that answers each request of the scenario library with its exact answer.

A request is matched to its scenario by method, path (query left out) and canonical JSON body; anything
else gets a 404 in Anthropic's error shape. Streams are written one SSE event per chunk, as the API does.
A `transform` turns the server into a deliberately broken peer (`support/broken_endpoints.py`); the names of
the scenarios it actually changed are kept in `altered`. Run one with `loopback.serving()`.

Also here: `send()`, which plays a scenario's request with the official SDK, and `record_library()`, which
plays them all through a proxy. The fixtures built on them are in `fixtures_scenarios.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import anthropic
from aiohttp import web
from claude_vcr.conformance.library import SCENARIOS, Scenario
from claude_vcr.matching import canonical_json, parse_json_body
from multidict import CIMultiDict

from tests.support.client import client

Answer = tuple[int, tuple[tuple[str, str], ...], bytes]
Transform = Callable[[Scenario], Answer]
CASSETTE = "scenarios"
"""The cassette the fixtures record the library into."""


def request_identity(method: str, path: str, body: bytes) -> tuple[str, str, bytes]:
    """What identifies a scenario's request: method, path without query, canonical body."""
    parsed = parse_json_body(body)
    return method.upper(), path.split("?", 1)[0], canonical_json(parsed) if parsed is not None else body


@dataclass
class ScenarioUpstream:
    """The scenario library as an HTTP server; `transform` rewrites answers (None: the exact ones)."""

    scenarios: list[Scenario] = field(default_factory=lambda: list(SCENARIOS))
    transform: Transform | None = None
    calls: list[tuple[str, str, CIMultiDict[str], bytes]] = field(default_factory=list)
    altered: set[str] = field(default_factory=set)
    served: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.index = {request_identity(s.method, s.path, s.request_bytes): s for s in self.scenarios}
        assert len(self.index) == len(self.scenarios), "two scenarios share a request"

    def match(self, method: str, path: str, body: bytes) -> Scenario | None:
        return self.index.get(request_identity(method, path, body))

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def answer(self, scenario: Scenario) -> Answer:
        """The scenario's answer, through the transform if there is one."""
        exact: Answer = (scenario.status, scenario.headers, scenario.body)
        if self.transform is None:
            return exact
        changed = self.transform(scenario)
        if changed != exact:
            self.altered.add(scenario.name)
        return changed

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.calls.append((request.method, request.path_qs, CIMultiDict(request.headers), body))
        scenario = self.match(request.method, request.path, body)
        if scenario is None:
            error = {
                "type": "error",
                "error": {"type": "not_found_error", "message": f"no scenario for {request.path}"},
            }
            return web.json_response(
                error, status=404, headers={"request-id": "req_011CNoScenario0000000000"}
            )
        self.served.append(scenario.name)
        status, headers, payload = self.answer(scenario)
        content_type = dict(headers).get("content-type", "")
        if not content_type.startswith("text/event-stream"):
            return web.Response(status=status, body=payload, headers=CIMultiDict(headers))
        response = web.StreamResponse(status=status, headers=CIMultiDict(headers))
        await response.prepare(request)
        for event in payload.split(b"\n\n"):
            if event:
                await response.write(event + b"\n\n")
                await asyncio.sleep(0)
        await response.write_eof()
        return response


def send(base_url: str, scenario: Scenario, sdk: anthropic.Anthropic | None = None) -> tuple[int, bytes]:
    """Play a scenario's request with the official SDK; (status, body bytes as the client got them)."""
    sdk = sdk or client(base_url)
    request = dict(scenario.request or {})
    betas = [value for name, value in scenario.request_headers if name == "anthropic-beta"]
    query = dict(parse_qsl(scenario.path.partition("?")[2]))
    try:
        if scenario.path == "/v1/models":
            raw = sdk.models.with_raw_response.list()
            return raw.http_response.status_code, raw.http_response.content
        if scenario.path.startswith("/v1/messages/count_tokens"):
            raw = sdk.messages.with_raw_response.count_tokens(**request)
            return raw.http_response.status_code, raw.http_response.content
        if betas:
            create = sdk.beta.messages.with_streaming_response.create
            request["betas"] = betas[0].split(",")
        else:
            create = sdk.messages.with_streaming_response.create
        with create(**request, extra_query=query or None) as response:
            return response.status_code, response.read()
    except anthropic.APIStatusError as error:
        return error.status_code, error.response.read()


def record_library(proxy_url: str, scenarios: list[Scenario] = SCENARIOS) -> dict[str, tuple[int, bytes]]:
    """Send every scenario through a proxy; what each client received, by scenario name."""
    sdk = client(proxy_url)
    return {scenario.name: send(proxy_url, scenario, sdk) for scenario in scenarios}


def scenario_of(method: str, path: str, body: bytes) -> Scenario:
    """The scenario a recorded request belongs to."""
    found = ScenarioUpstream().match(method, path, body)
    assert found is not None, f"no scenario for {method} {path}"
    return found
