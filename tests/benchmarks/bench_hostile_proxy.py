"""How long an unrelated request waits while the proxy handles a hostile one: a 2.9 MB body of 45,000 text
blocks (slow to key), and a cassette whose stored rules hold a catastrophic regex `(\\w+\\s?)*$`.

Run alone: `python3 tests/benchmarks/bench_hostile_proxy.py` (a `serve` subprocess in auto mode, a scripted
upstream on 127.0.0.1, one thread sending hostile requests while another times small replays; target: the
unrelated request's worst wait under 100 ms).
"""

from __future__ import annotations

import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.support.loopback import free_port, wait_listening  # noqa: E402
from tests.test_serve import ServeProcess  # noqa: E402

UPSTREAM = """
import sys
from aiohttp import web
MESSAGE = (b'{"id":"msg_1","type":"message","role":"assistant","model":"claude-opus-5-5","content":'
           b'[{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":1}}')
async def answer(request):
    await request.read()
    return web.Response(body=MESSAGE, content_type="application/json")
app = web.Application(client_max_size=2**27)
app.router.add_route("*", "/{tail:.*}", answer)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""
"""An upstream in its own process that answers without parsing: the prober's timings are the proxy's."""

SECONDS = float(os.environ.get("VCR_BENCH_SECONDS", "8"))
BLOCKS = 45_000
"""Text blocks in the large body: about 2.9 MB of JSON."""


def post(url: str, payload: bytes) -> tuple[int, float]:
    request = urllib.request.Request(url, data=payload, method="POST")
    request.add_header("content-type", "application/json")
    request.add_header("anthropic-version", "2023-06-01")
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        error.read()
        status = error.code
    return status, (time.perf_counter() - started) * 1000


def small(text: str) -> bytes:
    return json.dumps(
        {"model": "claude-opus-5-5", "max_tokens": 16, "messages": [{"role": "user", "content": text}]}
    ).encode()


def large(number: int) -> bytes:
    blocks = [{"type": "text", "text": f"block {i} of request {number}: lorem ipsum"} for i in range(BLOCKS)]
    return json.dumps(
        {"model": "claude-opus-5-5", "max_tokens": 16, "messages": [{"role": "user", "content": blocks}]}
    ).encode()


def waits(url: str, hostile: list[tuple[str, bytes]] | None) -> tuple[list[float], list[float]]:
    """(the unrelated request's latencies in ms, the hostile requests' own) over `SECONDS`."""
    stop = threading.Event()
    hostile_times: list[float] = []

    def attack() -> None:
        number = 0
        while hostile and not stop.is_set():
            path, payload = hostile[number % len(hostile)]
            hostile_times.append(post(url + path, payload)[1])
            number += 1

    attacker = threading.Thread(target=attack, daemon=True)
    attacker.start()
    time.sleep(0.2 if hostile else 0)
    latencies = []
    deadline = time.perf_counter() + SECONDS
    while time.perf_counter() < deadline:
        status, elapsed = post(url + "/v1/messages", small("the unrelated question"))
        assert status == 200, status
        latencies.append(elapsed)
        time.sleep(0.02)
    stop.set()
    attacker.join(timeout=180)
    return latencies, hostile_times


def line(name: str, latencies: list[float], hostile: list[float]) -> str:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    own = f"; each hostile request {statistics.median(hostile):.0f} ms (n={len(hostile)})" if hostile else ""
    return (
        f"| {name} | {statistics.median(latencies):.1f} | {p99:.1f} | {max(latencies):.1f} | {len(latencies)} |"
        f" {own.lstrip('; ') or '-'} |"
    )


def main() -> None:
    port = free_port()
    upstream = subprocess.Popen([sys.executable, "-c", UPSTREAM, str(port)])
    assert wait_listening(port, time.monotonic() + 30)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "vcr.db"
            server = ServeProcess(
                ["--port", "0", "--mode", "auto", "--db", str(db), "--upstream", f"http://127.0.0.1:{port}"],
                cwd=Path(tmp),
            )
            try:
                url = server.url
                assert post(url + "/v1/messages", small("the unrelated question"))[0] == 200
                assert post(url + "/c/regex/v1/messages", small("seed the regex cassette"))[0] == 200
                conn = sqlite3.connect(db)
                with conn:
                    rules = {"ignore": ["metadata"], "replace": [{"pattern": r"(\w+\s?)*$", "with": "<X>"}]}
                    conn.execute(
                        "UPDATE cassettes SET rules_json = ? WHERE name = 'regex'", [json.dumps(rules)]
                    )
                conn.close()
                drain = threading.Thread(
                    target=lambda: [server.readline() for _ in iter(int, 1)], daemon=True
                )
                drain.start()  # the request log must not fill the pipe
                bodies = [("/c/large/v1/messages", large(n)) for n in range(4)]
                regex = [("/c/regex/v1/messages", small("word " * 30 + "!"))]
                rows = [
                    line("nothing else", *waits(url, None)),
                    line(f"2.9 MB bodies ({BLOCKS:,} blocks) recorded", *waits(url, bodies)),
                    line("catastrophic regex in stored rules", *waits(url, regex)),
                ]
            finally:
                server.process.terminate()
                server.process.wait(timeout=30)
    finally:
        upstream.terminate()
        upstream.wait(timeout=30)
    print(f"body size: {len(large(0)):,} bytes; {SECONDS:g} s each; a small replay every 20 ms")
    print("| beside | median ms | p99 ms | max ms | requests | hostile |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
