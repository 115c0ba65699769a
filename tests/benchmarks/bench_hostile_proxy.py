"""How long an unrelated request waits while the proxy handles a hostile one: a 2.9 MB body of 45,000 text
blocks (slow to key), and a cassette whose stored rules hold a catastrophic regex `(\\w+\\s?)*$`.

Run alone: `python3 tests/benchmarks/bench_hostile_proxy.py [--rounds N] [--baseline DIR]` (a `serve`
subprocess in replay mode with `--fallback fallback`: the unrelated request replays, each hostile one is new
and recorded; a scripted upstream on 127.0.0.1, one thread sending hostile requests while another
times small replays; target: the unrelated request's wait under 100 ms). `--baseline DIR` measures another
version too (DIR holds its `claude_vcr` package, e.g. main's `vcr/` linked as `DIR/claude_vcr`).
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
from collections.abc import Callable
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


def small(text: str, **extra: object) -> bytes:
    return json.dumps(
        {"model": "claude-opus-5-5", "max_tokens": 16, "messages": [{"role": "user", "content": text}], **extra}
    ).encode()


PROBE_TEXT = "medium " * 40_000
"""A 280 KB prompt: keyed in the worker for large bodies (past IN_PROCESS_BYTES), quick to key itself."""


def ruled_probe(number: int) -> tuple[str, bytes]:
    """A replay in a cassette whose stored rules hold a harmless regex of their own (keyed in a worker): new
    bytes each time (metadata, which the key leaves out), so it is keyed, never matched whole."""
    return "/c/ruled/v1/messages", small("the ruled question", metadata={"user_id": f"u{number}"})


def large_probe(number: int) -> tuple[str, bytes]:
    """A replay of a large body, new bytes each time (as `ruled_probe`)."""
    return "/c/medium/v1/messages", small(PROBE_TEXT, metadata={"user_id": f"u{number}"})


def large(number: int, run: str = "") -> bytes:
    blocks = [{"type": "text", "text": f"block {i} of request {number}{run}: lorem ipsum"} for i in range(BLOCKS)]
    return json.dumps(
        {"model": "claude-opus-5-5", "max_tokens": 16, "messages": [{"role": "user", "content": blocks}]}
    ).encode()


Hostile = Callable[[int], tuple[str, bytes]]
"""The n-th hostile request: (path, body)."""


def waits(
    url: str, hostile: Hostile | None, recorded: bool = False, probe: Hostile | None = None
) -> tuple[list[float], list[float], list[int]]:
    """(the unrelated request's latencies in ms, the hostile requests' own) over `SECONDS`. The unrelated
    request is a replay of a recorded one (`probe`'s, else a small one in the default cassette); with
    `recorded`, a new question each time (recorded: it waits for the one store thread too)."""
    stop = threading.Event()
    hostile_times: list[float] = []

    def attack() -> None:
        number = 0
        while hostile and not stop.is_set():
            path, payload = hostile(number)
            hostile_times.append(post(url + path, payload)[1])
            number += 1

    attacker = threading.Thread(target=attack, daemon=True)
    attacker.start()
    time.sleep(0.2 if hostile else 0)
    latencies: list[float] = []
    failed: list[int] = []
    deadline = time.perf_counter() + SECONDS
    while time.perf_counter() < deadline:
        question = f"unrelated question {len(latencies)}" if recorded else "the unrelated question"
        path, payload = probe(len(latencies)) if probe else ("/v1/messages", small(question))
        status, elapsed = post(url + path, payload)
        if status != 200:  # before issue 23's isolation: queued behind the hostile regex, past its own deadline
            failed.append(status)
        latencies.append(elapsed)
        time.sleep(0.02)
    stop.set()
    attacker.join(timeout=180)
    return latencies, hostile_times, failed


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def line(name: str, latencies: list[float], hostile: list[float], failed: list[int]) -> str:
    own = f"; each hostile request {statistics.median(hostile):.0f} ms (n={len(hostile)})" if hostile else ""
    own += f"; unrelated answered {failed[0]} {len(failed)} time(s)" if failed else ""
    return (
        f"| {name} | {statistics.median(latencies):.1f} | {percentile(latencies, 0.99):.1f} | {max(latencies):.1f} |"
        f" {len(latencies)} | {own.lstrip('; ') or '-'} |"
    )


SCENARIOS = (
    "nothing else",
    f"2.9 MB bodies ({BLOCKS:,} blocks) recorded",
    "catastrophic regex in stored rules",
    "2.9 MB bodies recorded; the unrelated request recorded too",
    "slow regex `(a|aa)*$` in stored rules (passes the load-time check)",
    "slow regex; the unrelated request in a cassette with a regex of its own",
    "slow regex; the unrelated request a 280 KB body",
    "nothing else; the unrelated request in a cassette with a regex of its own",
    "nothing else; the unrelated request a 280 KB body",
)


def measure(upstream_port: int, code: Path | None) -> dict[str, tuple[list[float], list[float], list[int]]]:
    """Each scenario's latencies against a `serve` of this checkout, or of the code under `code` (a folder
    holding a `claude_vcr` package: another version, for a comparison in the same run)."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "vcr.db"

        def start() -> ServeProcess:
            return ServeProcess(
                [
                    "--port",
                    "0",
                    "--mode",
                    "replay",
                    "--fallback",
                    "fallback",  # a repeat replays (the last take), a new request is recorded
                    "--db",
                    str(db),
                    "--upstream",
                    f"http://127.0.0.1:{upstream_port}",
                ],
                cwd=Path(tmp),
                env={"PYTHONPATH": str(code)} if code else None,
            )

        seeder = start()  # a server of its own: a running one keeps the rules it first read for a cassette
        try:
            url = seeder.url
            assert post(url + "/v1/messages", small("the unrelated question"))[0] == 200
            assert post(url + "/c/regex/v1/messages", small("seed the regex cassette"))[0] == 200
            assert post(url + "/c/slowregex/v1/messages", small("seed the regex cassette"))[0] == 200
            for probe in (ruled_probe, large_probe):
                assert post(url + probe(-1)[0], probe(-1)[1])[0] == 200
        finally:
            seeder.process.terminate()
            seeder.process.communicate(timeout=30)
        conn = sqlite3.connect(db)
        with conn:
            for name, pattern in (
                ("regex", r"(\w+\s?)*$"),
                ("slowregex", r"(a|aa)*$"),
                ("ruled", r"sk-[a-z]+"),  # no match in its question: its recorded key stands
            ):
                rules = {"ignore": ["metadata"], "replace": [{"pattern": pattern, "with": "<X>"}]}
                conn.execute("UPDATE cassettes SET rules_json = ? WHERE name = ?", [json.dumps(rules), name])
        conn.close()
        server = start()
        try:
            url = server.url
            drain = threading.Thread(target=lambda: [server.readline() for _ in iter(int, 1)], daemon=True)
            drain.start()  # the request log must not fill the pipe
            run = f"{time.time_ns()}"  # every hostile body new, so each is keyed and recorded

            def bodies(number: int) -> tuple[str, bytes]:
                return "/c/large/v1/messages", large(number, run)

            def regex(number: int) -> tuple[str, bytes]:
                return "/c/regex/v1/messages", small("word " * 30 + "!")

            def slow_regex(number: int) -> tuple[str, bytes]:
                return "/c/slowregex/v1/messages", small("a" * (80 + number) + "!")

            measured = [
                waits(url, None),
                waits(url, bodies),
                waits(url, regex),
                waits(url, bodies, recorded=True),
            ]
            measured.append(waits(url, slow_regex))
            measured.append(waits(url, slow_regex, probe=ruled_probe))
            measured.append(waits(url, slow_regex, probe=large_probe))
            measured.append(waits(url, None, probe=ruled_probe))
            measured.append(waits(url, None, probe=large_probe))
            return dict(zip(SCENARIOS, measured, strict=True))
        finally:
            server.process.terminate()
            server.process.wait(timeout=30)


def main() -> None:
    """`--rounds N` (default 1); `--baseline DIR` also measures the code in DIR, round by round alternating
    which goes first, and prints both with the ratio of their medians and p99s."""
    args = sys.argv[1:]
    rounds = int(args[args.index("--rounds") + 1]) if "--rounds" in args else 1
    baseline = Path(args[args.index("--baseline") + 1]) if "--baseline" in args else None
    port = free_port()
    upstream = subprocess.Popen([sys.executable, "-c", UPSTREAM, str(port)])
    assert wait_listening(port, time.monotonic() + 30)
    versions: dict[str, Path | None] = {"this checkout": None}
    if baseline is not None:
        versions["baseline"] = baseline
    results: dict[str, list[dict[str, tuple[list[float], list[float], list[int]]]]] = {name: [] for name in versions}
    try:
        for number in range(rounds):
            order = list(versions) if number % 2 == 0 else list(reversed(versions))
            for name in order:
                results[name].append(measure(port, versions[name]))
                print(f"round {number + 1}/{rounds}: {name} measured", file=sys.stderr, flush=True)
    finally:
        upstream.terminate()
        upstream.wait(timeout=30)
    print(
        f"body size: {len(large(0)):,} bytes; {SECONDS:g} s each; a small replay every 20 ms; {rounds} round(s)"
    )
    for name in versions:
        print(f"\n{name}, every round:\n")
        print("| beside | median ms | p99 ms | max ms | requests | hostile |")
        print("|---|---|---|---|---|---|")
        for scenario in SCENARIOS:
            for measured in results[name]:
                if scenario in measured:
                    print(line(scenario, *measured[scenario]))
    if baseline is not None:
        print("\nmedian over rounds of each round's median and p99 (ms), this checkout vs baseline:\n")
        print("| beside | median | baseline median | ratio | p99 | baseline p99 | ratio |")
        print("|---|---|---|---|---|---|---|")
        for scenario in SCENARIOS:
            ours = [statistics.median(r[scenario][0]) for r in results["this checkout"]]
            theirs = [statistics.median(r[scenario][0]) for r in results["baseline"]]
            ours99 = [percentile(r[scenario][0], 0.99) for r in results["this checkout"]]
            theirs99 = [percentile(r[scenario][0], 0.99) for r in results["baseline"]]
            m, bm, p, bp = (statistics.median(v) for v in (ours, theirs, ours99, theirs99))
            print(f"| {scenario} | {m:.1f} | {bm:.1f} | {m / bm:.2f} | {p:.1f} | {bp:.1f} | {p / bp:.2f} |")


if __name__ == "__main__":
    main()
