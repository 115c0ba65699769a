"""The pytest plugin's cost: what a replayed test adds over the same test against a static server answering
from memory (target < 5 ms median), and the plugin's start-up per pytest process (target < 300 ms).

`python3 tests/benchmarks/bench_pytest.py` prints a markdown section. Both suites run in their own pytest
processes with only the needed plugins loaded; per-test times come from a conftest hook (setup + call +
teardown of each test), so pytest's own start-up and collection are not counted in the first figure.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

TESTS = 200
ROUNDS = 3
STARTS = 9

ANSWER = json.dumps(
    {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-opus-5-5",
        "content": [{"type": "text", "text": "Hello from memory. " * 20}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 60},
    }
).encode()

CONFTEST = """
import json, os, time
import pytest

TIMES = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    started = time.perf_counter()
    try:
        return (yield)
    finally:
        TIMES.append((time.perf_counter() - started) * 1000)


def pytest_sessionfinish(session):
    if os.environ.get("TIMES_FILE"):
        with open(os.environ["TIMES_FILE"], "w") as out:
            json.dump(TIMES, out)
"""

SUITE = """
import os
import anthropic
import pytest

pytestmark = [pytest.mark.claude_vcr] if os.environ.get("BENCH_VCR") else []
CLIENT = anthropic.Anthropic(max_retries=0)


@pytest.mark.parametrize("n", range({tests}))
def test_ask(n):
    client = CLIENT.with_options(base_url=os.environ["ANTHROPIC_BASE_URL"])  # one connection pool
    message = client.messages.create(
        model="claude-opus-5-5", max_tokens=64, messages=[{{"role": "user", "content": f"question {{n}}"}}]
    )
    assert message.content
"""

TRIVIAL = """
import pytest

pytestmark = [pytest.mark.claude_vcr] if __import__("os").environ.get("BENCH_VCR") else []


def test_nothing():
    pass
"""


def static_server() -> tuple[str, object]:
    """An aiohttp server answering every request with one Message from memory: the ceiling."""
    import asyncio

    from aiohttp import web

    from tests.support.loopback import LoopThread

    loop_thread = LoopThread("static")

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=ANSWER, content_type="application/json")

    async def start() -> web.AppRunner:
        server = web.Server(answer, access_log=None)
        runner = web.ServerRunner(server)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = loop_thread.run(start())
    del asyncio
    return f"http://127.0.0.1:{runner.addresses[0][1]}", (loop_thread, runner)


def pytest_run(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=folder, env=env, capture_output=True, text=True, timeout=600,
    )


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VCR_", "ANTHROPIC_", "PYTEST_"))}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["ANTHROPIC_API_KEY"] = "sk-ant-bench"
    return env


def per_test_times(folder: Path, env: dict[str, str], *args: str) -> list[float]:
    times = folder / "times.json"
    done = pytest_run(folder, {**env, "TIMES_FILE": str(times)}, *args)
    if done.returncode != 0:
        raise SystemExit(done.stdout[-3000:] + done.stderr[-2000:])
    return json.loads(times.read_text())


def overhead(folder: Path) -> list[str]:
    url, _keep = static_server()
    (folder / "conftest.py").write_text(CONFTEST)
    (folder / "test_bench.py").write_text(SUITE.format(tests=TESTS))
    plugin = ("-p", "claude_vcr.pytest_plugin")
    db = folder / "vcr.db"
    env = base_env()
    vcr = {**env, "BENCH_VCR": "1", "VCR_DB": str(db), "VCR_UPSTREAM": url}
    per_test_times(folder, vcr, *plugin, "--claude-vcr-record-mode=once")  # record every cassette once
    static, replayed = [], []
    for _ in range(ROUNDS):  # interleaved, so load on the machine falls on both alike
        static += per_test_times(folder, {**env, "ANTHROPIC_BASE_URL": url}, *plugin)
        replayed += per_test_times(folder, vcr, *plugin)
    s, r = statistics.median(static), statistics.median(replayed)
    return [
        f"### A replayed test vs the same test against a static server ({TESTS} tests x {ROUNDS} runs each, "
        "one SDK request per test)",
        "",
        "| | median ms per test | p90 ms |",
        "| --- | ---: | ---: |",
        f"| static aiohttp server from memory (`ANTHROPIC_BASE_URL`, no marker) | {s:.2f} | {quantile(static, 0.9):.2f} |",
        f"| `@pytest.mark.claude_vcr`, record mode none (replay) | {r:.2f} | {quantile(replayed, 0.9):.2f} |",
        f"| added by claude-vcr (target < 5 ms) | **{r - s:+.2f}** | |",
        "",
    ]


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def startup(folder: Path) -> list[str]:
    """Whole pytest runs of one trivial test: marked with the plugin, unmarked with it, and without it."""
    import time

    (folder / "test_trivial.py").write_text(TRIVIAL)
    env = {**base_env(), "VCR_DB": str(folder / "start.db")}
    cases = {
        "without the plugin": (env, ()),
        "plugin loaded, test not marked": (env, ("-p", "claude_vcr.pytest_plugin")),
        "plugin loaded, test marked (proxy starts and stops)": (
            {**env, "BENCH_VCR": "1"},
            ("-p", "claude_vcr.pytest_plugin"),
        ),
    }
    walls: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(STARTS):
        for name, (case_env, args) in cases.items():
            started = time.perf_counter()
            done = pytest_run(folder, case_env, *args, "test_trivial.py")
            walls[name].append((time.perf_counter() - started) * 1000)
            assert done.returncode == 0, done.stdout + done.stderr
    base = statistics.median(walls["without the plugin"])
    lines = [
        f"### Plugin start-up per pytest process (one trivial test, median of {STARTS} whole runs)",
        "",
        "| | wall ms | added |",
        "| --- | ---: | ---: |",
    ]
    for name, values in walls.items():
        median = statistics.median(values)
        lines.append(f"| {name} | {median:.0f} | {median - base:+.0f} |")
    lines.append("")
    lines.append("Target: the marked case adds < 300 ms (importing aiohttp, opening the db, listening, stopping).")
    return lines


BREAKDOWN = """
import os, sys, time
t0 = time.perf_counter()
import aiohttp, sqlite_utils
t1 = time.perf_counter()
from claude_vcr.harness import ProxyThread, test_config
import claude_vcr.proxy
t2 = time.perf_counter()
proxy = ProxyThread(test_config(os.environ, db=sys.argv[1])).start()
use = proxy.use("bench", "none")
t3 = time.perf_counter()
proxy.release(use)
proxy.stop()
t4 = time.perf_counter()
print((t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000, (t4 - t3) * 1000)
"""


def breakdown(folder: Path) -> list[str]:
    """Where the marked case's start-up goes, in fresh processes: the floor is importing the runtime deps."""
    runs = []
    for _ in range(STARTS):
        done = subprocess.run(
            [sys.executable, "-c", BREAKDOWN, str(folder / "start.db")], capture_output=True, text=True, check=True
        )
        runs.append([float(x) for x in done.stdout.split()])
    parts = ["import aiohttp and sqlite-utils", "import claude-vcr's proxy (the rest)", "open the db, listen, select a cassette", "stop, checkpoint, close"]
    lines = ["", "| where the marked case's time goes (fresh process, median) | ms |", "| --- | ---: |"]
    for i, part in enumerate(parts):
        lines.append(f"| {part} | {statistics.median(r[i] for r in runs):.0f} |")
    lines.append(f"| total | {statistics.median(sum(r) for r in runs):.0f} |")
    return lines


def main() -> None:
    with tempfile.TemporaryDirectory() as temp:
        folder = Path(temp)
        lines = overhead(folder) + startup(folder) + breakdown(folder)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
