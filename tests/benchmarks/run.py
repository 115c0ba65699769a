"""Run every benchmark and write BENCHMARKS.md: `python3 tests/benchmarks/run.py [NAME ...]`.

Each benchmark is a script that prints markdown; ratios against peers are measured in the same run, so the
machine's own speed cancels out. Close other work on the machine first: two cores are shared with the load
generator.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BENCHMARKS = {
    "replay": [sys.executable, str(HERE / "bench_proxy.py"), "replay"],
    "record": [sys.executable, str(HERE / "bench_proxy.py"), "record"],
    "storage": [sys.executable, str(HERE / "bench_proxy.py"), "storage"],
    "memory": [sys.executable, str(HERE / "bench_proxy.py"), "memory"],
    "miss": [sys.executable, str(HERE / "bench_proxy.py"), "miss"],
    "catalog": [sys.executable, str(HERE / "bench_catalog.py")],
    "pyz": [sys.executable, str(HERE / "bench_pyz.py")],
    "ui": [sys.executable, str(HERE / "bench_ui.py")],
    "reliability": [sys.executable, str(HERE / "bench_reliability.py")],
    "pytest": [sys.executable, str(HERE / "bench_pytest.py")],
    "hostile": [sys.executable, str(HERE / "bench_hostile.py")],
    "providers": [sys.executable, str(HERE / "bench_providers.py")],
    "git": [sys.executable, str(HERE / "bench_git.py"), "all"],
    "claude-code-key": [sys.executable, str(HERE / "bench_claude_code_key.py")],
}


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    memory = next(
        line.split()[1]
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return (
        f"{cpu}, {os.cpu_count()} cores, {int(memory) // 1024 // 1024} GB RAM, {platform.system()} {platform.release()}, "
        f"CPython {platform.python_version()}"
    )


def main(names: list[str]) -> None:
    sections = []
    for name in names or list(BENCHMARKS):
        started = time.monotonic()
        print(f"running {name}...", file=sys.stderr, flush=True)
        result = subprocess.run(BENCHMARKS[name], cwd=REPO, capture_output=True, text=True)
        took = time.monotonic() - started
        if result.returncode != 0:
            sections.append(f"## {name}\n\nfailed after {took:.0f} s:\n\n```\n{result.stderr[-2000:]}\n```\n")
        else:
            sections.append(f"## {name}\n\n{result.stdout.strip()}\n")
    text = (
        "# Benchmarks\n\n"
        f"Written by `python3 tests/benchmarks/run.py` on {time.strftime('%Y-%m-%d')}.\n"
        f"Machine: {machine()}.\n\n" + "\n".join(sections)
    )
    (REPO / "BENCHMARKS.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main(sys.argv[1:])
