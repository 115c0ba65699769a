"""Measure the single-file build against its budgets: size, warm `--help`, first run with extraction.

    python3 tests/benchmarks/bench_pyz.py [--runs 21] [--pyz dist/claude-vcr.pyz]

Builds a pyz for this interpreter (and one without .pyc files, for comparison) unless --pyz is given, then
runs it with `python -I` from a venv without packages, in a temp folder, and prints a markdown table.
Times are medians of wall-clock runs of whole processes, interpreter start included.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.support.mitm import flow_state, tnetstring  # noqa: E402

BUDGETS = {"size": 10_000_000, "help": 0.150, "first": 1.0}


def build(output: Path, *args: str) -> float:
    started = time.perf_counter()
    command = [sys.executable, str(REPO / "build_zipapp.py"), "--output", str(output), *args]
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def timed(
    command: list[str], env: dict[str, str], cwd: Path, before: Callable[[], None] | None = None
) -> float:
    if before:
        before()
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env, cwd=cwd)
    return time.perf_counter() - started


def median(runs: int, measure: Callable[[], float]) -> float:
    measure()  # one warm-up: page cache, pyc reads
    return statistics.median(measure() for _ in range(runs))


def serve_to_banner(command: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=cwd)
    try:
        line = process.stdout.readline()
        elapsed = time.perf_counter() - started
        assert "listening on" in line, line
    finally:
        process.terminate()
        process.communicate(timeout=30)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--pyz", type=Path, help="measure this file instead of building one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-pyz-") as temp:
        work = Path(temp)
        rows: list[tuple[str, str, str]] = []
        pyz = args.pyz
        plain = None
        if pyz is None:
            pyz, plain = work / "claude-vcr.pyz", work / "no-pyc.pyz"
            rows.append(("build (warm download cache)", f"{build(pyz):.1f} s", ""))
            build(plain, "--no-compile")
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(work / "venv")], check=True)
        python = str(work / "venv" / "bin" / "python")
        cache = work / "cache"
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(work), "VCR_CACHE_DIR": str(cache)}
        (work / "dump.mitm").write_bytes(tnetstring(flow_state()))

        def run(*argv: str, file: Path = pyz) -> list[str]:
            return [python, "-I", str(file), *argv]

        def cold() -> None:
            subprocess.run(["rm", "-rf", str(cache), str(work / "vcr.db")], check=True)

        def fresh_db() -> None:
            subprocess.run(["rm", "-f", str(work / "vcr.db")], check=True)

        size = pyz.stat().st_size
        rows.append(("pyz size, one target", f"{size / 1e6:.2f} MB", f"< {BUDGETS['size'] / 1e6:.0f} MB"))
        if plain:
            rows.append(("  without .pyc files", f"{plain.stat().st_size / 1e6:.2f} MB", ""))
        help_time = median(args.runs, lambda: timed(run("--help"), env, work))
        rows.append((f"`--help`, warm (median of {args.runs})", f"{help_time * 1000:.0f} ms", "< 150 ms"))
        if plain:
            plain_help = median(args.runs, lambda: timed(run("--help", file=plain), env, work))
            rows.append(("  without .pyc files", f"{plain_help * 1000:.0f} ms", ""))
        version = median(args.runs, lambda: timed(run("--version"), env, work))
        rows.append(("`--version`", f"{version * 1000:.0f} ms", ""))
        baseline = median(args.runs, lambda: timed([python, "-I", "-c", "pass"], env, work))
        rows.append(("  (bare `python -I -c pass`)", f"{baseline * 1000:.0f} ms", ""))
        importing = run("import", "dump.mitm", "--db", "vcr.db")
        few = max(3, args.runs // 4)
        first = median(few, lambda: timed(importing, env, work, before=cold))
        rows.append(
            ("first run, empty cache: `import dump.mitm` (extracts zstd)", f"{first * 1000:.0f} ms", "< 1 s")
        )
        again = median(few, lambda: timed(importing, env, work, before=fresh_db))
        rows.append(("  the same with the cache warm", f"{again * 1000:.0f} ms", ""))
        serving = run("serve", "--port", "0", "--db", "vcr.db", "--mode", "replay")
        banner_cold = median(few, lambda: (cold(), serve_to_banner(serving, env, work))[1])
        rows.append(("`serve` to its banner, empty cache", f"{banner_cold * 1000:.0f} ms", ""))
        banner = median(few, lambda: serve_to_banner(serving, env, work))
        rows.append(("`serve` to its banner, warm", f"{banner * 1000:.0f} ms", ""))
    print(f"claude-vcr.pyz on CPython {sys.version.split()[0]}, {os.cpu_count()} cores\n")
    print("| measure | result | budget |\n| --- | --- | --- |")
    for name, value, budget in rows:
        print(f"| {name} | {value} | {budget} |")


if __name__ == "__main__":
    main()
