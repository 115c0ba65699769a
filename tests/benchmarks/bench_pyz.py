"""Measure the single-file build against its budgets: size, warm `--help`, first run with extraction.

    python3 tests/benchmarks/bench_pyz.py [--runs 21] [--pyz dist/claude-vcr.pyz]

Builds the default pyz (CPython 3.10 to 3.13 on this platform; and one without .pyc files, for comparison)
unless --pyz is given, then runs the same file with `python -I` from a venv without packages of each of those
Pythons found on this machine (this one, PATH, pyenv), in a temp folder, and prints a markdown table with a
column per Python. Times are medians of wall-clock runs of whole processes, interpreter start included.
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

import build_zipapp  # noqa: E402
from tests.support.mitm import flow_state, tnetstring  # noqa: E402

BUDGETS = {"size": 12_000_000, "help": 0.150, "first": 1.0}


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


def measure(python: str, pyz: Path, plain: Path | None, work: Path, runs: int) -> dict[str, str]:
    """One interpreter's column: its own bare venv, cache and db."""
    subprocess.run([python, "-m", "venv", "--without-pip", str(work / "venv")], check=True)
    bare = str(work / "venv" / "bin" / "python")
    cache = work / "cache"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(work), "VCR_CACHE_DIR": str(cache)}
    (work / "dump.mitm").write_bytes(tnetstring(flow_state()))

    def run(*argv: str, file: Path = pyz) -> list[str]:
        return [bare, "-I", str(file), *argv]

    def cold() -> None:
        subprocess.run(["rm", "-rf", str(cache), str(work / "vcr.db")], check=True)

    def fresh_db() -> None:
        subprocess.run(["rm", "-f", str(work / "vcr.db")], check=True)

    column: dict[str, str] = {}
    column["help"] = f"{median(runs, lambda: timed(run('--help'), env, work)) * 1000:.0f} ms"
    if plain:
        plain_help = median(runs, lambda: timed(run("--help", file=plain), env, work))
        column["help-plain"] = f"{plain_help * 1000:.0f} ms"
    column["version"] = f"{median(runs, lambda: timed(run('--version'), env, work)) * 1000:.0f} ms"
    column["bare"] = f"{median(runs, lambda: timed([bare, '-I', '-c', 'pass'], env, work)) * 1000:.0f} ms"
    importing = run("import", "dump.mitm", "--db", "vcr.db")
    few = max(3, runs // 4)
    column["first"] = f"{median(few, lambda: timed(importing, env, work, before=cold)) * 1000:.0f} ms"
    column["again"] = f"{median(few, lambda: timed(importing, env, work, before=fresh_db)) * 1000:.0f} ms"
    serving = run("serve", "--port", "0", "--db", "vcr.db", "--mode", "record")
    column["banner-cold"] = f"{median(few, lambda: (cold(), serve_to_banner(serving, env, work))[1]) * 1000:.0f} ms"
    column["banner"] = f"{median(few, lambda: serve_to_banner(serving, env, work)) * 1000:.0f} ms"
    return column


ROWS = [
    ("help", "`--help`, warm (median of {runs})", "< 150 ms"),
    ("help-plain", "  the same from a pyz without .pyc files", ""),
    ("version", "`--version`", ""),
    ("bare", "  (bare `python -I -c pass`)", ""),
    ("first", "first run, empty cache: `import dump.mitm` (extracts zstd)", "< 1 s"),
    ("again", "  the same with the cache warm", ""),
    ("banner-cold", "`serve` to its banner, empty cache", ""),
    ("banner", "`serve` to its banner, warm", ""),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--pyz", type=Path, help="measure this file instead of building one")
    args = parser.parse_args()
    pythons = {v: build_zipapp.find_python(v) for v in build_zipapp.DEFAULT_PYTHONS}
    found = {v: exe for v, exe in pythons.items() if exe}
    with tempfile.TemporaryDirectory(prefix="bench-pyz-") as temp:
        work = Path(temp)
        pyz, plain, built = args.pyz, None, None
        if pyz is None:
            pyz, plain = work / "claude-vcr.pyz", work / "no-pyc.pyz"
            built = build(pyz)
            build(plain, "--no-compile")
        columns = {}
        for version, python in found.items():
            folder = work / f"py{version}"
            folder.mkdir()
            columns[version] = measure(python, pyz, plain, folder, args.runs)
        size = pyz.stat().st_size
        plain_size = plain.stat().st_size if plain else None
    print(
        f"One claude-vcr.pyz for CPython {', '.join(build_zipapp.DEFAULT_PYTHONS)} on this platform, run by each "
        f"Python found here; {os.cpu_count()} cores shared with whatever else runs (figures move by 20-40%).\n"
    )
    missing = [v for v, exe in pythons.items() if not exe]
    if missing:
        print(f"Not found on this machine, so not measured: CPython {', '.join(missing)}.\n")
    if built is not None:
        print(f"Build (warm download cache): {built:.1f} s. ", end="")
    print(f"Size: {size / 1e6:.2f} MB (budget < {BUDGETS['size'] / 1e6:.0f} MB)", end="")
    print(f"; without .pyc files {plain_size / 1e6:.2f} MB.\n" if plain_size else ".\n")
    versions = list(columns)
    print("| measure | " + " | ".join(f"CPython {v}" for v in versions) + " | budget |")
    print("| --- | " + " | ".join("---" for _ in versions) + " | --- |")
    for key, label, budget in ROWS:
        if all(key in columns[v] for v in versions):
            cells = " | ".join(columns[v][key] for v in versions)
            print(f"| {label.format(runs=args.runs)} | {cells} | {budget} |")


if __name__ == "__main__":
    main()
