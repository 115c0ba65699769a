"""Real Claude Code requests (tests/data/claude-code, from shared/samples), and the same moved elsewhere."""

from __future__ import annotations

import json

from tests.support import REPO

SAMPLES = REPO / "tests" / "data" / "claude-code"


def sample(name: str) -> dict:
    return json.loads((SAMPLES / f"{name}.json").read_text())["body"]


def relocated(body: dict, cwd: str, home: str) -> dict:
    """The same request as Claude Code would send it from another directory and HOME."""
    text = json.dumps(body)
    text = text.replace("/home/dev/shop-app", cwd).replace("-home-dev-shop-app", cwd.replace("/", "-"))
    return json.loads(text.replace("/home/dev", home))
