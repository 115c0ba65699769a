"""`claude-vcr conformance --translated` against four translating gateways, one scripted OpenAI upstream.

    python3 tests/benchmarks/peer_conformance.py [--output PEERS.md] [--claude-code PATH]

Each gateway is started on loopback in front of the same scripted OpenAI-compatible upstream
(`tests/support/openai_upstream.py`: text turns, tool calls when tool_choice forces one, a 400 for an empty
request) and sent the whole scenario library (`claude_vcr.conformance`), judged with `translated=True`:
- claude-vcr: this checkout, `--upstream-format openai` (in-process);
- claudish (npm `claudish`, run with Bun from npm; see peer_translation_report.py for its install);
- claude-code-router (npm `@musistudio/claude-code-router`, `ccr start` with a Provider at the upstream);
- LiteLLM's proxy (PyPI `litellm[proxy]` in its own venv under .cache/, `litellm --config`, model
  `*` -> `hosted_vllm/scripted/model-1`: the upstream serves Chat Completions only, like vLLM. With the
  `openai/` provider LiteLLM 1.108 sends /v1/messages to the Responses API, and requests with `thinking`
  still go there with `use_chat_completions_url_for_anthropic_messages` set: 404 from such an upstream.
  Its `/v1/messages` endpoint, with a master key, which LiteLLM requires to start).
A gateway that cannot be installed or started here is reported with the reason. For every scenario a
gateway fails, the same request is replayed through the official `anthropic` SDK (its stream helper) to
see whether the SDK accepts the answer; `--claude-code` also runs the real CLI through each gateway.
Writes markdown to stdout and to --output. Needs npm and PyPI on first run (then cached); not run in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import anthropic  # noqa: E402
from claude_vcr.config import ProxyConfig  # noqa: E402
from claude_vcr.conformance import EXPECTATION_RULES, SCENARIOS, run_claude_code, run_conformance  # noqa: E402
from claude_vcr.conformance.library import BY_NAME, Scenario  # noqa: E402

from tests.benchmarks.peer_translation_report import (  # noqa: E402
    CLAUDISH,
    CLIENT_MODEL,
    install_claudish,
    start_claudish,
)
from tests.support.claude_code import claude_code_binary  # noqa: E402
from tests.support.loopback import LoopThread, free_port, wait_listening  # noqa: E402
from tests.support.openai_upstream import MODEL, OpenAIScript, serve_openai  # noqa: E402
from tests.support.proxies import ProxyHandle  # noqa: E402

CCR = "@musistudio/claude-code-router@2.0.0"
LITELLM = "litellm[proxy]==1.108.7"
CACHE = REPO / ".cache"
LITELLM_KEY = "sk-litellm-peer-report"
"""LiteLLM refuses to start without a master key; every gateway is sent this one (the others ignore it)."""


class Peer:
    """A started gateway: its base URL and how to stop it (None url: why it is not there)."""

    def __init__(self, name: str, url: str | None, note: str, stop: Callable[[], None] = lambda: None):
        self.name, self.url, self.note, self.stop = name, url, note, stop


def _process(command: list[str], env: dict[str, str], port: int, cwd: Path, name: str) -> Peer:
    """Start a gateway process in its own session; a Peer once its port listens, else why not."""
    log = cwd / f"{name}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

    def stop() -> None:
        if process.poll() is None:
            os.killpg(process.pid, 15)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)

    if wait_listening(port, time.monotonic() + 120, alive=lambda: process.poll() is None):
        return Peer(name, f"http://127.0.0.1:{port}", "", stop)
    stop()
    return Peer(name, None, f"did not listen: {log.read_text()[-300:]}")


def install_ccr() -> tuple[Path | None, str]:
    """claude-code-router under .cache/peers/ccr (npm, once); (cli.js, note) or (None, why not)."""
    root = CACHE / "peers" / "ccr"
    cli = root / "node_modules/@musistudio/claude-code-router/dist/cli.js"
    if cli.exists():
        return cli, "already installed"
    root.mkdir(parents=True, exist_ok=True)
    (root / "package.json").write_text(json.dumps({"name": "peer-ccr", "private": True}))
    command = ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", CCR]
    result = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=900)
    if result.returncode != 0 or not cli.exists():
        return None, f"npm install failed: {(result.stderr or result.stdout).strip()[-300:]}"
    return cli, "installed with npm"


def start_ccr(upstream: str, work: Path) -> Peer:
    cli, note = install_ccr()
    if cli is None:
        return Peer("claude-code-router", None, note)
    home = work / "ccr-home"
    (home / ".claude-code-router").mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = {
        "HOST": "127.0.0.1",
        "PORT": port,
        "LOG": False,
        "APIKEY": "",
        "Providers": [
            {
                "name": "scripted",
                "api_base_url": f"{upstream}/chat/completions",
                "api_key": "sk-scripted",
                "models": [MODEL],
            }
        ],
        "Router": {"default": f"scripted,{MODEL}"},
    }
    (home / ".claude-code-router" / "config.json").write_text(json.dumps(config))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "NO_COLOR": "1"}
    return _process(["node", str(cli), "start"], env, port, work, "claude-code-router")


def install_litellm() -> tuple[Path | None, str]:
    """LiteLLM's proxy in its own venv under .cache/litellm-venv (never the main venv)."""
    venv = CACHE / "litellm-venv"
    binary = venv / "bin" / "litellm"
    if binary.exists():
        return binary, "already installed"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", LITELLM]
        result = subprocess.run(pip, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.SubprocessError) as error:
        return None, f"pip install failed: {error}"
    if result.returncode != 0 or not binary.exists():
        return None, f"pip install failed: {(result.stderr or result.stdout).strip()[-300:]}"
    return binary, "installed with pip"


def start_litellm(upstream: str, work: Path) -> Peer:
    binary, note = install_litellm()
    if binary is None:
        return Peer("litellm", None, note)
    config = work / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: '*'\n"
        "    litellm_params:\n"
        f"      model: hosted_vllm/{MODEL}\n"
        f"      api_base: {upstream}\n"
        "      api_key: sk-scripted\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "  use_chat_completions_url_for_anthropic_messages: true\n"
    )
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work / "litellm-home"),
        "LITELLM_LOG": "ERROR",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "NO_DOCS": "True",
        "LITELLM_MASTER_KEY": LITELLM_KEY,
    }
    command = [str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    return _process(command, env, port, work, "litellm")


def start_claudish_peer(upstream: str, work: Path) -> Peer:
    bin_dir, note = install_claudish(CACHE / "peers" / "claudish")
    if bin_dir is None:
        return Peer("claudish", None, note)
    try:
        slots = tuple(sorted({s.request["model"] for s in SCENARIOS if s.request and "model" in s.request}))
        process, url = start_claudish(bin_dir, upstream.removesuffix("/v1"), work, (CLIENT_MODEL, *slots))
    except RuntimeError as error:
        return Peer("claudish", None, str(error))

    def stop() -> None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()

    return Peer("claudish", url, "", stop)


def sdk_accepts(url: str, scenario: Scenario) -> str:
    """Whether the official SDK reads the gateway's answer to this scenario without raising: `yes` / why not."""
    sdk = anthropic.Anthropic(base_url=url, api_key=LITELLM_KEY, max_retries=0, timeout=60)
    request = dict(scenario.request or {})
    betas = [value for name, value in scenario.request_headers if name == "anthropic-beta"]
    try:
        if scenario.path == "/v1/models":
            sdk.models.list()
        elif scenario.path.startswith("/v1/messages/count_tokens"):
            sdk.messages.count_tokens(**request)
        elif not request.pop("stream", False):
            sdk.messages.create(**request)
        elif betas:
            with sdk.beta.messages.stream(**request, betas=betas[0].split(",")) as stream:
                stream.get_final_message()
        else:
            with sdk.messages.stream(**request) as stream:
                stream.get_final_message()
    except anthropic.APIStatusError as error:
        return f"raises {type(error).__name__} ({error.status_code})"
    except Exception as error:  # the SDK's own parse errors are what this column is for
        return f"raises {type(error).__name__}: {str(error)[:80]}"
    return "yes"


def cell(result: Any) -> str:
    errors = Counter(f.rule for f in result.findings if f.severity == "error")
    warnings = Counter(f.rule for f in result.findings if f.severity == "warning")
    parts = [f"E:{r}" for r in sorted(errors)] + [f"W:{r}" for r in sorted(warnings)]
    verdict = "PASS" if result.passed else "**FAIL**"
    return f"{verdict} {' '.join(parts)}".strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, help="also write the markdown report here")
    parser.add_argument("--claude-code", help="the Claude Code CLI (default: tests/node's)")
    args = parser.parse_args()
    claude = args.claude_code or claude_code_binary()

    loop = LoopThread("peer-conformance")
    work = Path(tempfile.mkdtemp(prefix="vcr-peer-conformance-"))
    script = OpenAIScript(numbered=False)
    results: dict[str, list[Any]] = {}
    sdk: dict[tuple[str, str], str] = {}
    claude_runs: dict[str, list[Any]] = {}
    peers: list[Peer] = []
    with serve_openai(loop, script) as upstream:
        config = ProxyConfig(
            db=work / "unused.db",
            mode="passthrough",
            port=0,
            upstream=upstream.url,
            upstream_format="openai",
            model_map=(("claude-*", MODEL),),
        )
        own = ProxyHandle(loop, config)
        peers.append(Peer("claude-vcr", own.url, "this checkout, --upstream-format openai", own.stop))
        peers.append(start_claudish_peer(upstream.url, work))
        peers.append(start_ccr(upstream.url, work))
        peers.append(start_litellm(upstream.url, work))
        try:
            for peer in peers:
                if peer.url is None:
                    continue
                started = time.perf_counter()
                results[peer.name] = run_conformance(peer.url, translated=True, timeout=60, api_key=LITELLM_KEY)
                print(f"{peer.name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
                for result in results[peer.name]:
                    if not result.passed:
                        sdk[(peer.name, result.name)] = sdk_accepts(peer.url, BY_NAME[result.name])
                if claude:
                    claude_runs[peer.name] = run_claude_code(claude, peer.url, timeout=180, api_key=LITELLM_KEY)
        finally:
            for peer in peers:
                peer.stop()
    loop.close()
    print(report(peers, results, sdk, claude_runs, bool(claude)))
    if args.output:
        args.output.write_text(report(peers, results, sdk, claude_runs, bool(claude)))


def report(
    peers: list[Peer],
    results: dict[str, list[Any]],
    sdk: dict[tuple[str, str], str],
    claude_runs: dict[str, list[Any]],
    with_claude: bool,
) -> str:
    names = [p.name for p in peers if p.name in results]
    lines = ["# Gateways under `claude-vcr conformance --translated`", ""]
    lines += [
        "Regenerate: `python3 tests/benchmarks/peer_conformance.py --output PEERS.md`. Every gateway sits in "
        "front of the same scripted OpenAI-compatible upstream on loopback (`tests/support/openai_upstream.py`) "
        f"and gets the {len(SCENARIOS)} scenarios of `claude_vcr.conformance`, judged as translated streams.",
        "",
    ]
    versions = {
        "claude-vcr": "this checkout",
        "claudish": CLAUDISH,
        "claude-code-router": CCR,
        "litellm": LITELLM,
    }
    lines += ["| gateway | version | scenarios passed | with warnings | Claude Code text / Bash turn |"]
    lines += ["| --- | --- | --- | --- | --- |"]
    for peer in peers:
        if peer.name not in results:
            lines.append(f"| {peer.name} | {versions[peer.name]} | not run: {peer.note} | | |")
            continue
        found = results[peer.name]
        passed = sum(r.passed for r in found)
        warned = sum(1 for r in found if r.passed and r.tolerated)
        runs = claude_runs.get(peer.name) or []
        turns = " / ".join("completed" if r.passed else f"FAILED ({r.failures[0].message[:60]})" for r in runs)
        lines.append(
            f"| {peer.name} | {versions[peer.name]} | {passed}/{len(found)} | {warned} | "
            f"{turns or ('-' if not with_claude else 'not run')} |"
        )
    lines += ["", "## Per rule: who breaks it (scenarios affected; E error, W warning)", ""]
    lines += ["| rule | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    per_rule: dict[tuple[str, str], Counter[str]] = {}
    for name in names:
        for result in results[name]:
            for finding in {(f.rule, f.severity) for f in result.findings}:
                per_rule.setdefault(finding, Counter())[name] += 1
    for rule, severity in sorted(per_rule, key=lambda k: (k[1], k[0])):
        counts = per_rule[(rule, severity)]
        row = " | ".join(str(counts[name]) if counts[name] else "" for name in names)
        lines.append(f"| {severity[0].upper()} {rule} | {row} |")
    lines += ["", "## One example of each finding", ""]
    lines += ["| gateway | rule | scenario | message |", "| --- | --- | --- | --- |"]
    for name in names:
        seen: set[str] = set()
        for result in results[name]:
            for finding in result.findings:
                if finding.rule in seen:
                    continue
                seen.add(finding.rule)
                message = finding.message[:150].replace("|", "\\|")
                lines.append(f"| {name} | {finding.severity[0].upper()} {finding.rule} | {result.name} | {message} |")
    lines += ["", "## Per scenario", ""]
    lines += ["| scenario | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for position, scenario in enumerate(SCENARIOS):
        cells = [cell(results[name][position]) for name in names]
        lines.append(f"| {scenario.name} | " + " | ".join(cells) + " |")
    lines += ["", "## Failures: does the official SDK accept the answer?", ""]
    lines += ["| gateway | scenario | failing findings | anthropic SDK |", "| --- | --- | --- | --- |"]
    for name in names:
        for result in results[name]:
            if result.passed:
                continue
            shown = "; ".join(f"{f.rule}: {f.message[:110]}" for f in result.failures[:3])
            lines.append(f"| {name} | {result.name} | {shown} | {sdk.get((name, result.name), '-')} |")
    lines += ["", "X rules (the scenarios' own expectations): "]
    lines += [f"- {rule}: {text}" for rule, text in EXPECTATION_RULES.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
