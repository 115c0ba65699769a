"""Running the scenario library against a target, and optionally the real Claude Code CLI through it.

Each scenario's request goes to the target with the scenario's own headers (anthropic-beta where Claude Code
sends it), anthropic-version and an x-api-key from VCR_CONFORMANCE_API_KEY (a placeholder when unset); the
answer is judged by `judge.judge_answer`. Nothing is written anywhere. aiohttp is imported only when
requests are sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cloud_auth import DEFAULT_REGION, CloudCredentials, endpoint
from ..errors import ClaudeVCRError, InvalidInput
from ..protocol import Finding
from ..providers import client_env
from ..report import CheckResult, check_each, junit_xml, send, summary
from ..secrets import redact_url
from .clouds import CloudPlace, cloud_request, has_form, place_from_env
from .judge import judge_answer, no_answer
from .library import BY_NAME, SCENARIOS, Scenario

__all__ = [
    "API_KEY_ENV",
    "ClaudeCodeResult",
    "ScenarioResult",
    "UnknownScenario",
    "conformance_junit",
    "conformance_summary",
    "run_claude_code",
    "run_conformance",
    "select",
]

API_KEY_ENV = "VCR_CONFORMANCE_API_KEY"
PLACEHOLDER_API_KEY = "sk-ant-vcr-conformance-placeholder"
ANTHROPIC_VERSION = "2023-06-01"
CLAUDE_CODE_TIMEOUT = 300.0
MARKER = "vcr-conformance-ok"
BASH_PROMPT = (
    "Use the Bash tool to run the command on the next line exactly as written, then say what it printed.\n"
    f"RUN: echo {MARKER} > conformance-marker.txt && cat conformance-marker.txt"
)
"""A Bash turn any model understands; `RUN:` is also what the test suite's scripted upstream answers with a
Bash call. The file it writes proves the tool ran."""


class UnknownScenario(ClaudeVCRError, ValueError):
    """A --scenario name the library does not have."""


@dataclass
class ScenarioResult(CheckResult):
    """One scenario sent to the target: what came back and what was wrong with it."""

    scenario: Scenario
    url: str
    status: int | None
    elapsed_ms: float
    findings: list[Finding]
    """Protocol findings (no info), then the scenario's expectations."""
    failures: list[Finding] = field(default_factory=list)
    """Errors; with --strict also the model-decided warnings."""

    @property
    def name(self) -> str:
        return self.scenario.name

    @property
    def group(self) -> str:
        return "conformance"

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.name,
            "covers": self.scenario.covers,
            "method": self.scenario.method,
            "path": self.scenario.path,
            **self.result_json(),
        }


@dataclass
class ClaudeCodeResult(CheckResult):
    """One `claude -p` turn through the target: whether Claude Code completed it."""

    turn: str
    url: str
    status: int | None
    """Claude Code's exit code (None: it did not finish in time or could not start)."""
    elapsed_ms: float
    findings: list[Finding]
    failures: list[Finding] = field(default_factory=list)
    output: str = ""

    @property
    def name(self) -> str:
        return f"claude-code {self.turn}"

    @property
    def group(self) -> str:
        return "claude-code"

    def to_json(self) -> dict[str, Any]:
        return {"claude_code": self.turn, **self.result_json()}


def select(names: Iterable[str] = (), provider: str = "anthropic") -> list[Scenario]:
    """The scenarios named (all when none), in library order; an unknown name is an error. On a cloud,
    those without a form there (models; count_tokens on Bedrock) are left out, or an error when named."""
    wanted = list(names)
    unknown = [name for name in wanted if name not in BY_NAME]
    if unknown:
        raise UnknownScenario(
            f"unknown scenario(s) {', '.join(unknown)}; `claude-vcr conformance --list` shows them"
        )
    formless = [name for name in wanted if not has_form(BY_NAME[name], provider)]
    if formless:
        raise UnknownScenario(f"scenario(s) {', '.join(formless)} have no {provider} form")
    chosen = [s for s in SCENARIOS if s.name in wanted] if wanted else list(SCENARIOS)
    return [s for s in chosen if has_form(s, provider)]


def request_headers(scenario: Scenario, api_key: str) -> dict[str, str]:
    headers = {"anthropic-version": ANTHROPIC_VERSION, "x-api-key": api_key}
    if scenario.request is not None:
        headers["content-type"] = "application/json"
    headers.update(dict(scenario.request_headers))
    return headers


async def _send(
    session: Any, scenario: Scenario, target: str, api_key: str, translated: bool, strict: bool
) -> ScenarioResult:
    url = target.rstrip("/") + scenario.path
    answer = await send(session, scenario.method, url, request_headers(scenario, api_key), scenario.request_bytes)
    if answer.error is not None:
        finding = no_answer(url, answer.error)
        return ScenarioResult(scenario, url, None, answer.elapsed_ms, [finding], [finding])
    findings, failures = judge_answer(
        scenario, answer.status, answer.headers, answer.body, translated=translated, strict=strict
    )
    return ScenarioResult(scenario, url, answer.status, answer.elapsed_ms, findings, failures)


async def _send_to_cloud(
    session: Any,
    scenario: Scenario,
    target: str | None,
    place: CloudPlace,
    credentials: CloudCredentials,
    translated: bool,
    strict: bool,
) -> ScenarioResult:
    """The scenario as Bedrock or Vertex takes it, authenticated as the proxy authenticates when recording
    (`cloud_auth`); missing credentials are a CredentialsError for the whole run."""
    from yarl import URL

    sent = cloud_request(scenario, place)
    base = endpoint(place.provider, sent.path, target, credentials.env)
    assert base is not None  # a cloud always has an endpoint
    headers = await credentials.authenticate(
        session, place.provider, sent.method, base, sent.path, list(sent.headers), sent.body
    )
    url = base + sent.path
    answer = await send(session, sent.method, URL(url, encoded=True), headers, sent.body)
    if answer.error is not None:
        finding = no_answer(url, answer.error)
        return ScenarioResult(scenario, url, None, answer.elapsed_ms, [finding], [finding])
    findings, failures = judge_answer(
        scenario, answer.status, answer.headers, answer.body, translated=translated, strict=strict, sent=sent
    )
    return ScenarioResult(scenario, url, answer.status, answer.elapsed_ms, findings, failures)


def claude_code_env(target: str, api_key: str, place: CloudPlace, env: Mapping[str, str]) -> dict[str, str]:
    """What points Claude Code at the target: the first-party base URL and key, or the cloud's variables
    (`providers.client_env`, which skips Claude Code's own cloud authentication: the target, a gateway in
    front of the cloud, authenticates) with the region and project the cloud needs."""
    if place.provider == "anthropic":
        return {"ANTHROPIC_BASE_URL": target, "ANTHROPIC_API_KEY": api_key}
    settings = client_env(place.provider, target)
    if place.provider == "bedrock":
        settings["AWS_REGION"] = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    else:
        settings.update(ANTHROPIC_VERTEX_PROJECT_ID=place.project or "", CLOUD_ML_REGION=place.region)
    if place.model:
        settings["ANTHROPIC_MODEL"] = place.model
    return settings


def _claude_code_turn(
    claude: str, target: str, settings: dict[str, str], turn: str, prompt: str, timeout: float
) -> ClaudeCodeResult:
    """`claude -p` in a fresh home and working directory; CC1 (text) / CC2 (Bash) when it does not complete."""
    rule = "CC1" if turn == "text" else "CC2"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vcr-conformance-claude-") as scratch:
        home, work = Path(scratch, "home"), Path(scratch, "work")
        home.mkdir()
        work.mkdir()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            **settings,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "TERM": "dumb",
        }
        command = [claude, "-p", prompt, "--output-format", "json"]
        if turn == "bash":
            command += ["--allowedTools", "Bash"]
        try:
            done = subprocess.run(
                command,
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            elapsed = (time.perf_counter() - started) * 1000
            what = f"did not finish in {timeout:g} s" if isinstance(error, subprocess.TimeoutExpired) else error
            finding = Finding(rule, "error", None, f"Claude Code {what}")
            return ClaudeCodeResult(turn, target, None, elapsed, [finding], [finding])
        elapsed = (time.perf_counter() - started) * 1000
        marker = work / "conformance-marker.txt"
        ran = marker.exists() and MARKER in marker.read_text(errors="replace")
    problem = _claude_code_problem(done, turn, ran)
    findings = [Finding(rule, "error", None, problem)] if problem else []
    output = (done.stdout or done.stderr).strip()
    return ClaudeCodeResult(turn, target, done.returncode, elapsed, findings, list(findings), output)


def _claude_code_problem(done: subprocess.CompletedProcess, turn: str, ran: bool) -> str | None:
    """Why a Claude Code turn did not complete, or None."""
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else None
    except ValueError:
        result = None
    tail = " ".join((done.stderr or done.stdout or "").split())[-300:]
    if done.returncode != 0 or not isinstance(result, dict):
        return f"Claude Code exited {done.returncode}: {tail or 'no output'}"
    if result.get("is_error") or result.get("subtype") != "success":
        return f"Claude Code reports {result.get('subtype')}: {str(result.get('result'))[:300]}"
    if turn == "bash" and not ran:
        return "Claude Code finished without running the Bash command (no marker file)"
    return None


def run_claude_code(
    claude: str,
    target: str,
    *,
    api_key: str | None = None,
    timeout: float = CLAUDE_CODE_TIMEOUT,
    place: CloudPlace | None = None,
    env: Mapping[str, str] | None = None,
) -> list[ClaudeCodeResult]:
    """The real Claude Code CLI through the target: a text turn, then a Bash tool turn; `place` a cloud's
    when the target serves Claude as Bedrock or Vertex does."""
    key = api_key or os.environ.get(API_KEY_ENV) or PLACEHOLDER_API_KEY
    settings = claude_code_env(target, key, place or CloudPlace("anthropic"), os.environ if env is None else env)
    turns = (("text", "Reply with one short sentence: what is a unit test?"), ("bash", BASH_PROMPT))
    return [_claude_code_turn(claude, target, settings, turn, prompt, timeout) for turn, prompt in turns]


def run_conformance(
    target: str | None,
    *,
    scenarios: Iterable[str] = (),
    translated: bool = False,
    strict: bool = False,
    timeout: float = 120.0,
    api_key: str | None = None,
    claude_code: str | None = None,
    on_result: Callable[[CheckResult], None] | None = None,
    provider: str = "anthropic",
    cloud_model: str | None = None,
    env: Mapping[str, str] | None = None,
) -> list[CheckResult]:
    """Send the scenarios (all, or those named) to `target`, a base URL, and judge each answer; with
    `claude_code` (the CLI's path) also run Claude Code through it. Results in order, one per check.
    `provider` bedrock or vertex: send them as Claude on that cloud takes them (to `target`, or when None
    to the cloud's endpoint; `cloud_model` in the path), authenticated from `env` (os.environ by default)."""
    env = os.environ if env is None else env
    place = place_from_env(provider, cloud_model, env)
    if target is None and place.provider == "anthropic":
        raise InvalidInput("conformance needs --target (only --provider bedrock or vertex has an endpoint of its own)")
    if target is not None and not target.startswith(("http://", "https://")):
        raise ValueError(f"{redact_url(target)!r} is not an http:// or https:// URL")
    if claude_code is not None and target is None:
        raise InvalidInput("--claude-code needs --target: a gateway that authenticates to the cloud for Claude Code")
    chosen = select(scenarios, place.provider)
    if place.provider == "anthropic":
        assert target is not None
        key = api_key or os.environ.get(API_KEY_ENV) or PLACEHOLDER_API_KEY

        def check(session: Any, scenario: Scenario) -> Any:
            return _send(session, scenario, target, key, translated, strict)
    else:
        for scenario in chosen:  # a missing project is one line before anything is sent
            cloud_request(scenario, place)
        credentials = CloudCredentials(env)

        def check(session: Any, scenario: Scenario) -> Any:
            return _send_to_cloud(session, scenario, target, place, credentials, translated, strict)

    results = asyncio.run(check_each(chosen, check, timeout, on_result))
    if claude_code is not None:
        assert target is not None
        for result in run_claude_code(claude_code, target, api_key=api_key, place=place, env=env):
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def conformance_summary(results: Sequence[CheckResult], target: str) -> str:
    """The last line of `claude-vcr conformance`."""
    warned = sum(1 for r in results if r.passed and r.tolerated)
    line = summary(results, target, f"Checked {len(results):,} scenario(s)")
    return f"{line} ({warned:,} passed with warnings)" if warned else line


def conformance_junit(results: Sequence[CheckResult], target: str) -> str:
    return junit_xml(results, target, "claude-vcr conformance")
