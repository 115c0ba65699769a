"""Key cost of a 49 KB Claude Code request: the claude-code preset's versions 3 and 4 (the conversation) against
version 2 (the keys before the conversation) and no preset, measured in the same run; prints markdown."""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from claude_vcr.matching import Rules, key_request  # noqa: E402

SAMPLES = Path("/work/shared/samples/claude-code")
TARGET = 1.2
"""Versions 3 and 4 may cost at most 1.2x version 2 (issue 22)."""


def body(name: str) -> bytes:
    data = json.loads((SAMPLES / f"{name}.json").read_text())
    raw = data["body"]
    return raw.encode() if isinstance(raw, str) else json.dumps(raw).encode()


def per_key_ms(payload: bytes, rules: Rules, rounds: int = 7, loops: int = 60) -> float:
    """Median over rounds of the mean time per key, in ms (one round warms up)."""
    results = []
    for _ in range(rounds + 1):
        started = time.perf_counter()
        for _ in range(loops):
            key_request("POST", "/v1/messages", "beta=true", payload, rules)
        results.append((time.perf_counter() - started) * 1000 / loops)
    return statistics.median(results[1:])


def main() -> None:
    cases = {
        "no preset (exact)": Rules(),
        "claude-code v2 (before)": Rules(presets=("claude-code",), versions=(("claude-code", 2),)),
        "claude-code v3 (conversation)": Rules(presets=("claude-code",), versions=(("claude-code", 3),)),
        "claude-code v4 (the default)": Rules(presets=("claude-code",), versions=(("claude-code", 4),)),
    }
    print("### Keying a Claude Code request: preset versions 3 and 4 against version 2, same run\n")
    for sample in ("text-turn", "tool-turn-2"):
        payload = body(sample)
        print(f"`{sample}.json` ({len(payload) / 1024:.0f} KB):\n")
        print("| rules | ms per key (median of 7 rounds) | vs v2 |\n| --- | ---: | ---: |")
        timings = {name: per_key_ms(payload, rules) for name, rules in cases.items()}
        before = timings["claude-code v2 (before)"]
        for name, ms in timings.items():
            print(f"| {name} | {ms:.2f} | {ms / before:.2f}x |")
        ratio = max(timings["claude-code v3 (conversation)"], timings["claude-code v4 (the default)"]) / before
        print(f"\nTarget: v3 and v4 at most {TARGET}x v2; measured {ratio:.2f}x: {'met' if ratio <= TARGET else 'NOT met'}.\n")


if __name__ == "__main__":
    main()
