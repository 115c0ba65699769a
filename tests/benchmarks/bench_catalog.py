"""Benchmark (not a test): `stats` and `list` on 100,000 recordings, and importing a ~100 MB mitmproxy dump.

    python3 tests/benchmarks/bench_catalog.py [--recordings 100000] [--dump-mb 100] [--workdir DIR]

Every command runs as its own process, as a user would run it (`python -m claude_vcr ...`), so start-up time is
included. Prints a markdown table for the README.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from claude_vcr.matching import KEY_SCHEME, key_request  # noqa: E402
from claude_vcr.records import Recording  # noqa: E402
from claude_vcr.store import Store  # noqa: E402

from tests.support.mitm import synthetic_flow  # noqa: E402

MODELS = ["claude-opus-5-5", "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"]
WORDS = "the a tool file read write test code run result error value list model stream token".split()


def make_recording(index: int, cassette: str, rng: random.Random) -> Recording:
    """A Claude-Code-sized exchange: a ~6 KB request, a ~10 KB SSE reply (compressing roughly as real ones)."""
    text = " ".join(rng.choices(WORDS, k=900))
    body = json.dumps(
        {
            "model": MODELS[index % 3],
            "max_tokens": 32000,
            "stream": index % 4 != 0,
            "system": [{"type": "text", "text": "You are Claude Code. " * 40}],
            "messages": [{"role": "user", "content": f"task {index}: {text}"}],
        }
    ).encode()
    reply = " ".join(rng.choices(WORDS, k=1500))
    events = [
        {"type": "message_start", "message": {"id": f"msg_{index}"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": reply}},
        {"type": "message_stop"},
    ]
    sse = b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)
    keyed = key_request("POST", "/v1/messages", "", body)
    return Recording(
        cassette=cassette,
        key=keyed.key,
        key_scheme=KEY_SCHEME,
        method="POST",
        path="/v1/messages",
        status=200,
        request_headers=[("anthropic-version", "2023-06-01")],
        request_body=body,
        response_headers=[("content-type", "text/event-stream")],
        response_body=sse,
        timings=[(len(sse), 120.0)],
        model=MODELS[index % 3],
        stream=index % 4 != 0,
        created_at=f"2025-{1 + index % 12:02d}-{1 + index % 28:02d}T12:00:{index % 60:02d}.{index % 1000:03d}Z",
        fingerprints=keyed.fingerprints,
    )


def build_db(path: Path, recordings: int) -> float:
    """One big cassette (90%) and ten suites (10%); returns seconds taken."""
    rng = random.Random(7)
    suites = 10
    per_suite = recordings // 10 // suites
    started = time.perf_counter()
    with Store(path) as store, store.transaction():
        for index in range(recordings):
            cassette = f"suite_{index % suites}" if index < per_suite * suites else "big"
            store.save(make_recording(index, cassette, rng))
    return time.perf_counter() - started


def run_measured(args: list[str]) -> tuple[float, int]:
    """Seconds and peak RSS (KiB) of one process, measured with wait4 on that process alone."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "claude_vcr", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if status:
        raise SystemExit(f"claude-vcr {' '.join(args)} failed: {process.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss


def timed(args: list[str], repeat: int = 7) -> tuple[float, float]:
    """(median, first) wall time in ms over `repeat` runs."""
    times = [run_measured(args)[0] * 1000 for _ in range(repeat)]
    return statistics.median(times), times[0]


def write_dump(path: Path, megabytes: int) -> tuple[int, int]:
    """A synthetic dump of distinct ~20 KB flows; returns (flows, bytes)."""
    flows = 0
    with path.open("wb") as out:
        while out.tell() < megabytes * 1024 * 1024:
            out.write(synthetic_flow(flows, 20_000))
            flows += 1
    return flows, path.stat().st_size


def disk_speed(path: Path) -> tuple[float, float]:
    """MB/s reading the file and copying it (read + write + fsync), for comparison with import."""
    size = path.stat().st_size / 1e6
    started = time.perf_counter()
    with path.open("rb") as handle:
        while handle.read(1 << 20):
            pass
    read = size / (time.perf_counter() - started)
    copy = path.with_suffix(".copy")
    started = time.perf_counter()
    shutil.copyfile(path, copy)
    with copy.open("rb+") as handle:
        os.fsync(handle.fileno())
    written = size / (time.perf_counter() - started)
    copy.unlink()
    return read, written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=100_000)
    parser.add_argument("--dump-mb", type=int, default=100)
    parser.add_argument("--workdir", type=Path)
    options = parser.parse_args()
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="vcr-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db = workdir / "bench.db"
    rows: list[tuple[str, str]] = []

    if not db.exists():
        seconds = build_db(db, options.recordings)
        print(f"built {options.recordings:,} recordings in {seconds:.1f}s", file=sys.stderr)
    size_mb = db.stat().st_size / 1e6
    rows.append(("db", f"{options.recordings:,} recordings, {size_mb:,.0f} MB"))
    baseline, _ = timed(["--version"])
    rows.append(("`claude-vcr --version` (start-up alone)", f"{baseline:.0f} ms"))
    big = options.recordings - options.recordings // 10
    for label, args in [
        ("`stats` (all 11 cassettes)", ["stats", "--db", str(db)]),
        (f"`stats --cassette big` ({big:,} recordings)", ["stats", "--cassette", "big", "--db", str(db)]),
        ("`cassettes`", ["cassettes", "--db", str(db)]),
        (
            f"`list --cassette suite_3` ({options.recordings // 100:,} lines)",
            ["list", "--cassette", "suite_3", "--db", str(db)],
        ),
        (f"`list --cassette big` ({big:,} lines)", ["list", "--cassette", "big", "--db", str(db)]),
        (
            f"`list --cassette big --json` ({big:,} records)",
            ["list", "--cassette", "big", "--json", "--db", str(db)],
        ),
    ]:
        median, first = timed(args)
        rows.append((label, f"{median:.0f} ms (first run {first:.0f} ms)"))

    dump = workdir / "bench.mitm"
    flows, dump_bytes = write_dump(dump, options.dump_mb)
    small = workdir / "small.mitm"
    small_flows, small_bytes = write_dump(small, max(1, options.dump_mb // 4))
    read_speed, copy_speed = disk_speed(dump)
    for name, path, count, size in (
        ("small", small, small_flows, small_bytes),
        ("large", dump, flows, dump_bytes),
    ):
        target = workdir / f"import-{name}.db"
        target.unlink(missing_ok=True)
        seconds, rss = run_measured(["import", str(path), "--db", str(target)])
        rate = size / 1e6 / seconds
        rows.append(
            (
                f"`import` of a {size / 1e6:,.0f} MB dump ({count:,} flows)",
                f"{seconds:.1f} s, {rate:.0f} MB/s, peak RSS {rss / 1024:.0f} MB",
            )
        )
    rows.append(("disk, same file", f"read {read_speed:,.0f} MB/s, copy + fsync {copy_speed:,.0f} MB/s"))

    print("| measurement | result |")
    print("| --- | --- |")
    for label, value in rows:
        print(f"| {label} | {value} |")


if __name__ == "__main__":
    main()
