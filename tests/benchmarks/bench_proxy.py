"""Replay throughput against peers, record overhead, storage and memory: ratios measured in one run.

Run through `python3 tests/benchmarks/run.py` (writes BENCHMARKS.md) or alone:
`python3 tests/benchmarks/bench_proxy.py [replay|record|storage|memory]`.
Needs wrk (Debian), mitmdump (.cache/mitm-venv, see tests/install.sh) and proxay (npm, installed into
.cache/proxay on first use). Every server listens on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from aiohttp import web  # noqa: E402

from tests.support.loopback import LoopbackServer, LoopThread, free_port, serving, wait_listening  # noqa: E402

SAMPLE = REPO / "tests" / "data" / "claude-code" / "text-turn.json"
TARGET = "/v1/messages?beta=true"
CONNECTIONS = 16
DURATION = int(os.environ.get("VCR_BENCH_SECONDS", "8"))
ROUNDS = int(os.environ.get("VCR_BENCH_ROUNDS", "3"))
BASELINE = os.environ.get("VCR_BENCH_BASELINE")
"""A python whose `claude_vcr` is other code (an older checkout's venv): replayed and counted alongside."""
STATIC = "static aiohttp (ceiling)"
OURS = "claude-vcr replay"
BASELINE_NAME = "claude-vcr replay, baseline code"


def wait_port(port: int, timeout: float = 30.0) -> None:
    if not wait_listening(port, time.monotonic() + timeout):
        raise RuntimeError(f"nothing listens on {port} after {timeout}s")


def sample_request() -> tuple[bytes, dict[str, str]]:
    """The 49 KB Claude Code request, with its headers (a placeholder key)."""
    data = json.loads(SAMPLE.read_text())
    headers = {k: v for k, v in data["headers"].items() if k.lower() not in ("accept-encoding", "connection")}
    return json.dumps(data["body"]).encode(), headers


VOCABULARY = (
    "the a to of and in is it that for on with as this be are by file function test return value project "
    "cart checkout order user admin page request response error config module class method import data list "
    "call update create delete read write path directory run command output input result change fix add "
    "handler route view model template database query index session token price item total payment shipping "
    "I will let me first now then next check see look open edit can should would because so but if when"
).split()


def sse_reply(size: int = 29_000, seed: int = 0) -> bytes:
    """A realistic ~29 KB Anthropic stream: message_start, text deltas of varied prose, stop events."""
    import random

    rng = random.Random(seed)

    def event(payload: dict) -> bytes:
        return f"event: {payload['type']}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()

    start = {
        "type": "message_start",
        "message": {
            "id": "msg_bench",
            "type": "message",
            "role": "assistant",
            "model": "claude-opus-5-5",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 12000, "output_tokens": 1},
        },
    }
    parts = [
        event(start),
        event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ]
    total = sum(len(p) for p in parts)
    while total < size - 300:
        words = [rng.choice(VOCABULARY) for _ in range(rng.randint(2, 6))]
        text = " ".join(words) + rng.choice([" ", ". ", ", ", "\n"])
        delta = event(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}
        )
        parts.append(delta)
        total += len(delta)
    parts += [
        event({"type": "content_block_stop", "index": 0}),
        event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 900},
            }
        ),
        event({"type": "message_stop"}),
    ]
    return b"".join(parts)


class StaticServer:
    """aiohttp answering every request with the same bytes from memory: the ceiling for a Python proxy; with
    `slow`, the bytes are spread over that many seconds in `events` writes (an upstream that takes its time)."""

    def __init__(self, body: bytes, *, slow: float = 0.0, events: int = 0) -> None:
        self.body = body
        self.slow = slow
        self.events = events

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        headers = {"content-type": "text/event-stream; charset=utf-8", "request-id": "req_bench"}
        if not self.slow:
            return web.Response(body=self.body, headers=headers)
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        step = max(1, len(self.body) // self.events)
        for offset in range(0, len(self.body), step):
            await response.write(self.body[offset : offset + step])
            await asyncio.sleep(self.slow / self.events)
        await response.write_eof()
        return response


@contextmanager
def static_server(
    body: bytes, *, slow: float = 0.0, events: int = 0, port: int = 0
) -> Iterator[LoopbackServer[StaticServer]]:
    """A StaticServer on its own loop thread for the block."""
    script = StaticServer(body, slow=slow, events=events)
    with LoopThread("static") as loop, serving(loop, script, port=port) as server:
        yield server


class StaticProcess:
    """The static server in its own process, so it gets a core like every peer does."""

    def __init__(self, body_file: Path) -> None:
        self.port = free_port()
        code = (
            f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
            f"from tests.benchmarks.bench_proxy import serve_static; serve_static({self.port}, {str(body_file)!r})\n"
        )
        self.process = subprocess.Popen([sys.executable, "-c", code])
        wait_port(self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def serve_static(port: int, body_file: str) -> None:
    """StaticProcess's server: runs until the process is terminated."""
    with static_server(Path(body_file).read_bytes(), port=port):
        threading.Event().wait()


@contextmanager
def process(
    args: list[str], port: int, env: dict[str, str] | None = None, cwd: Path | None = None
) -> Iterator[None]:
    proc = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})}, cwd=cwd
    )
    try:
        wait_port(port)
        yield
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wrk(
    url: str, body_file: Path, headers: dict[str, str], duration: int = DURATION, target: str = TARGET
) -> dict[str, float]:
    """Requests per second and latency percentiles from wrk (16 connections, 2 threads)."""
    lua = body_file.with_suffix(".lua")
    header_lines = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in headers.items())
    lua.write_text(
        f'wrk.method = "POST"\nlocal f = io.open("{body_file}", "rb")\nwrk.body = f:read("*all")\nf:close()\n'
        + header_lines
    )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{duration}s", "--latency", "-s", str(lua), url + target],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def percentile(p: str) -> float:
        value, unit = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    return {
        "rps": rps,
        "p50": percentile("50"),
        "p99": percentile("99"),
        "non2xx": float(errors.group(1)) if errors else 0.0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",
    }


def post_once(url: str, body: bytes, headers: dict[str, str], target: str = TARGET) -> bytes:
    import urllib.request

    request = urllib.request.Request(url + target, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


def instructions_per_request(
    command: list[str], port: int, body: bytes, headers: dict[str, str], reply: bytes, count: int = 200
) -> float | None:
    """User-space instructions a server spends per request (valgrind callgrind, counting only while `count`
    requests are sent one after another on one connection, after 20 to warm up); None without valgrind.
    Unlike req/s, the count does not move with the machine's load."""
    import http.client

    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        return None
    out = Path(tempfile.mkdtemp(prefix="vcr-callgrind-"))
    server = subprocess.Popen(
        [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}/cg.out",
            *command,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )

    def send(times: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        for _ in range(times):
            conn.request("POST", TARGET, body=body, headers=headers)
            response = conn.getresponse()
            assert response.status == 200 and response.read() == reply
        conn.close()

    try:
        wait_port(port, 300)
        send(20)
        subprocess.run(["callgrind_control", "-i", "on", str(server.pid)], check=True, capture_output=True)
        send(count)
        subprocess.run(["callgrind_control", "-d", str(server.pid)], check=True, capture_output=True)
        totals = [
            int(found.group(1))
            for dump in out.glob("cg.out*")
            if (found := re.search(r"^(?:summary|totals): (\d+)", dump.read_text(errors="replace"), re.M))
        ]
        return max(totals) / count if totals else None
    finally:
        server.terminate()
        server.wait(60)
        shutil.rmtree(out, ignore_errors=True)


def bench_replay() -> str:
    """Replay throughput and latency: static ceiling, claude-vcr, mitmproxy server replay, proxay."""
    body, headers = sample_request()
    reply = sse_reply()
    work = Path(tempfile.mkdtemp(prefix="vcr-bench-"))
    body_file = work / "request.json"
    body_file.write_bytes(body)
    reply_file = work / "reply.sse"
    reply_file.write_bytes(reply)
    results: dict[str, dict[str, float]] = {}
    versus_static: dict[str, float] = {}
    instructions: dict[str, float | None] = {}
    static = StaticProcess(reply_file)
    try:
        # claude-vcr (and the baseline's code): record once through the static server, then replay strict;
        # wrk runs on them and the static server in turn, ROUNDS times, so a change in load falls on each
        pythons = {OURS: sys.executable, **({BASELINE_NAME: BASELINE} if BASELINE else {})}
        urls = {STATIC: static.url}
        replays: dict[str, tuple[list[str], Path]] = {}
        with ExitStack() as running:
            for name, python in pythons.items():
                db = work / f"{len(urls)}.db"
                port = free_port()
                serve = [python, "-m", "claude_vcr", "serve", "--db", str(db)]
                with process(
                    [*serve, "--port", str(port), "--mode", "record", "--upstream", static.url],
                    port,
                    cwd=REPO,
                ):
                    assert post_once(f"http://127.0.0.1:{port}", body, headers) == reply
                replays[name] = ([*serve, "--mode", "replay", "--upstream", "http://127.0.0.1:9"], db)
                running.enter_context(process([*replays[name][0], "--port", str(port)], port, cwd=REPO))
                assert post_once(f"http://127.0.0.1:{port}", body, headers) == reply
                urls[name] = f"http://127.0.0.1:{port}"
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in urls}
            for _ in range(ROUNDS):
                for name, url in urls.items():
                    runs[name].append(wrk(url, body_file, headers))
        for name, measured in runs.items():
            results[name] = sorted(measured, key=lambda r: r["rps"])[len(measured) // 2]
            versus_static[name] = median(
                [r["rps"] / s["rps"] for r, s in zip(measured, runs[STATIC], strict=True)]
            )

        port = free_port()
        code = (
            f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
            f"from tests.benchmarks.bench_proxy import serve_static; serve_static({port}, {str(reply_file)!r})\n"
        )
        instructions[STATIC] = instructions_per_request(
            [sys.executable, "-c", code], port, body, headers, reply
        )
        for name, (command, _) in replays.items():
            port = free_port()
            instructions[name] = instructions_per_request(
                [*command, "--port", str(port)], port, body, headers, reply
            )

        mitmdump = REPO / ".cache" / "mitm-venv" / "bin" / "mitmdump"
        if mitmdump.exists():
            flows = work / "flows.mitm"
            port = free_port()
            common = [str(mitmdump), "-q", "--listen-host", "127.0.0.1", "--listen-port", str(port)]
            with process([*common, "--mode", f"reverse:{static.url}", "-w", str(flows)], port):
                assert post_once(f"http://127.0.0.1:{port}", body, headers) == reply
            replay_args = [
                *common,
                "--mode",
                f"reverse:{static.url}",  # never contacted: unmatched requests get 404
                "--server-replay",
                str(flows),
                "--set",
                "server_replay_reuse=true",
                "--set",
                "server_replay_extra=404",
                "--set",
                "connection_strategy=lazy",
            ]
            with process(replay_args, port):
                assert post_once(f"http://127.0.0.1:{port}", body, headers) == reply
                results["mitmproxy server replay"] = wrk(f"http://127.0.0.1:{port}", body_file, headers)

        proxay = ensure_proxay()
        if proxay:
            tapes = work / "tapes"
            port = free_port()
            with process(
                [
                    proxay,
                    "--mode",
                    "record",
                    "--host",
                    static.url,
                    "--tapes-dir",
                    str(tapes),
                    "--port",
                    str(port),
                ],
                port,
            ):
                assert post_once(f"http://127.0.0.1:{port}", body, headers) == reply
            with process([proxay, "--mode", "replay", "--tapes-dir", str(tapes), "--port", str(port)], port):
                assert post_once(f"http://127.0.0.1:{port}", body, headers) == reply
                results["proxay replay"] = wrk(f"http://127.0.0.1:{port}", body_file, headers)
    finally:
        static.stop()
        shutil.rmtree(work, ignore_errors=True)

    ceiling = results[STATIC]["rps"]
    ours = results[OURS]["rps"]
    lines = [
        f"### Replay: a {len(body) // 1000} KB Claude Code request, a {len(reply) // 1000} KB SSE reply, "
        f"{CONNECTIONS} connections, wrk {DURATION} s each",
        "",
        f"The static server and claude-vcr{' (and the baseline)' if BASELINE else ''} take turns, {ROUNDS} rounds: "
        "their rows are the median round, their share of the static server the median of the rounds' ratios.",
        "",
        "| server | req/s | p50 ms | p99 ms | vs static | claude-vcr is |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in results.items():
        versus = f"{ours / r['rps']:.1f}x" if name != OURS else ""
        errors = f" ({int(r['non2xx'])} non-2xx)" if r["non2xx"] else ""
        share = versus_static.get(name, r["rps"] / ceiling)
        lines.append(
            f"| {name}{errors} | {r['rps']:,.0f} | {r['p50']:.2f} | {r['p99']:.2f} | {share:.0%} | {versus} |"
        )
    if instructions.get(STATIC):
        lines += [
            "",
            "CPU per request, counted: user-space instructions (valgrind callgrind) while 200 requests are sent one "
            "after another on one connection, after 20 to warm up; the count does not move with the machine's load.",
            "",
            "| server | instructions per request | static's share |",
            "| --- | ---: | ---: |",
        ]
        for name, count in instructions.items():
            if count:
                lines.append(f"| {name} | {count:,.0f} | {instructions[STATIC] / count:.2f} |")
    return "\n".join(lines) + "\n"


def median(values: list[float]) -> float:
    """The middle value (the upper one of an even count)."""
    return sorted(values)[len(values) // 2]


def ensure_proxay() -> str | None:
    """proxay from npm, installed once into .cache/proxay."""
    prefix = REPO / ".cache" / "proxay"
    binary = prefix / "node_modules" / ".bin" / "proxay"
    if not binary.exists() and shutil.which("npm"):
        subprocess.run(
            [
                "npm",
                "install",
                "--prefix",
                str(prefix),
                "proxay@1.9.0",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ],
            check=False,
        )
    return str(binary) if binary.exists() else None


def bench_record() -> str:
    """Time to first byte and total time, direct vs through claude-vcr record, with a slow upstream; the
    requests take turns (direct, claude-vcr, the baseline's code), so a change in load falls on each."""
    body, headers = sample_request()
    reply = sse_reply()
    rounds = 40
    pythons = {"claude-vcr record": sys.executable, **({"baseline code": BASELINE} if BASELINE else {})}
    with static_server(reply, slow=0.5, events=50) as slow, ExitStack() as running:
        work = Path(tempfile.mkdtemp(prefix="vcr-bench-"))
        running.callback(shutil.rmtree, work, ignore_errors=True)
        urls = {"direct to upstream": slow.url}
        for name, python in pythons.items():
            port = free_port()
            serve = [
                python,
                "-m",
                "claude_vcr",
                "serve",
                "--db",
                str(work / f"{port}.db"),
                "--port",
                str(port),
            ]
            running.enter_context(
                process([*serve, "--mode", "record", "--upstream", slow.url], port, cwd=REPO)
            )
            urls[name] = f"http://127.0.0.1:{port}"
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in urls}
        for _ in range(rounds):
            for name, url in urls.items():
                times[name].append(timed_stream(url, body, headers))

    ttfb = {name: median([t for t, _ in measured]) for name, measured in times.items()}
    total = {name: median([t for _, t in measured]) for name, measured in times.items()}
    direct = "direct to upstream"
    lines = [
        f"### Record: an upstream streaming {len(reply) // 1000} KB over 0.5 s, {rounds} sequential requests each",
        "",
        "| | time to first byte p50 ms | total p50 ms |",
        "| --- | ---: | ---: |",
        f"| {direct} | {ttfb[direct]:.2f} | {total[direct]:.1f} |",
    ]
    for name in pythons:
        lines += [
            f"| through {name} | {ttfb[name]:.2f} | {total[name]:.1f} |",
            f"| added by {name} | {ttfb[name] - ttfb[direct]:+.2f} | {total[name] - total[direct]:+.1f} |",
        ]
    return "\n".join(lines) + "\n"


def timed_stream(url: str, body: bytes, headers: dict[str, str]) -> tuple[float, float]:
    """(ms to the first body byte, ms to the end) over a fresh connection."""
    import http.client

    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    started = time.perf_counter()
    conn.request("POST", TARGET, body=body, headers=headers)
    response = conn.getresponse()
    response.read(1)
    first = time.perf_counter()
    response.read()
    done = time.perf_counter()
    conn.close()
    return (first - started) * 1000, (done - started) * 1000


def session_bodies(turns: int = 30) -> list[bytes]:
    """A Claude Code-like session: the same system prompt and tools every turn, and a growing history."""
    base = json.loads((REPO / "tests" / "data" / "claude-code" / "tool-turn-2.json").read_text())["body"]
    first_messages = base["messages"][:2]
    bodies = []
    history = list(first_messages)
    for turn in range(turns):
        body = dict(base, messages=list(history))
        bodies.append(json.dumps(body).encode())
        history.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"Turn {turn}: I will look at the next file."},
                    {
                        "type": "tool_use",
                        "id": f"toolu_{turn:04d}",
                        "name": "Bash",
                        "input": {"command": f"cat src/file_{turn}.py"},
                    },
                ],
            }
        )
        history.append(
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": f"toolu_{turn:04d}",
                        "content": f"# file {turn}\n"
                        + "def handler(request):\n    return render(request)\n" * 20,
                    }
                ],
            }
        )
    return bodies


def bench_storage() -> str:
    """Bytes on disk for a 30-turn session: claude-vcr's db vs the seed's directory layout (`export`)."""
    from claude_vcr.cli import main as cli
    from claude_vcr.records import Recording
    from claude_vcr.store import Store

    work = Path(tempfile.mkdtemp(prefix="vcr-bench-"))
    db = work / "vcr.db"
    bodies = session_bodies()
    with Store(db) as store:
        for index, body in enumerate(bodies):
            reply = sse_reply(20_000 + 300 * index, seed=index).replace(
                b"msg_bench", f"msg_{index:05d}".encode()
            )
            store.save(
                Recording(
                    cassette="session",
                    key=f"{index:064x}",
                    key_scheme="v2",
                    method="POST",
                    path=TARGET,
                    status=200,
                    request_headers=[
                        ("anthropic-version", "2023-06-01"),
                        ("content-type", "application/json"),
                    ],
                    request_body=body,
                    response_headers=[("content-type", "text/event-stream; charset=utf-8")],
                    response_body=reply,
                    timings=[(len(reply), 5.0)],
                    model="claude-opus-5-5",
                    stream=True,
                )
            )
    subprocess.run(
        [sys.executable, "-m", "claude_vcr", "compact", "--db", str(db)],
        cwd=REPO,
        check=False,
        capture_output=True,
    )
    exported = work / "exported"
    result = subprocess.run(
        [sys.executable, "-m", "claude_vcr", "export", str(exported), "--db", str(db)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    del cli
    db_size = db.stat().st_size
    if result.returncode != 0:
        return f"### Storage\n\nexport failed: {result.stderr.strip()}\n"
    seed_size = sum(p.stat().st_size for p in exported.rglob("*") if p.is_file())
    raw = sum(len(b) for b in bodies)
    shutil.rmtree(work, ignore_errors=True)
    return (
        "### Storage: a 30-turn Claude Code-like session (49 KB+ requests re-sending system prompt and tools)\n\n"
        "| layout | bytes | share of seed layout |\n| --- | ---: | ---: |\n"
        f"| raw request bodies alone | {raw:,} | |\n"
        f"| seed directory layout (`claude-vcr export`) | {seed_size:,} | 100% |\n"
        f"| claude-vcr vcr.db (after `compact`) | {db_size:,} | {db_size / seed_size:.1%} |\n"
    )


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def bench_memory() -> str:
    """Peak RSS of the proxy recording and replaying a 50 MB streamed body, against a 1 MB one."""
    rows = []
    for megabytes in (1, 50):
        reply = sse_reply(megabytes * 1_000_000)
        with static_server(reply, slow=0.01, events=max(1, len(reply) // 65536)) as upstream:
            work = Path(tempfile.mkdtemp(prefix="vcr-bench-"))
            port = free_port()
            serve = [
                sys.executable,
                "-m",
                "claude_vcr",
                "serve",
                "--db",
                str(work / "vcr.db"),
                "--port",
                str(port),
            ]
            body, headers = sample_request()
            for mode in ("record", "replay"):
                proc = subprocess.Popen(
                    [*serve, "--mode", mode, "--upstream", upstream.url], cwd=REPO, stdout=subprocess.DEVNULL
                )
                wait_port(port)
                got = post_once(f"http://127.0.0.1:{port}", body, headers)
                assert len(got) == len(reply)
                peak = rss_kb(proc.pid)
                proc.send_signal(signal.SIGINT)
                proc.wait(30)
                rows.append((megabytes, mode, peak))
            shutil.rmtree(work, ignore_errors=True)
    lines = [
        "### Memory: proxy peak RSS (VmHWM) for one streamed body",
        "",
        "| body | mode | peak RSS MB |",
        "| ---: | --- | ---: |",
    ]
    lines += [f"| {mb} MB | {mode} | {peak / 1024:.1f} |" for mb, mode, peak in rows]
    return "\n".join(lines) + "\n"


def bench_miss(recordings: int = 10_000) -> str:
    """What a strict miss costs on a large cassette: finding the closest recording and diffing it."""
    from claude_vcr.diagnosis import explain_miss
    from claude_vcr.matching import Rules, key_request
    from claude_vcr.records import Recording
    from claude_vcr.store import Store

    base = json.loads(SAMPLE.read_text())["body"]
    work = Path(tempfile.mkdtemp(prefix="vcr-bench-"))
    db = work / "vcr.db"
    rules = Rules()
    started = time.perf_counter()
    with Store(db) as store:
        with store.writing():
            for index in range(recordings):
                body = json.loads(json.dumps(base))
                body["messages"][0]["content"][1]["text"] = (
                    f"Question {index}: what does module {index % 97} do?"
                )
                raw = json.dumps(body).encode()
                keyed = key_request("POST", "/v1/messages", "beta=true", raw, rules)
                store.save(
                    Recording(
                        cassette="big",
                        key=keyed.key,
                        key_scheme="v2",
                        method="POST",
                        path=TARGET,
                        status=200,
                        request_headers=[],
                        request_body=raw,
                        response_headers=[("content-type", "text/event-stream")],
                        response_body=b"event: message_stop\ndata: {}\n\n",
                        fingerprints=keyed.fingerprints,
                    )
                )
    build = time.perf_counter() - started
    missed = json.loads(json.dumps(base))
    missed["messages"][0]["content"][1]["text"] = "Question 5: what does module 5 do, briefly?"
    raw = json.dumps(missed).encode()
    timings = []
    with Store(db) as store:
        for _ in range(15):
            t0 = time.perf_counter()
            keyed = key_request("POST", "/v1/messages", "beta=true", raw, rules)
            report = explain_miss(store, "big", "POST", TARGET, keyed, rules)
            timings.append((time.perf_counter() - t0) * 1000)
    size = db.stat().st_size
    shutil.rmtree(work, ignore_errors=True)
    timings.sort()
    best = report.closest[0]
    return (
        f"### Strict-miss diagnosis on a {recordings:,}-recording cassette (49 KB Claude Code requests)\n\n"
        "| | value |\n| --- | ---: |\n"
        f"| db size | {size / 1e6:.1f} MB (built in {build:.0f} s) |\n"
        f"| key + closest recordings + JSON diff, p50 | {timings[len(timings) // 2]:.0f} ms |\n"
        f"| worst of 15 | {timings[-1]:.0f} ms |\n"
        f"| best match found | {best.percent}% same, first difference `{report.differences[0][:60]}...` |\n"
        "\nOnly the per-part summary hashes of recordings with the same method and path are read to rank them;"
        " the 8 best by those are read whole and ranked by likeness, and the best is diffed.\n"
    )


SECTIONS = {
    "replay": bench_replay,
    "record": bench_record,
    "storage": bench_storage,
    "memory": bench_memory,
    "miss": bench_miss,
}


def run(names: list[str] | None = None) -> str:
    return "\n".join(SECTIONS[name]() for name in (names or list(SECTIONS)))


if __name__ == "__main__":
    print(run(sys.argv[1:] or None))
