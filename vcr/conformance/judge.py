"""Judging a target's answer to one scenario: the protocol rules, then the scenario's own expectations.

The protocol rules are `vcr.protocol.validate_response`'s (PROTOCOL.md ids: S4, F2, M8, ...), with the
scenario's request and headers as context; `translated` grades what a translating target cannot produce
(thinking signatures, exact input token counts) as PROTOCOL.md grades translated streams. The expectations
(`library.Expect`) add rules X1-X9:

   X1  E  no answer: connection refused, timeout, or the body broke off
   X2  E  the wrong kind of answer: an error where a Message is due (an error status or an `error` event),
          a 2xx or 5xx where the request is invalid (4xx due), a count_tokens or models error other than 404
   X3  E  a stream:false request answered with an event stream
   X4  E  tool_choice forces a tool and the answer does not call it
   X5  W  stop_reason is not the one the scenario leads to (end_turn, tool_use, max_tokens, ...)
   X6  W  a tool the scenario asks for is not called
   X7  W  thinking is enabled and the answer has no thinking block
   X8  W  no text in the answer where the scenario asks for some
   X9  W  count_tokens or models answered 404: not served. Claude Code's gateway protocol makes both optional
          (PROTOCOL.md W.9: count_tokens optional; W.11: models only with gateway model discovery)

W rules are what only the model decides (which text, which tool when not forced, when it stops): a
different model answers differently, so they warn. Protocol errors and E expectations fail a scenario;
warnings (these and the protocol's: F2 `[DONE]`, H1 no request-id, ...) are shown as tolerated, and fail
it too with `strict`, except those the scenario's own rules allow (`Scenario.lint_warnings`: a max_tokens
cut leaves a tool block open, S7, with its JSON cut short, B4).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .. import eventstream
from ..protocol import Finding, validate_response
from ..sse import MessageFold, is_stream, parse_sse
from .clouds import CloudRequest
from .library import Scenario

__all__ = ["EXPECTATION_RULES", "judge_answer", "no_answer"]

EXPECTATION_RULES = {
    "X1": "no answer: connection refused, timeout, or the body broke off",
    "X2": "the wrong kind of answer (an error where a Message is due, a success where a 4xx is due)",
    "X3": "a stream:false request answered with an event stream",
    "X4": "tool_choice forces a tool and the answer does not call it",
    "X5": "stop_reason is not the one the scenario leads to (model-decided)",
    "X6": "a tool the scenario asks for is not called (model-decided)",
    "X7": "thinking is enabled and the answer has no thinking block (model-decided)",
    "X8": "no text in the answer where the scenario asks for some (model-decided)",
    "X9": "count_tokens or models not served (404): optional for a gateway",
}
MODEL_DECIDED = frozenset({"X5", "X6", "X7", "X8"})
WARNINGS = MODEL_DECIDED | {"X9"}
Headers = Sequence[tuple[str, str]]


def no_answer(url: str, reason: str) -> Finding:
    """X1: what a transport failure is reported as."""
    return Finding("X1", "error", None, f"no answer from {url}: {reason}")


def _folded(headers: Headers, body: bytes) -> tuple[dict[str, Any] | None, Any]:
    """(the Message the answer stands for, the error it carries): streams folded tolerantly, JSON parsed."""
    if is_stream(headers, body):
        fold = MessageFold(strict=False).feed(parse_sse(body))
        message = fold.finish() if fold.started else None
        return message, fold.error
    try:
        parsed = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(parsed, dict):
        return None, None
    if parsed.get("type") == "error":
        return None, parsed.get("error")
    return parsed, None


def _error_name(error: Any) -> str:
    return str(error.get("type")) if isinstance(error, dict) else "an error"


def _expectations(scenario: Scenario, status: int, headers: Headers, body: bytes) -> list[Finding]:
    """X2-X8 for one answer (see the module docstring)."""
    expect = scenario.expect
    found: list[Finding] = []

    def add(rule: str, message: str) -> None:
        found.append(Finding(rule, "warning" if rule in WARNINGS else "error", None, message))

    if expect.answer == "client_error":
        if not 400 <= status < 500:
            add("X2", f"answered {status}; an invalid request must get a 4xx Anthropic error")
        return found
    if expect.answer in ("count", "models"):
        if status == 404:
            add("X9", f"{scenario.path.split('?')[0]} is not served (404); optional for a gateway")
        elif status != 200:
            add("X2", f"answered {status}, not 200")
        return found
    if status >= 400:
        if expect.answer != "any":
            add("X2", f"answered {status} ({_error_name(_folded(headers, body)[1])}), not a Message")
        return found
    streamed = is_stream(headers, body)
    if streamed and not scenario.stream:
        add("X3", "a stream:false request answered with an event stream")
    message, error = _folded(headers, body)
    if error is not None:
        if expect.answer != "any":
            add("X2", f"the answer carries {_error_name(error)}, not a Message")
        return found
    if message is None:
        return found  # unreadable: the protocol rules say why
    blocks = [b for b in message.get("content") or [] if isinstance(b, dict)]
    called = [b.get("name") for b in blocks if b.get("type") in ("tool_use", "server_tool_use")]
    if expect.forced_tool and expect.forced_tool not in called:
        add("X4", f"tool_choice forces {expect.forced_tool}; the answer calls {called or 'no tool'}")
    stop = message.get("stop_reason")
    if expect.stop_reasons and stop not in expect.stop_reasons:
        add("X5", f"stop_reason is {stop!r}, expected {' or '.join(sorted(expect.stop_reasons))}")
    missing = [name for name in expect.tools if name not in called and name != expect.forced_tool]
    if missing:
        add("X6", f"{', '.join(missing)} not called (called: {', '.join(map(str, called)) or 'none'})")
    if expect.thinking and not any(b.get("type") in ("thinking", "redacted_thinking") for b in blocks):
        add("X7", "thinking is enabled and the answer has no thinking block")
    if expect.text and not any(b.get("type") == "text" and b.get("text") for b in blocks):
        add("X8", "no text in the answer")
    return found


def judge_answer(
    scenario: Scenario,
    status: int,
    headers: Headers,
    body: bytes,
    *,
    translated: bool = False,
    strict: bool = False,
    sent: CloudRequest | None = None,
) -> tuple[list[Finding], list[Finding]]:
    """(findings, failures) for a target's answer to a scenario's request; no network, so tests can call it.
    Findings: protocol findings (no info), then expectations. Failures: every error, and with `strict` every
    warning the scenario does not allow. `sent`: the request as a cloud took it (Bedrock, Vertex): the
    protocol rules judge the answer on its path, the expectations the Anthropic events it carries."""
    protocol = validate_response(
        sent.path if sent else scenario.path,
        status,
        headers,
        body,
        sent.body if sent else scenario.request_bytes,
        request_headers=sent.headers if sent else scenario.request_headers,
        translated=translated,
    )
    findings = [f for f in protocol if f.severity != "info"]
    if eventstream.is_framed(list(headers)):  # a damaged frame is the protocol rules' A1
        body = eventstream.to_sse(body)[0]
        headers = [("content-type", "text/event-stream")]
    findings += _expectations(scenario, status, headers, body)
    failures = [
        f
        for f in findings
        if f.severity == "error" or (strict and f.rule not in scenario.lint_warnings)
    ]
    return findings, failures
