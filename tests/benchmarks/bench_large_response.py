"""How long an unrelated replay waits while the proxy saves a large recorded answer (issue 23): an upstream
streams a 5-20 MB SSE answer (with one planted key, so screening finds something), and the save screens it
for secrets (regexes over every byte) and compresses it.

Run alone: `python3 tests/benchmarks/bench_large_response.py [--mb 20] [--rounds 2] [--baseline DIR]` (a
`serve` subprocess in replay mode with `--fallback fallback`: the unrelated request replays, each large one is
new and recorded; `--redact` too with `--redact`). `--baseline DIR` measures another version in the same run
(DIR holds its `claude_vcr` package, e.g. the previous commit's `vcr/` linked as `DIR/claude_vcr`).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.benchmarks.bench_hostile_proxy import percentile, post, small  # noqa: E402
from tests.support.loopback import free_port, wait_listening  # noqa: E402
from tests.support.secret_corpus import fake_secrets  # noqa: E402
from tests.test_serve import ServeProcess  # noqa: E402

UPSTREAM = """
import json, sys
from aiohttp import web
MB = int(sys.argv[2])
SECRET = sys.argv[3]
MESSAGE = (b'{"id":"msg_1","type":"message","role":"assistant","model":"claude-opus-5-5","content":'
           b'[{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}')
def delta(i):
    text = f"word {i} of a long answer, " + (f"the key {SECRET} " if i == 5000 else "")
    return ("event: content_block_delta\\ndata: " + json.dumps(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}) + "\\n\\n").encode()
HEAD = (b'event: message_start\\ndata: {"type":"message_start","message":{"id":"msg_1","type":"message",'
        b'"role":"assistant","model":"claude-opus-5-5","content":[],"stop_reason":null,"usage":'
        b'{"input_tokens":1,"output_tokens":1}}}\\n\\nevent: content_block_start\\ndata: {"type":'
        b'"content_block_start","index":0,"content_block":{"type":"text","text":""}}\\n\\n')
TAIL = (b'event: content_block_stop\\ndata: {"type":"content_block_stop","index":0}\\n\\nevent: message_delta\\n'
        b'data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9}}\\n\\n'
        b'event: message_stop\\ndata: {"type":"message_stop"}\\n\\n')
body = bytearray(HEAD)
i = 0
while len(body) < MB * 1024 * 1024:
    body += delta(i)
    i += 1
BODY = bytes(body + TAIL)
async def answer(request):
    payload = await request.json()
    if not payload.get("stream"):
        return web.Response(body=MESSAGE, content_type="application/json")
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    for start in range(0, len(BODY), 65536):
        await response.write(BODY[start:start + 65536])
    await response.write_eof()
    return response
app = web.Application(client_max_size=2**27)
app.router.add_route("*", "/{tail:.*}", answer)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""
"""An upstream in its own process: a small JSON answer, or (to `stream: true`) the long SSE answer."""

SECONDS = 25.0
"""Long enough for a 20 MB answer to stream in and be saved (12-40 s here) inside the window."""


def streamed(number: int, run: str) -> bytes:
    return json.dumps(
        {
            "model": "claude-opus-5-5",
            "max_tokens": 16,
            "stream": True,
            "messages": [{"role": "user", "content": f"long answer {number} {run}"}],
        }
    ).encode()


def measure(
    upstream_port: int, code: Path | None, redact: bool
) -> tuple[list[float], list[float], list[float]]:
    """(the unrelated replay's latencies, the large requests' own, the replay's alone) against a `serve`."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "vcr.db"
        args = ["--port", "0", "--mode", "replay", "--fallback", "fallback", "--db", str(db)]
        args += ["--upstream", f"http://127.0.0.1:{upstream_port}", *(["--redact"] if redact else [])]
        server = ServeProcess(args, cwd=Path(tmp), env={"PYTHONPATH": str(code)} if code else None)
        try:
            url = server.url
            assert post(url + "/v1/messages", small("the unrelated question"))[0] == 200
            drain = threading.Thread(target=lambda: [server.readline() for _ in iter(int, 1)], daemon=True)
            drain.start()
            floor = []  # the same replays with nothing else going on: the machine's noise floor
            deadline = time.perf_counter() + SECONDS / 2
            while time.perf_counter() < deadline:
                floor.append(post(url + "/v1/messages", small("the unrelated question"))[1])
                time.sleep(0.02)
            stop = threading.Event()
            own: list[float] = []
            run = f"{time.time_ns()}"

            def attack() -> None:
                while not stop.is_set():
                    own.append(post(url + "/c/large/v1/messages", streamed(len(own), run))[1])

            attacker = threading.Thread(target=attack, daemon=True)
            attacker.start()
            latencies = []
            deadline = time.perf_counter() + SECONDS
            while time.perf_counter() < deadline:
                status, elapsed = post(url + "/v1/messages", small("the unrelated question"))
                assert status == 200, status
                latencies.append(elapsed)
                time.sleep(0.02)
            stop.set()
            attacker.join(timeout=300)
            return latencies, own, floor
        finally:
            server.process.terminate()
            server.process.wait(timeout=60)


def main() -> None:
    args = sys.argv[1:]
    mb = int(args[args.index("--mb") + 1]) if "--mb" in args else 20
    rounds = int(args[args.index("--rounds") + 1]) if "--rounds" in args else 1
    baseline = Path(args[args.index("--baseline") + 1]) if "--baseline" in args else None
    redact = "--redact" in args
    secret = next(value for kind, value in fake_secrets() if kind == "anthropic-key")
    port = free_port()
    upstream = subprocess.Popen([sys.executable, "-c", UPSTREAM, str(port), str(mb), secret])
    assert wait_listening(port, time.monotonic() + 60)
    versions: dict[str, Path | None] = {"this checkout": None}
    if baseline is not None:
        versions["baseline"] = baseline
    print(
        f"{mb} MB SSE answers recorded{' with --redact' if redact else ''}; a small replay every 20 ms, {SECONDS:g} s"
    )
    print(
        "\n| version | round | median ms | p99 ms | max ms | replays | large answers (median ms each) | alone: p99, max ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    try:
        for number in range(rounds):
            order = list(versions) if number % 2 == 0 else list(reversed(versions))
            for name in order:
                latencies, own, floor = measure(port, versions[name], redact)
                each = f"{len(own)} ({statistics.median(own):.0f})" if own else "0"
                print(
                    f"| {name} | {number + 1} | {statistics.median(latencies):.1f} |"
                    f" {percentile(latencies, 0.99):.1f} | {max(latencies):.1f} | {len(latencies)} | {each} |"
                    f" {percentile(floor, 0.99):.1f}, {max(floor):.1f} |",
                    flush=True,
                )
    finally:
        upstream.terminate()
        upstream.wait(timeout=30)


if __name__ == "__main__":
    main()
