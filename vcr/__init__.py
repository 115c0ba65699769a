"""claude-vcr: a record/replay proxy for the Anthropic Messages API, with cassettes in one SQLite file.

The names below are the public API: what users may import from `claude_vcr` and rely on. Every module is an
implementation detail. Names load on first use, so `import claude_vcr` stays cheap and the read-only
commands never import aiohttp.

    import claude_vcr

    config = claude_vcr.ProxyConfig(db="vcr.db", mode="replay", cassette="my_tests", port=0)
    async with claude_vcr.running(config) as proxy:      # the proxy in-process, on a free port
        ...  # point a client at proxy.url

    with claude_vcr.Catalog.open("vcr.db") as catalog:   # the read side
        print([c.name for c in catalog.cassettes()])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_PUBLIC = {
    # running the proxy in-process
    "ProxyConfig": ".config",
    "running": ".proxy",
    "RunningProxy": ".proxy",
    "serve": ".proxy",
    # tests and scripts: a cassette for a block, the proxy on its own thread
    "use_cassette": ".harness",
    "CassetteUse": ".harness",
    # the db: read side, write side, maintenance, what a recording is
    "Catalog": ".catalog",
    "Store": ".store",
    "Recording": ".records",
    "RecordingRow": ".records",
    "compact": ".maintenance",
    # what makes two requests the same
    "Rules": ".matching",
    "load_rules": ".matching",
    "key_request": ".matching",
    # the protocol validators and a recording for a person
    "Finding": ".protocol",
    "validate_response": ".protocol",
    "lint": ".lint",
    "describe": ".describe",
    # the one error hierarchy
    "ClaudeVCRError": ".errors",
    "DatabaseError": ".errors",
    "NoDatabase": ".errors",
    "NotFound": ".errors",
    "Ambiguous": ".errors",
    "InvalidInput": ".errors",
    "RulesError": ".errors",
    "BadCassetteName": ".errors",
    "FormatError": ".errors",
    "ListenError": ".errors",
    "UpstreamError": ".errors",
}

__all__ = [
    "__version__",
    "ProxyConfig",
    "running",
    "RunningProxy",
    "serve",
    "use_cassette",
    "CassetteUse",
    "Catalog",
    "Store",
    "Recording",
    "RecordingRow",
    "compact",
    "Rules",
    "load_rules",
    "key_request",
    "Finding",
    "validate_response",
    "lint",
    "describe",
    "ClaudeVCRError",
    "DatabaseError",
    "NoDatabase",
    "NotFound",
    "Ambiguous",
    "InvalidInput",
    "RulesError",
    "BadCassetteName",
    "FormatError",
    "ListenError",
    "UpstreamError",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562), so importing the package costs nothing."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'claude_vcr' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ loads these on demand
    from .catalog import Catalog
    from .config import ProxyConfig
    from .describe import describe
    from .errors import (
        Ambiguous,
        BadCassetteName,
        ClaudeVCRError,
        DatabaseError,
        FormatError,
        InvalidInput,
        ListenError,
        NoDatabase,
        NotFound,
        RulesError,
        UpstreamError,
    )
    from .harness import CassetteUse, use_cassette
    from .lint import lint
    from .maintenance import compact
    from .matching import Rules, key_request, load_rules
    from .protocol import Finding, validate_response
    from .proxy import RunningProxy, running, serve
    from .records import Recording, RecordingRow
    from .store import Store
