"""Benchmark (not a test): the fault-injection scenarios of tests/test_faults.py at a larger size, for the
Reliability section of BENCHMARKS.md. `python3 tests/benchmarks/bench_reliability.py [--quick]`

Every figure is a count (runs, acknowledged requests, lost recordings), never a time: a kill -9 lands
wherever it lands, and the counts must hold whatever the machine's speed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.support import faults, soak  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="the test suite's sizes")
    parser.add_argument(
        "--code",
        type=Path,
        help="run the processes from another copy of the package (a folder holding claude_vcr/): the writers "
        "scenario only, to compare with an older version",
    )
    parser.add_argument(
        "--killed",
        help="only kill -9 of these maintenance commands (comma-separated: import,compact,redact,rekey)",
    )
    parser.add_argument(
        "--writers", type=int, help="only N recording `serve`s (200 requests each) beside the maintenance loop"
    )
    parser.add_argument(
        "--soak",
        type=float,
        metavar="SECONDS",
        help="only the timed soaks: 4 recording `serve`s beside import/redact/rekey/clear loops, and 4 "
        "`use_cassette` processes, each for SECONDS",
    )
    args = parser.parse_args()
    if args.soak:
        with tempfile.TemporaryDirectory(prefix="claude-vcr-reliability-") as scratch:
            _soak(Path(scratch), args.soak)
        return
    if args.writers:
        with tempfile.TemporaryDirectory(prefix="claude-vcr-reliability-") as scratch:
            report = faults.concurrent_writers(
                Path(scratch),
                writers=args.writers,
                per_writer=200,
                clients=8,
                maintenance=lambda db: faults.busy_maintenance(db, 3),
            )
        ran = ", ".join(sorted(set(report.maintenance)))
        print(_writers_row(f"{args.writers} recording `serve`s while {ran} run", report))
        return
    if args.killed:
        with tempfile.TemporaryDirectory(prefix="claude-vcr-reliability-") as scratch:
            for command in args.killed.split(","):
                print(killed_command_row(Path(scratch), command, 1 if args.quick else 5), flush=True)
        return
    if args.code:
        faults.CODE = args.code.resolve()
        with tempfile.TemporaryDirectory(prefix="claude-vcr-reliability-") as scratch:
            report = faults.concurrent_writers(Path(scratch), per_writer=400, clients=15)
        print(_writers_row(f"2 recording `serve`s from {args.code}", report))
        return
    kill_runs, per_writer, rounds, repeats = (5, 60, 1, 1) if args.quick else (10, 400, 3, 5)
    started = time.monotonic()
    rows = []
    with tempfile.TemporaryDirectory(prefix="claude-vcr-reliability-") as scratch:
        folder = Path(scratch)
        mid = faults.kill_serve_runs(_mk(folder / "mid"), kill_runs, mid_stream=True)
        after = faults.kill_serve_runs(_mk(folder / "after"), kill_runs, mid_stream=False)
        for label, report in (("mid-stream (2 streams held open)", mid), ("right after 4 answers complete", after)):
            rows.append(
                f"| kill -9 of `serve` {label} | {report.runs} runs | next command opened the db "
                f"{report.reopened}/{report.runs}, integrity ok {report.integrity_ok}/{report.runs} | "
                f"{report.acknowledged} acknowledged, **{report.lost} lost** |"
            )
        for command in ("import", "compact", "redact", "rekey"):
            rows.append(killed_command_row(folder, command, repeats))
        plain = faults.concurrent_writers(_mk(folder / "writers"), per_writer=per_writer, clients=15)
        rows.append(_writers_row("2 recording `serve`s, 15 clients each, 52 KB Claude Code requests", plain))
        busy = faults.concurrent_writers(
            _mk(folder / "busy"),
            per_writer=per_writer // 2,
            clients=8,
            maintenance=lambda db: faults.busy_maintenance(db, rounds),
        )
        ran = ", ".join(sorted(set(busy.maintenance)))
        rows.append(_writers_row(f"the same while `import`, `rekey`, `clear`, `compact` run ({ran})", busy))
    print("### Reliability: kill -9, racing writers and maintenance on one db (tests/support/faults.py)\n")
    print("| scenario | size | the db afterwards | acknowledged recordings |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    print(
        "\nAcknowledged = the client read a whole 200 stream from a recording proxy. `compact:1` is the "
        "refusal while a `serve` has the file open (exit status 1, one line). "
        f"Took {time.monotonic() - started:.0f} s on a shared 2-core machine."
    )


def killed_command_row(folder: Path, command: str, repeats: int) -> str:
    """kill -9 of one maintenance command, `repeats` times: the next command must find the db whole."""
    caught = reopened = intact = 0
    for run in range(repeats):
        sub = folder / f"{command}-{run}"
        sub.mkdir(parents=True)
        killed = faults.kill_command(sub, command)
        caught += killed.caught_midway
        reopened += killed.reopened
        intact += (
            killed.integrity == "ok"
            and killed.recordings_after == killed.recordings_before
            and not killed.leftovers
        )
    what = "staging copy being written" if command == "compact" else "hot journal"
    return (
        f"| kill -9 of `{command}` ({what}) | {repeats} runs ({caught} caught mid-way) | next command "
        f"opened the db {reopened}/{repeats} | db as before and nothing left beside it {intact}/{repeats} |"
    )


def _soak(folder: Path, seconds: float) -> None:
    """The issue's held figures: 4 serves for `seconds` beside maintenance loops, 4 `use_cassette` processes."""
    serves = soak.timed_writers(_mk(folder / "serves"), writers=4, seconds=seconds)
    rounds = {name: sum(r.startswith(name + ":") for r in serves.maintenance) for name in ("import", "redact", "rekey", "clear")}
    ran = ", ".join(f"{name} x{count}" for name, count in rounds.items())
    print(
        f"| 4 recording `serve`s, 8 clients each, for {seconds:g} s while {ran} run | {serves.requests} requests | "
        f"integrity {serves.integrity}, failed saves {serves.failed_saves}, exit status {serves.exit_codes} | "
        f"{serves.acknowledged} acknowledged, **{serves.lost} lost** |",
        flush=True,
    )
    users = soak.use_cassette_processes(_mk(folder / "use-cassette"), processes=4, seconds=seconds)
    print(
        f"| 4 processes recording through `use_cassette` (the SDK, one cassette each) for {seconds:g} s | "
        f"{users.requests} requests | integrity {users.integrity}, exit status {users.exit_codes} | "
        f"{users.acknowledged} acknowledged, **{users.lost} lost** |"
    )


def _mk(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _writers_row(label: str, report: faults.WritersReport) -> str:
    return (
        f"| {label} | {report.writers} x {report.requests // report.writers} requests | integrity "
        f"{report.integrity}, failed saves {report.failed_saves}, exit status {report.exit_codes} | "
        f"{report.acknowledged} acknowledged, **{report.lost} lost** |"
    )


if __name__ == "__main__":
    main()
