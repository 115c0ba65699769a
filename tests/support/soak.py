"""Timed soaks on one db, for tests/benchmarks/bench_reliability.py: recording `serve`s for a while beside loops
of the maintenance commands (redact among them), and several processes recording through
`claude_vcr.use_cassette` at once. Every figure is a count: acknowledged requests and whether each one's
recording is in the db afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import faults
from tests.support.client import TEST_API_KEY

SECRET = "sk-ant-api03-" + "Soak" * 20 + "AA"
"""A credential-shaped string in every imported request, so each `redact` round has something to replace."""


def send_until(url: str, prefix: str, clients: int, stop_at: float) -> list[faults.Reply]:
    """`clients` threads each sending distinct ~52 KB Claude Code requests until `stop_at` (monotonic)."""

    def client(number: int) -> list[faults.Reply]:
        replies, sent = [], 0
        while time.monotonic() < stop_at:
            replies.append(faults.post(url, faults.request_body(f"{prefix}-{number}-{sent}")))
            sent += 1
        return replies

    with ThreadPoolExecutor(clients) as pool:
        return [reply for replies in pool.map(client, range(clients)) for reply in replies]


def maintenance_loop(db: Path, stop_at: float) -> list[str]:
    """import (a cassette whose requests hold a key), redact, rekey and clear of it, round after round until
    `stop_at`; each command's name and exit status. A failure of any is raised: none may fail beside serves."""
    seed = faults.exported_seed(db.with_name("soak-seed"), SECRET)
    results = []
    while time.monotonic() < stop_at:
        for args in (
            ("import", seed, "--db", db),
            ("redact", "--yes", "--db", db),
            ("rekey", "--db", db),
            ("clear", "imported", "--yes", "--db", db),
        ):
            done = faults.claude_vcr(*args)
            results.append(f"{args[0]}:{done.returncode}")
            if done.returncode != 0:
                raise AssertionError(f"{args[0]} failed during recording: {done.stderr}")
    return results


def timed_writers(
    folder: Path, *, writers: int = 4, seconds: float = 60, clients: int = 8
) -> faults.WritersReport:
    """`writers` recording serves on one db, each sent requests by `clients` threads for `seconds`, while the
    maintenance loop runs against the same db."""
    db = folder / "soak.db"
    report = faults.WritersReport(writers, 0)
    with faults.holding_upstream() as (_, url):
        serves = [faults.Serve(db, url) for _ in range(writers)]
        try:
            stop_at = time.monotonic() + seconds
            with ThreadPoolExecutor(writers) as pool:
                futures = [
                    pool.submit(send_until, s.url, f"s{n}", clients, stop_at) for n, s in enumerate(serves)
                ]
                report.maintenance = maintenance_loop(db, stop_at)
                replies = [reply for future in futures for reply in future.result()]
        finally:
            report.exit_codes = [serve.stop() for serve in serves]
        logs = "".join(serve.log() for serve in serves)
    report.requests = len(replies)
    return faults.tally(report, db, replies, logs)


USE_CASSETTE_SCRIPT = """
import json, sys, time
import anthropic, claude_vcr
db, upstream, name, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
stop_at = time.monotonic() + seconds
with claude_vcr.use_cassette(name, mode="new_episodes", db=db, upstream=upstream) as cassette:
    client = anthropic.Anthropic(max_retries=0)
    sent = 0
    while time.monotonic() < stop_at:
        ask = {"role": "user", "content": f"{name} request {sent}"}
        with client.messages.stream(model="claude-sonnet-4-5", max_tokens=64, messages=[ask]) as stream:
            stream.get_final_message()
        sent += 1
print(json.dumps([[o.outcome, o.key] for o in cassette.outcomes]))
"""


@dataclass
class UseCassetteReport:
    processes: int
    requests: int = 0
    acknowledged: int = 0
    """Requests the cassette reported `recorded` (the SDK read the whole answer)."""
    lost: int = 0
    exit_codes: list[int] = field(default_factory=list)
    integrity: str = ""


def use_cassette_processes(folder: Path, *, processes: int = 4, seconds: float = 60) -> UseCassetteReport:
    """`processes` Python processes, each recording its own cassette through `use_cassette` into one db with
    the official SDK for `seconds`; afterwards every request they were told was recorded must be there."""
    db = folder / "use-cassette.db"
    report = UseCassetteReport(processes)
    environment = {**faults.env(), "ANTHROPIC_API_KEY": TEST_API_KEY}
    with faults.holding_upstream() as (_, url):
        running = [
            subprocess.Popen(
                [sys.executable, "-c", USE_CASSETTE_SCRIPT, str(db), url, f"process_{n}", str(seconds)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=environment,
            )
            for n in range(processes)
        ]
        outcomes = []
        for process in running:
            out, err = process.communicate(timeout=seconds + faults.DEADLINE)
            report.exit_codes.append(process.returncode)
            if process.returncode != 0:
                raise AssertionError(f"a use_cassette process failed: {err.strip().splitlines()[-1:]}")
            outcomes += json.loads(out)
    keys = faults.stored_keys(db)
    report.requests = len(outcomes)
    report.acknowledged = sum(outcome == "recorded" for outcome, _ in outcomes)
    report.lost = sum(outcome == "recorded" and key not in keys for outcome, key in outcomes)
    report.integrity = faults.integrity(db)
    return report
