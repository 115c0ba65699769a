"""Where Claude is served: which provider a recorded path belongs to, its model, and the client variables.

Pure functions: the proxy, `list`/`stats`/`show`, `run` and the pytest plugin all ask here.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

PROVIDERS = ("anthropic", "bedrock", "vertex", "foundry")
"""`anthropic`: the first-party API; `foundry`: Microsoft Foundry, the same Messages API under another host."""

def of_upstream_format(upstream_format: str) -> str:
    """The provider whose client variables `run` and the pytest plugin set for an `--upstream-format`
    (`openai` translates for first-party clients)."""
    return upstream_format if upstream_format in PROVIDERS else "anthropic"

_BEDROCK_MODEL = re.compile(
    r"^/model/([^/?]+)/(invoke|invoke-with-response-stream|converse|converse-stream)(?:\?|$)"
)
_VERTEX_MODEL = re.compile(
    r"^/v1(?:beta1)?/projects/[^/]+/locations/[^/]+/publishers/anthropic/models/([^/:?]+):(\w+)"
)


def provider_of(path: str) -> str:
    """The provider a request path speaks to: Bedrock's `/model/...` and control plane, Vertex's
    `/v1/projects/.../publishers/anthropic/...`, otherwise the Messages API."""
    if path.startswith("/model/") or path.startswith(("/inference-profiles", "/foundation-models")):
        return "bedrock"
    if _VERTEX_MODEL.match(path) or re.match(r"^/v1(?:beta1)?/projects/", path):
        return "vertex"
    return "anthropic"


def model_in_path(path: str) -> str | None:
    """The model id a Bedrock or Vertex path names (`us.anthropic.claude-sonnet-4-5-20250929-v1:0`), or None."""
    found = _BEDROCK_MODEL.match(path)
    if found:
        return unquote(found.group(1))
    found = _VERTEX_MODEL.match(path)
    if found and found.group(1) != "count-tokens":
        return unquote(found.group(1))
    return None


def counts_tokens(path: str) -> bool:
    """Whether a path is a token count: the Messages API's `/count_tokens` or Vertex's `count-tokens:rawPredict`."""
    route = path.split("?", 1)[0].rstrip("/")
    return route.endswith(("/count_tokens", "/count-tokens:rawPredict"))


def wants_stream_from_path(path: str) -> bool | None:
    """Bedrock and Vertex say streaming in the path (`invoke-with-response-stream`, `:streamRawPredict`)."""
    found = _BEDROCK_MODEL.match(path)
    if found and found.group(2).startswith("invoke"):  # Converse speaks its own shapes: recorded as opaque
        return found.group(2) == "invoke-with-response-stream"
    found = _VERTEX_MODEL.match(path)
    if found and found.group(1) != "count-tokens":  # count-tokens:rawPredict answers a count, never a Message
        return found.group(2) == "streamRawPredict"
    return None


def client_env(provider: str, base_url: str) -> dict[str, str]:
    """The variables that point Claude Code and the SDKs at claude-vcr for a provider (the proxy signs or
    authenticates upstream, so the clients are told to skip their own cloud authentication)."""
    if provider == "bedrock":
        return {
            "CLAUDE_CODE_USE_BEDROCK": "1",
            "ANTHROPIC_BEDROCK_BASE_URL": base_url,
            "CLAUDE_CODE_SKIP_BEDROCK_AUTH": "1",
        }
    if provider == "vertex":
        return {
            "CLAUDE_CODE_USE_VERTEX": "1",
            "ANTHROPIC_VERTEX_BASE_URL": base_url.rstrip("/") + "/v1",  # Vertex base URLs end in /v1
            "CLAUDE_CODE_SKIP_VERTEX_AUTH": "1",
        }
    if provider == "foundry":
        return {
            "CLAUDE_CODE_USE_FOUNDRY": "1",
            "ANTHROPIC_FOUNDRY_BASE_URL": base_url,
        }
    return {"ANTHROPIC_BASE_URL": base_url}


def key_path(path: str) -> str:
    """The path as a key sees it: Bedrock's and Vertex's streaming and non-streaming calls share one key
    (the stream flag is in the path there, as it is in the body for the Messages API)."""
    found = _BEDROCK_MODEL.match(path)
    if found and found.group(2) == "invoke-with-response-stream":
        return path[: found.start(2)] + "invoke" + path[found.end(2) :]
    found = _VERTEX_MODEL.match(path)
    if found and found.group(2) == "streamRawPredict":
        return path[: found.start(2)] + "rawPredict" + path[found.end(2) :]
    return path
