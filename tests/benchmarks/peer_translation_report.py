"""Which Anthropic protocol rules a translating proxy breaks: claude-vcr's OpenAI adapter beside claudish.

    python3 tests/benchmarks/peer_translation_report.py [--peer-dir .cache/peers/claudish] [--output FILE]

Both proxies are pointed at the same scripted OpenAI-compatible upstream (`tests/support/openai_upstream.py`, on
loopback) and sent the same Anthropic requests: text, fragmented / parallel / one-chunk / id-less tool calls,
reasoning in two dialects, every finish_reason, cached and missing usage, silences, count_tokens, models,
upstream errors before and during the stream, invalid tool JSON.

Two judgments, printed as markdown:
1. `claude-vcr verify`: the answerable scenarios are recorded through claude-vcr's adapter into a temp db, then
   `python -m claude_vcr verify --target URL --json` replays them against each proxy (protocol rules + comparison
   with the recording, rules V1-V10). Failures mid-stream cannot be recorded (claude-vcr stores no broken
   stream), so they are only in part 2.
2. Direct: each scenario sent to each proxy, its answer checked by `vcr.protocol.validate_response` with
   `translated=True` (B8 is a warning for a translated stream), errors and warnings by rule.

claudish (npm `claudish`, needs Bun: npm `bun` ships the binary) is installed into --peer-dir on first use,
with an npm override for its pinned `@1password/sdk` beta that the registry no longer serves; it runs as
`claudish serve` with its vLLM provider (`VLLM_BASE_URL`) aimed at the scripted upstream, no key, no network.
Not run in CI.
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
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402
from claude_vcr import sse  # noqa: E402
from claude_vcr.config import ProxyConfig  # noqa: E402
from claude_vcr.protocol import validate_response  # noqa: E402

from tests.support.loopback import LoopThread, free_port, wait_listening  # noqa: E402
from tests.support.openai_upstream import MODEL, OpenAIScript, serve_openai  # noqa: E402
from tests.support.proxies import ProxyHandle  # noqa: E402
from tests.support.sdk_calls import BASH_TOOL as BASH  # noqa: E402

CLAUDISH = "claudish@10.1.1"
BUN = "bun@1.4.4"
CLIENT_MODEL = "claude-opus-5-5"
PING_INTERVAL = 1.0
SLOW_SECONDS = 2.5
WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def messages_request(text: str, *, stream: bool = True, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": CLIENT_MODEL,
        "max_tokens": 512,
        "messages": [{"role": "user", "content": text}],
        "tools": [WEATHER, BASH],
    }
    if stream:
        body["stream"] = True
    body.update(extra)
    return body


TOOL_RESULT = {
    "model": CLIENT_MODEL,
    "max_tokens": 512,
    "stream": True,
    "tools": [BASH],
    "messages": [
        {"role": "user", "content": "Please RUN:echo hi"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_call_1", "name": "Bash", "input": {"command": "echo hi"}}
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_call_1", "content": "hi", "is_error": True}
            ],
        },
    ],
}

FIDELITY = {
    "model": CLIENT_MODEL,
    "max_tokens": 300,
    "temperature": 0.2,
    "stop_sequences": ["END"],
    "stream": True,
    "system": [{"type": "text", "text": "Be terse."}],
    "thinking": {"type": "enabled", "budget_tokens": 8000},
    "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    **{key: TOOL_RESULT[key] for key in ("tools", "messages")},
}
"""One request carrying every parameter the issue lists, to see what each proxy sends upstream."""
FIDELITY_FIELDS = {
    "model": "scripted/model-1 (mapped)",
    "max_tokens": "300",
    "temperature": "0.2",
    "top_p": "(not sent)",
    "top_k": "(not sent)",
    "min_p": "(not sent)",
    "stop": '["END"]',
    "tool_choice": '"required"',
    "parallel_tool_calls": "false",
    "reasoning_effort": '"medium" (budget 8000)',
    "reasoning": "(either this or reasoning_effort)",
    "stream_options": '{"include_usage": true}',
    "tool message": 'content marks the error ("Error: hi")',
}
RULES = {
    "B4": "tool input JSON does not parse to an object at block stop",
    "B7": "tool_use id does not start with toolu_ (or is reused)",
    "B8": "thinking block without one non-empty signature_delta before its stop",
    "D1": "models list entries lack type/display_name/created_at",
    "E1": "error event shape",
    "E3": "error body type not an Anthropic error type, or not the one its status pairs with",
    "E4": "429/529 without retry-after",
    "F2": "`data: [DONE]` or other non-JSON data in the stream",
    "H1": "no request-id header (req_...)",
    "M4": "message_delta input_tokens differ from message_start's (estimate vs. upstream count)",
    "M8": "placeholder usage (zero, or 100/1)",
    "S2": "stream does not end with message_stop or error",
    "V1": "status or body kind differs from the recording",
    "V2": "stream shape (blocks, delta kinds) differs from the recording",
    "V3": "a block means something else (text, tool input, id prefix, signature)",
    "V4": "stop_reason / stop_sequence differs",
    "V5": "usage missing, zero where the recording is not, or a placeholder",
    "V7": "another error (or none) where the recording had one",
    "V8": "other JSON differs (count_tokens, models)",
    "V9": "a header the recording carried (request-id, retry-after) is missing",
}

SCENARIOS: list[tuple[str, str, str, dict[str, Any] | None, bool]] = [
    # (name, method, path, body, recordable)
    ("text", "POST", "/v1/messages", messages_request("Hello"), True),
    ("text, non-streaming", "POST", "/v1/messages", messages_request("Hello", stream=False), True),
    ("tool call, 7-char fragments", "POST", "/v1/messages", messages_request("Please RUN:echo hi"), True),
    (
        "tool call, non-streaming",
        "POST",
        "/v1/messages",
        messages_request("Please RUN:echo hi", stream=False),
        True,
    ),
    ("parallel calls, interleaved", "POST", "/v1/messages", messages_request("PARALLEL weather"), True),
    (
        "call + finish + usage in one chunk",
        "POST",
        "/v1/messages",
        messages_request("ONECHUNK weather"),
        True,
    ),
    ("call with no id", "POST", "/v1/messages", messages_request("NOID weather"), True),
    ("tool_result (error) turn", "POST", "/v1/messages", TOOL_RESULT, True),
    ("reasoning_content", "POST", "/v1/messages", messages_request("REASONING"), True),
    ("reasoning, two segments", "POST", "/v1/messages", messages_request("OPENROUTER"), True),
    ("finish_reason length", "POST", "/v1/messages", messages_request("LENGTH"), True),
    ("finish_reason content_filter", "POST", "/v1/messages", messages_request("FILTER"), True),
    (
        "stop sequence (vLLM stop_reason)",
        "POST",
        "/v1/messages",
        messages_request("STOPSEQ", stop_sequences=["END"]),
        True,
    ),
    ("cached prompt tokens", "POST", "/v1/messages", messages_request("CACHED"), True),
    ("no usage chunk", "POST", "/v1/messages", messages_request("NOUSAGE"), True),
    ("no [DONE]", "POST", "/v1/messages", messages_request("NODONE"), True),
    (f"{SLOW_SECONDS:g} s upstream silence", "POST", "/v1/messages", messages_request("SLOW"), True),
    (
        "count_tokens",
        "POST",
        "/v1/messages/count_tokens?beta=true",
        messages_request("Hello", stream=False),
        True,
    ),
    ("models", "GET", "/v1/models", None, True),
    ("429 before the stream", "POST", "/v1/messages", messages_request("STATUS:429"), True),
    ("401 before the stream", "POST", "/v1/messages", messages_request("STATUS:401"), True),
    ("500 before the stream", "POST", "/v1/messages", messages_request("STATUS:500"), True),
    ("connection cut mid-stream", "POST", "/v1/messages", messages_request("MIDFAIL"), False),
    ("error chunk mid-stream", "POST", "/v1/messages", messages_request("MIDERROR"), False),
    ("invalid tool JSON", "POST", "/v1/messages", messages_request("BADJSON weather"), False),
]


def install_claudish(peer_dir: Path) -> tuple[Path | None, str]:
    """claudish and bun under peer_dir (npm, once); (bin dir, note) or (None, why not)."""
    bin_dir = peer_dir / "node_modules" / ".bin"
    if (bin_dir / "claudish").exists() and (bin_dir / "bun").exists():
        return bin_dir, "already installed"
    peer_dir.mkdir(parents=True, exist_ok=True)
    manifest = {
        "name": "claude-vcr-peer-claudish",
        "private": True,
        "dependencies": {"claudish": CLAUDISH.split("@")[1], "bun": BUN.split("@")[1]},
        "overrides": {"@1password/sdk": "0.4.1"},
    }
    (peer_dir / "package.json").write_text(json.dumps(manifest, indent=1))
    command = ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"]
    try:
        result = subprocess.run(command, cwd=peer_dir, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as error:
        return None, f"npm install failed: {error}"
    if result.returncode != 0 or not (bin_dir / "claudish").exists():
        return None, f"npm install failed: {(result.stderr or result.stdout).strip()[-400:]}"
    return bin_dir, "installed with npm"


def start_claudish(
    bin_dir: Path, upstream_root: str, work: Path, slots: tuple[str, ...] = (CLIENT_MODEL,)
) -> tuple[subprocess.Popen[str], str]:
    """`claudish serve` on a free port, its vLLM provider aimed at the scripted upstream for these models."""
    models = work / "claudish-models.json"
    models.write_text(json.dumps([{"slot": slot, "model": f"vllm@{MODEL}"} for slot in slots]))
    home = work / "claudish-home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home),
        "VLLM_BASE_URL": upstream_root,
        "CLAUDISH_TELEMETRY": "0",
        "CLAUDISH_STATS": "0",
        "CLAUDISH_DISABLE_OP": "1",
        "CLAUDISH_DISABLE_KEYCHAIN": "1",
        "CLAUDISH_DISABLE_CATALOG_WARM": "1",
        "NO_COLOR": "1",
    }
    port = free_port()
    process = subprocess.Popen(
        [str(bin_dir / "claudish"), "serve", "--port", str(port), "--models", str(models)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    if wait_listening(port, time.monotonic() + 60, alive=lambda: process.poll() is None):
        return process, f"http://127.0.0.1:{port}"
    if process.poll() is not None:
        raise RuntimeError(f"claudish serve exited: {process.stdout.read() if process.stdout else ''}")
    process.terminate()
    raise RuntimeError("claudish serve did not listen within 60 s")


async def send(
    url: str, method: str, path: str, body: dict[str, Any] | None
) -> tuple[int | None, list[tuple[str, str]], bytes, str]:
    """One request; (status, headers, body, transport note)."""
    headers = {
        "x-api-key": "sk-ant-report-placeholder",
        "anthropic-version": "2023-06-01",
        "content-type": "application/json",
    }
    timeout = aiohttp.ClientTimeout(total=60)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            data = json.dumps(body).encode() if body is not None else None
            async with session.request(method, url + path, data=data, headers=headers) as response:
                parts, note = [], ""
                try:
                    while chunk := await response.content.readany():
                        parts.append(chunk)
                except aiohttp.ClientPayloadError:
                    note = "body broke off"
                return response.status, list(response.headers.items()), b"".join(parts), note
    except (aiohttp.ClientError, TimeoutError, OSError) as error:
        return None, [], b"", f"no answer: {error!r}"


def judge(
    method: str,
    path: str,
    body: dict[str, Any] | None,
    answer: tuple[int | None, list[tuple[str, str]], bytes, str],
) -> str:
    """`rule(count)` lists for errors and warnings, translated=True, plus what the stream ended with."""
    status, headers, raw, note = answer
    if status is None:
        return f"**{note}**"
    request = json.dumps(body).encode() if body is not None else b""
    findings = validate_response(path, status, headers, raw, request, translated=True)
    parts = []
    for severity, mark in (("error", "E"), ("warning", "W")):
        counts = Counter(f.rule for f in findings if f.severity == severity)
        if counts:
            parts.append(
                " ".join(f"{mark}:{rule}" + (f"x{n}" if n > 1 else "") for rule, n in sorted(counts.items()))
            )
    tail = raw.rstrip().rsplit(b"\n", 1)[-1][:70].decode(errors="replace") if raw else ""
    if b"event: error" in raw:
        parts.append("error event")
    elif "[DONE]" in tail:
        parts.append("ends `data: [DONE]`")
    if note:
        parts.append(note)
    return f"{status} " + ("; ".join(parts) if parts else "clean")


def outcome(answer: tuple[int | None, list[tuple[str, str]], bytes, str]) -> str:
    """What the client ends up with: blocks and stop reason, an error event, or an error body."""
    status, headers, raw, _ = answer
    if status is None:
        return "-"
    content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
    try:
        if content_type.startswith("text/event-stream"):
            message = sse.accumulate(sse.parse_sse(raw))
        else:
            message = json.loads(raw)
    except sse.StreamError as error:
        kind = error.error.get("type") if isinstance(error.error, dict) else error.error
        return f"error event `{kind}`"
    except ValueError as error:
        return f"unreadable: {str(error)[:50]}"
    if not isinstance(message, dict):
        return "?"
    if message.get("type") == "error":
        return f"{status} `{(message.get('error') or {}).get('type')}`"
    if message.get("type") != "message":
        return "JSON"
    blocks = []
    for block in message.get("content") or []:
        name = block.get("type", "?")
        if name == "tool_use":
            name += f" {block.get('id', '')[:6]}… {json.dumps(block.get('input'))[:24]}"
        blocks.append(name)
    usage = message.get("usage") or {}
    pings = raw.count(b"event: ping")
    shown = f"{' + '.join(blocks) or '(empty)'} / {message.get('stop_reason')}"
    shown += f" / in {usage.get('input_tokens')} out {usage.get('output_tokens')}"
    return shown + (f" / {pings} ping(s)" if content_type.startswith("text/event-stream") else "")


def fidelity(call: dict[str, Any]) -> dict[str, str]:
    """The FIDELITY_FIELDS of a Chat Completions request as the upstream got it."""
    shown = {
        key: json.dumps(call[key]) if key in call else "(not sent)"
        for key in FIDELITY_FIELDS
        if key != "tool message"
    }
    tool = next((m for m in call.get("messages", []) if m.get("role") == "tool"), None)
    shown["tool message"] = json.dumps(tool.get("content")) if tool else "(none)"
    return shown


def verify(db: Path, target: str) -> tuple[list[dict[str, Any]] | None, str]:
    """`python -m claude_vcr verify --json` against a target: (results, note)."""
    command = [
        sys.executable,
        "-m",
        "claude_vcr",
        "verify",
        "--target",
        target,
        "--db",
        str(db),
        "--json",
        "--timeout",
        "60",
    ]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)
    try:
        return json.loads(result.stdout), ""
    except ValueError:
        return None, (result.stderr or result.stdout).strip()[-300:]


def verify_cell(result: dict[str, Any]) -> str:
    failures = result.get("failures") or []
    if not failures:
        return "PASS"
    rules = Counter(f"{f['rule']}" for f in failures)
    return "FAIL " + " ".join(f"{rule}" + (f"x{n}" if n > 1 else "") for rule, n in sorted(rules.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer-dir", type=Path, default=REPO / ".cache" / "peers" / "claudish")
    parser.add_argument("--output", type=Path, help="also write the markdown report here")
    args = parser.parse_args()

    loop = LoopThread("peer-report")
    work = Path(tempfile.mkdtemp(prefix="vcr-peer-report-"))
    script = OpenAIScript(slow_seconds=SLOW_SECONDS, numbered=False)
    lines: list[str] = []
    with serve_openai(loop, script) as upstream:
        upstream_root = upstream.url.removesuffix("/v1")
        db = work / "peer.db"

        def adapter(mode: str) -> ProxyHandle:
            config = ProxyConfig(
                db=db,
                mode=mode,
                port=0,
                cassette="peer",
                upstream=upstream.url,
                upstream_format="openai",
                model_map=(("claude-*", MODEL),),
                ping_interval=PING_INTERVAL,
                record_errors=True,
            )
            return ProxyHandle(loop, config)

        recorder = adapter("record")
        for _, method, path, body, recordable in SCENARIOS:
            if recordable:
                loop.run(send(recorder.url, method, path, body), timeout=120)
        recorder.stop()

        live = adapter("passthrough")
        targets: dict[str, str] = {"claude-vcr": live.url}
        bin_dir, install_note = install_claudish(args.peer_dir)
        process = None
        peer_note = f"claudish {CLAUDISH.split('@')[1]} ({install_note})"
        if bin_dir is not None:
            try:
                process, targets["claudish"] = start_claudish(bin_dir, upstream_root, work)
            except RuntimeError as error:
                peer_note = f"claudish could not be started: {error}"
        else:
            peer_note = f"claudish could not be installed: {install_note}"
        try:
            direct = {
                name: [
                    loop.run(send(url, method, path, body), timeout=120)
                    for _, method, path, body, _ in SCENARIOS
                ]
                for name, url in targets.items()
            }
            verified = {name: verify(db, url) for name, url in targets.items()}
            sent: dict[str, dict[str, str]] = {}
            for name, url in targets.items():
                before = len(script.calls)
                loop.run(send(url, "POST", "/v1/messages", FIDELITY), timeout=120)
                chats = [c.body for c in script.calls[before:] if c.path.endswith("/chat/completions")]
                sent[name] = fidelity(chats[-1]) if chats else {}
        finally:
            if process is not None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
            live.stop()
    loop.close()

    names = list(targets)
    lines += ["# Translating proxies against one scripted OpenAI-compatible upstream", ""]
    lines += [
        f"Peers: {peer_note}. claude-vcr: this checkout, `--upstream-format openai`, ping every {PING_INTERVAL:g} s.",
        "",
    ]
    lines += ["## 1. `claude-vcr verify` (recorded through claude-vcr, replayed against each)", ""]
    lines += [
        "claude-vcr against its own recordings is the baseline: it shows the upstream is deterministic.",
        "",
    ]
    for name in names:
        results, note = verified[name]
        if results is None:
            lines.append(f"- {name}: verify did not run: {note}")
        else:
            passed = sum(1 for r in results if r["passed"])
            lines.append(f"- {name}: {passed}/{len(results)} recordings pass")
    lines += ["", "| recording | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    rows: dict[str, dict[str, str]] = {}
    for name in names:
        for result in verified[name][0] or []:
            label = f"{result['method']} {result['path']} #{result['short_key']}"
            rows.setdefault(label, {})[name] = verify_cell(result)
    for label, cells in rows.items():
        lines.append(f"| {label} | " + " | ".join(cells.get(name, "-") for name in names) + " |")
    lines += [
        "",
        "## 2. Direct: protocol rules broken per scenario (`validate_response`, translated=True)",
        "",
    ]
    lines += ["| scenario | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    totals: dict[str, Counter[str]] = {name: Counter() for name in names}
    for position, (scenario, method, path, body, _) in enumerate(SCENARIOS):
        cells = []
        for name in names:
            cell = judge(method, path, body, direct[name][position])
            cells.append(cell)
            for token in cell.split():
                if token[:2] in ("E:", "W:"):
                    totals[name][token.split("x")[0].rstrip(";")] += 1
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    lines += ["", "## 3. What the client ends up with (blocks / stop_reason / usage, or the error)", ""]
    lines += ["| scenario | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for position, (scenario, *_rest) in enumerate(SCENARIOS):
        lines.append(
            f"| {scenario} | " + " | ".join(outcome(direct[name][position]) for name in names) + " |"
        )
    lines += ["", "## 4. What reaches the upstream for one request with every parameter", ""]
    lines += [
        "Anthropic request: max_tokens 300, temperature 0.2, stop_sequences [END], system, thinking budget 8000,"
    ]
    lines += ["tool_choice any + disable_parallel_tool_use, and a tool_result with is_error.", ""]
    lines += ["| field | expected | " + " | ".join(names) + " |", "| --- | --- |" + " --- |" * len(names)]
    for field_name, expected in FIDELITY_FIELDS.items():
        cells = [sent[name].get(field_name, "-") for name in names]
        lines.append(f"| {field_name} | {expected} | " + " | ".join(f"`{cell}`" for cell in cells) + " |")
    lines += ["", "## Rules broken (scenarios affected)", ""]
    for name in names:
        summary = ", ".join(f"{rule} ({n})" for rule, n in sorted(totals[name].items())) or "none"
        lines.append(f"- {name}: {summary}")
    seen = sorted({rule.split(":")[-1] for counter in totals.values() for rule in counter})
    seen += sorted(
        {f["rule"] for results, _ in verified.values() for r in results or [] for f in r["failures"]}
        - set(seen)
    )
    lines += [
        "",
        "Rule ids are PROTOCOL.md's (E: error, W: warning); V-rules are `claude-vcr verify`'s comparison:",
        "",
    ]
    lines += [f"- {rule}: {RULES.get(rule, '(see PROTOCOL.md / vcr.verify)')}" for rule in seen]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
