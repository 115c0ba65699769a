"""Benchmark (not a test): what a hostile vcr.db or .mitm dump costs each command (issue 23).

    python3 tests/benchmarks/bench_hostile.py [--deltas 80000,320000,1000000] [--workdir DIR] [--streams-only]

Every case runs in a process of its own, as a user runs it; its peak memory is that process's own
(`os.wait4` rusage ru_maxrss for a command, /proc/PID/status VmHWM for `serve`, read just before it stops).
The dbs are built as an attacker would: a db of ordinary recordings made by claude-vcr, then edited with
sqlite3 (tests/support/hostile.py). Target (issue 23): under 300 MB for replay, show, scan, dump, export and
import of every bomb. Also timed: an unrelated replay while a bomb is being replayed (the proxy side's target
is under 100 ms), and show/lint of long valid streams (the folds must be linear). Prints markdown.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from claude_vcr.catalog import Catalog  # noqa: E402

from tests.support import hostile  # noqa: E402
from tests.support.cassettes import recording, save_all  # noqa: E402
from tests.support.faults import free_port, wait_listening  # noqa: E402

MB = 1024 * 1024
TIME = shutil.which("time") or "/usr/bin/time"


def command(*args: str | Path) -> tuple[int, float, float, str]:
    """(exit status, peak RSS MB, seconds, last line of stderr) of one claude-vcr command. The peak comes
    from GNU time, a small process between us and the command: a child's ru_maxrss starts from its parent's
    size at fork, so this process (which built the bombs) must not be that parent."""
    code, peak, seconds, last, _ = output_of(*args)
    return code, peak, seconds, last


def output_of(*args: str | Path) -> tuple[int, float, float, str, int]:
    """`command`, and how many bytes the command printed."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        result = subprocess.run(
            [TIME, "-f", "MAXRSS %M", sys.executable, "-m", "claude_vcr", *map(str, args)],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        printed = out.seek(0, 2)
    lines = result.stderr.strip().splitlines()
    peak = int(lines[-1].split()[-1]) / 1024 if lines and lines[-1].startswith("MAXRSS") else float("nan")
    messages = [line for line in lines if not line.startswith(("MAXRSS", "Command exited"))]
    return result.returncode, peak, time.perf_counter() - started, (messages or [""])[-1], printed


def base_db(path: Path) -> tuple[bytes, bytes]:
    """A db of two recordings (JSON, stream); returns their request bodies."""
    path.unlink(missing_ok=True)
    items = [recording(1), recording(2, stream=True)]
    save_all(path, items)
    return items[0].request_body, items[1].request_body


def bombed(workdir: Path, name: str, *, declared: bool, honest: bool, target: str = "response") -> Path:
    db = workdir / f"{name}.db"
    base_db(db)
    frame = hostile.bomb_frame(hostile.GIB, declared=declared)
    if target == "fingerprints":
        hostile.execute(db, "UPDATE recordings SET fingerprints = ?", params=(frame,))
    else:
        hostile.plant_response_bomb(db, frame, stated_size=hostile.GIB if honest else None)
    return db


def post(url: str, body: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    request = urllib.request.Request(
        url, data=body, headers={"content-type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            while response.read(1 << 20):
                pass
            status = response.status
    except urllib.error.HTTPError as error:
        error.read()
        status = error.code
    except OSError:
        status = 0
    return status, (time.perf_counter() - started) * 1000


def replay(db: Path, body: bytes, unrelated: bytes | None = None) -> tuple[int, float, float, float | None]:
    """(status, serve's peak RSS MB, ms, slowest unrelated replay ms while the hostile one ran)."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "claude_vcr",
            "serve",
            "--db",
            str(db),
            "--port",
            str(port),
            "--mode",
            "replay",
            "--cassette",
            "bulk",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_listening(port, time.monotonic() + 60, lambda: process.poll() is None)
        url = f"http://127.0.0.1:{port}/v1/messages"
        if unrelated is not None:
            post(url, unrelated)  # warm: the first request opens the db
        waits: list[float] = []
        done = threading.Event()

        def others() -> None:
            while not done.is_set():
                waits.append(post(url, unrelated)[1])  # type: ignore[arg-type]
                time.sleep(0.02)

        thread = threading.Thread(target=others) if unrelated is not None else None
        if thread:
            thread.start()
        status, ms = post(url, body)
        done.set()
        if thread:
            thread.join()
        peak = _vm_hwm(process.pid)
    finally:
        process.terminate()
        process.wait(60)
    return status, peak, ms, max(waits) if waits else None


def _vm_hwm(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bomb_rows(workdir: Path) -> list[str]:
    rows = []
    for declared in (True, False):
        for honest in (True, False):
            label = (
                f"1 GiB response, size {'in' if declared else 'not in'} the frame, "
                f"row says {'1 GiB' if honest else 'its old size'}"
            )
            db = bombed(workdir, f"bomb-{declared}-{honest}", declared=declared, honest=honest)
            with Catalog.open(db) as catalog:
                key = next(r.key for r in catalog.recordings("bulk") if not r.stream)
            json_body, stream_body = base_db(workdir / "scratch.db")
            status, peak, ms, wait = replay(db, json_body, stream_body)
            rows.append(
                _row(label, "replay", status, peak, ms, f"unrelated replay waited at most {wait:,.0f} ms")
            )
            for name, args in (
                ("show", ["show", key[:12], "--db", db]),
                ("scan", ["scan", "--db", db]),
                ("dump", ["dump", db]),
                ("export", ["export", workdir / f"out-{declared}-{honest}", "--db", db]),
            ):
                code, peak, seconds, last = command(*args)
                rows.append(_row(label, name, code, peak, seconds * 1000, last))
    db = bombed(workdir, "fingerprints", declared=False, honest=True, target="fingerprints")
    status, peak, ms, wait = replay(db, b'{"model":"claude-haiku-4-5","max_tokens":5,"messages":[]}')
    rows.append(_row("1 GiB `fingerprints`", "strict miss", status, peak, ms, "miss diagnosis"))
    for coding in ("zstd", "gzip"):
        dump = workdir / f"bomb-{coding}.mitm"
        size = hostile.bomb_mitm_dump(dump, coding, hostile.GIB if coding == "zstd" else 256 * MB)
        code, peak, seconds, last = command("import", dump, "--db", workdir / f"import-{coding}.db")
        label = f"{size / 1024:,.0f} KB .mitm, {coding} body of {'1 GiB' if coding == 'zstd' else '256 MB'}"
        rows.append(_row(label, "import", code, peak, seconds * 1000, last))
    return rows


def _row(case: str, what: str, status: int, peak: float, ms: float, note: str) -> str:
    note = note.replace("|", "\\|")[:140]
    return f"| {case} | {what} | {status} | {peak:,.0f} | {ms:,.0f} | {note} |"


def stream_rows(workdir: Path, deltas: list[int]) -> list[str]:
    rows = []
    for count in deltas:
        db = workdir / f"long-{count}.db"
        base_db(db)
        hostile.plant_long_stream(db, count)
        with Catalog.open(db) as catalog:
            key = next(r.key for r in catalog.recordings("bulk") if r.stream)
        size = len(hostile.long_stream(count)) / MB
        for name, args in (("show", ["show", key[:12], "--db", db]), ("lint", ["lint", "--db", db])):
            code, peak, seconds, _, printed = output_of(*args)
            rows.append(
                f"| {count:,} deltas ({size:,.0f} MB) | {name} | {code} | {peak:,.0f} | {seconds:,.1f} "
                f"| {printed:,} |"
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deltas", default="80000,320000,1000000")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--streams-only", action="store_true", help="only the long valid streams")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if not args.streams_only:
            print("| hostile input | command | exit/status | peak RSS MB | ms | outcome |")
            print("| --- | --- | --- | --- | --- | --- |")
            for row in bomb_rows(workdir):
                print(row, flush=True)
            print()
        print("| valid long stream | command | exit | peak RSS MB | seconds | bytes printed |")
        print("| --- | --- | --- | --- | --- | --- |")
        for row in stream_rows(workdir, [int(n) for n in args.deltas.split(",") if n]):
            print(row, flush=True)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
