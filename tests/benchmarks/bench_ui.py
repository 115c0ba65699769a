"""Benchmark (not a test): `claude-vcr ui` pages on a 100,000-recording db, and the m008 prompt-excerpt backfill.

    python3 tests/benchmarks/bench_ui.py [--recordings 100000] [--workdir DIR]

The viewer runs as its own process (`python -m claude_vcr ui`), as a user starts it; each page is fetched
over loopback, one request at a time, and timed from request to last byte. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from claude_vcr.store import Store  # noqa: E402

from tests.benchmarks.bench_catalog import build_db, timed  # noqa: E402

REPEAT = 9


def fetch_ms(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        response.read()
        assert response.status == 200
    return (time.perf_counter() - started) * 1000


def timed_page(url: str) -> tuple[float, float, float]:
    """(median, first, slowest) ms over REPEAT fetches."""
    times = [fetch_ms(url) for _ in range(REPEAT)]
    return statistics.median(times), times[0], max(times)


def backfill_seconds(db: Path, workdir: Path) -> float:
    """Seconds `m008_prompt_excerpt` takes on a copy of the db made to look as it was before that step."""
    import sqlite3

    copy = workdir / "before-m008.db"
    shutil.copyfile(db, copy)
    conn = sqlite3.connect(copy)
    conn.execute("DROP INDEX recordings_catalog")
    conn.execute("ALTER TABLE recordings DROP COLUMN prompt_excerpt")
    conn.execute(
        """
        CREATE INDEX recordings_catalog ON recordings (
            cassette_id, created_at, key, ordinal, method, path, model, stream, status,
            request_size, response_size, stored_size
        )
        """
    )
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm008_prompt_excerpt'")
    conn.commit()
    conn.close()
    started = time.perf_counter()
    with Store(copy):
        pass
    took = time.perf_counter() - started
    copy.unlink()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path)
    options = parser.parse_args()
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="vcr-bench-ui-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "bench.db"
    if not db.exists():
        seconds = build_db(db, options.recordings)
        print(f"built {options.recordings:,} recordings in {seconds:.1f}s", file=sys.stderr)
    big = options.recordings - options.recordings // 10
    rows: list[tuple[str, str]] = [
        ("db", f"{options.recordings:,} recordings, {db.stat().st_size / 1e6:,.0f} MB")
    ]

    process = subprocess.Popen(
        [sys.executable, "-m", "claude_vcr", "ui", "--db", str(db), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    try:
        assert process.stdout is not None
        match = re.search(r"(http://127\.0\.0\.1:\d+/)", process.stdout.readline())
        assert match, process.stdout.read()
        url = match.group(1)
        with urllib.request.urlopen(url + "c/big?offset=0", timeout=120) as response:
            first_id = re.search(rb'href="/r/(\d+)"', response.read())
        assert first_id
        for label, path in [
            ("index: every cassette with count, size, models, dates (11 cassettes)", ""),
            (f"cassette page, first 100 of `big` ({big:,} recordings)", "c/big"),
            (f"cassette page, last 100 of `big` (offset {big - 100:,})", f"c/big?offset={big - 100}"),
            ("cassette page filtered on the server (`q=task 99999`, all pages)", "c/big?q=task%2099999"),
            ("recording page (~6 KB request, ~10 KB stream, lint)", f"r/{first_id.group(1).decode()}"),
            ("static script file", "static/ui.js"),
        ]:
            median, first, slowest = timed_page(url + path)
            rows.append((label, f"{median:.1f} ms (first {first:.1f} ms, slowest {slowest:.1f} ms)"))
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)

    median, first = timed(["list", "--cassette", "big", "--db", str(db)])
    rows.append(
        (
            f"`list --cassette big` with the PROMPT column ({big:,} lines)",
            f"{median:.0f} ms (first {first:.0f} ms)",
        )
    )
    rows.append(
        (
            f"`m008_prompt_excerpt` on an older copy ({options.recordings:,} rows backfilled)",
            f"{backfill_seconds(db, workdir):.1f} s, once",
        )
    )
    print("| measurement | result |")
    print("| --- | --- |")
    for label, value in rows:
        print(f"| {label} | {value} |")


if __name__ == "__main__":
    main()
