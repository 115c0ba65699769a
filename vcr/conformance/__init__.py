"""A conformance suite for Anthropic-compatible endpoints: the scenario library, its judging, its runner.

`claude-vcr conformance --target URL` sends every scenario's request to a gateway and judges the answers by
the protocol rules (`vcr.protocol`) and each scenario's own expectations (`judge`, rules X1-X9); it needs no
db and writes nothing. `library` holds the scenarios as data (requests, exact API answers, expectations); the
test suite serves those exact answers as an upstream.
"""

from __future__ import annotations

from .judge import EXPECTATION_RULES, judge_answer
from .library import BY_NAME, SCENARIOS, Expect, Scenario
from .runner import (
    ClaudeCodeResult,
    ScenarioResult,
    UnknownScenario,
    conformance_junit,
    conformance_summary,
    run_claude_code,
    run_conformance,
)

__all__ = [
    "BY_NAME",
    "EXPECTATION_RULES",
    "SCENARIOS",
    "ClaudeCodeResult",
    "Expect",
    "Scenario",
    "ScenarioResult",
    "UnknownScenario",
    "conformance_junit",
    "conformance_summary",
    "judge_answer",
    "run_claude_code",
    "run_conformance",
]
