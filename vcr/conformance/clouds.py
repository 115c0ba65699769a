"""The scenario library's requests as Claude on Bedrock and Vertex takes them, the way the official SDKs'
AnthropicBedrock and AnthropicVertex send them: pure functions, no I/O.

Bedrock (InvokeModel): `POST /model/{id}/invoke` or `/invoke-with-response-stream`; the body without
`model` and `stream`, with `anthropic_version: bedrock-2023-05-31` and the `anthropic-beta` header's
betas also as `anthropic_beta`. Vertex: `POST /v1/projects/{project}/locations/{region}/publishers/anthropic/
models/{id}:rawPredict` or `:streamRawPredict`; the body without `model`, with `anthropic_version:
vertex-2023-10-16`; count_tokens at `.../models/count-tokens:rawPredict` keeps `model`. The models list
(both) and count_tokens (Bedrock, whose CountTokens speaks its own shape) have no counterpart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from ..errors import InvalidInput
from .library import Scenario

PROVIDERS = ("anthropic", "bedrock", "vertex")
BEDROCK_VERSION = "bedrock-2023-05-31"
VERTEX_VERSION = "vertex-2023-10-16"
_DATED = re.compile(r"^(claude-.+)-(\d{8})$")


@dataclass(frozen=True)
class CloudPlace:
    """Where on a cloud the scenarios go: the model id in the path (None: derived from each scenario's
    model) and, for Vertex, the project and region."""

    provider: str
    model: str | None = None
    project: str | None = None
    region: str = "global"


@dataclass(frozen=True)
class CloudRequest:
    """A scenario's request as the cloud takes it."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes


def place_from_env(provider: str, model: str | None, env: Mapping[str, str]) -> CloudPlace:
    """Where the scenarios go on `provider`; Vertex's project and region come from Claude Code's own
    variables, ANTHROPIC_VERTEX_PROJECT_ID and CLOUD_ML_REGION (default `global`)."""
    if provider not in PROVIDERS:
        raise InvalidInput(f"unknown provider {provider!r}; known: {', '.join(PROVIDERS)}")
    return CloudPlace(
        provider,
        model or None,
        (env.get("ANTHROPIC_VERTEX_PROJECT_ID") or "").strip() or None,
        (env.get("CLOUD_ML_REGION") or "").strip() or "global",
    )


def cloud_model(provider: str, model: str) -> str:
    """The cloud's id for a first-party model name: `us.anthropic.claude-opus-4-5-20251101-v1:0` on
    Bedrock (the US cross-region inference profile), `claude-opus-4-5@20251101` on Vertex."""
    if provider == "bedrock":
        return f"us.anthropic.{model}-v1:0"
    found = _DATED.match(model)
    return f"{found.group(1)}@{found.group(2)}" if found else model


def has_form(scenario: Scenario, provider: str) -> bool:
    """Whether the scenario has a counterpart on the provider."""
    route = scenario.path.split("?", 1)[0]
    if provider == "anthropic":
        return True
    if route == "/v1/messages":
        return isinstance(scenario.request, dict)
    return provider == "vertex" and route == "/v1/messages/count_tokens"


def _betas(scenario: Scenario) -> list[str]:
    return [
        beta.strip()
        for name, value in scenario.request_headers
        if name.lower() == "anthropic-beta"
        for beta in value.split(",")
        if beta.strip()
    ]


def cloud_request(scenario: Scenario, place: CloudPlace) -> CloudRequest:
    """The scenario's request for `place.provider`; InvalidInput when it has none there (`has_form`)."""
    if not has_form(scenario, place.provider):
        raise InvalidInput(f"scenario {scenario.name} has no {place.provider} form")
    request = dict(scenario.request or {})
    model = place.model or cloud_model(place.provider, str(request.get("model")))
    stream = bool(request.get("stream"))
    headers = [("content-type", "application/json")]
    headers += [("anthropic-beta", ",".join(_betas(scenario)))] if _betas(scenario) else []
    if place.provider == "bedrock":
        body = {key: value for key, value in request.items() if key not in ("model", "stream")}
        body["anthropic_version"] = BEDROCK_VERSION
        if _betas(scenario):
            body["anthropic_beta"] = _betas(scenario)
        action = "invoke-with-response-stream" if stream else "invoke"
        if stream:
            headers.append(("accept", "application/vnd.amazon.eventstream"))
        path = f"/model/{quote(model, safe=':;')}/{action}"
        return CloudRequest("POST", path, tuple(headers), json.dumps(body).encode())
    if not place.project:
        raise InvalidInput(
            "conformance on Vertex needs a project: set ANTHROPIC_VERTEX_PROJECT_ID (and CLOUD_ML_REGION)"
        )
    base = f"/v1/projects/{quote(place.project, safe='')}/locations/{quote(place.region, safe='')}"
    base += "/publishers/anthropic/models/"
    if scenario.path.split("?", 1)[0] == "/v1/messages/count_tokens":
        body = {**request, "model": model, "anthropic_version": VERTEX_VERSION}
        return CloudRequest("POST", base + "count-tokens:rawPredict", tuple(headers), json.dumps(body).encode())
    body = {key: value for key, value in request.items() if key != "model"}
    body["anthropic_version"] = VERTEX_VERSION
    action = "streamRawPredict" if stream else "rawPredict"
    return CloudRequest("POST", f"{base}{quote(model, safe='@')}:{action}", tuple(headers), json.dumps(body).encode())
