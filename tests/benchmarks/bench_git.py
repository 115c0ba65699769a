"""What committing vcr.db costs a team's git history, against committing the same recordings in the seed's
directory layout (`claude-vcr export`), and how fast the merge driver is at team scale.

`python3 tests/benchmarks/bench_git.py [history|merge|all] [--commits 48]`

history: a team repo gets N commits; each records 4 new Claude Code-sized exchanges (a new test's 4-turn
session: ~49 KB requests re-sending the same tools and system prompt, SSE answers of 3-20 KB of prose) and
re-records 4 older ones (same key, a new answer). The same recordings are committed to three repos: vcr.db
as the proxy leaves it, vcr.db after `claude-vcr compact`, and the seed layout exported from that db. The
size that matters is what a clone downloads: `git clone --no-local --bare` of the repo as committed, where
git's pack-objects computes deltas with its defaults (window 10, depth 50), as a server does for a clone of
loose history (one thread, set in the origin's config, which the serving upload-pack reads: with several,
where the object list is split varies from run to run and so do the sizes, by up to a third); and the same after `git gc --aggressive` on the origin (a server that repacks).

merge: two branches of 5,000 recordings each on a shared base, 500 keys re-recorded on both sides and 500
deleted on one; the time of the merge driver (three-way: base, ours, theirs), checked for what it kept.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.benchmarks.bench_proxy import sse_reply  # noqa: E402

TOOL_TURN = REPO / "tests" / "data" / "claude-code" / "tool-turn-2.json"
TARGET = "/v1/messages?beta=true"
CHECKPOINTS = (1, 12, 24, 36, 48, 72, 96, 120)
"""Where sizes are taken (those up to --commits); past 48, a history longer than git's delta chains (depth 50)."""


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr}")
    return done.stdout


def new_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    settings = {"user.name": "Bench", "user.email": "bench@example.com", "commit.gpgsign": "false", "pack.threads": "1"}
    for key, value in settings.items():
        git(path, "config", key, value)
    return path


PROSE_MODULES = (
    "argparse", "ast", "asyncio", "collections", "csv", "datetime", "decimal", "email", "functools", "http.client",
    "inspect", "itertools", "json", "logging", "os", "pathlib", "pickle", "re", "shutil", "socket", "sqlite3",
    "statistics", "subprocess", "tarfile", "textwrap", "threading", "typing", "unittest", "urllib.parse", "zipfile",
)
"""Answers and tool outputs are cut from the standard library's own docstrings and source: real English
and real code with a real vocabulary (a short word list would let git's cross-file deltas find every word
in the previous file, which real answers do not allow), and none of it in the shipped dictionary's samples."""
_TEXTS: dict[str, list[str]] = {}


def texts() -> tuple[list[str], list[str]]:
    """(sentences of stdlib docstrings, lines of stdlib source), loaded once."""
    if not _TEXTS:
        import importlib
        import inspect

        prose: list[str] = []
        code: list[str] = []
        for name in PROSE_MODULES:
            module = importlib.import_module(name)
            docs = [module.__doc__ or ""] + [getattr(v, "__doc__", "") or "" for _, v in sorted(vars(module).items())]
            for doc in dict.fromkeys(d for d in docs if isinstance(d, str)):
                prose += [s.strip() for s in " ".join(doc.split()).split(". ") if len(s.strip()) > 20]
            try:
                code += [line for line in inspect.getsource(module).splitlines() if line.strip()]
            except (OSError, TypeError):
                pass
        _TEXTS["prose"], _TEXTS["code"] = prose, code
    return _TEXTS["prose"], _TEXTS["code"]


def passage(rng: random.Random, lines: list[str], count: int, joiner: str) -> str:
    start = rng.randrange(len(lines) - count)
    return joiner.join(lines[start : start + count])


def turn_body(session: int, turn: int) -> bytes:
    """Turn `turn` of a Claude Code session: the sample's tools and system prompt, a growing history."""
    base = json.loads(TOOL_TURN.read_text())["body"]
    rng = random.Random(session)
    first = json.loads(json.dumps(base["messages"][:2]).replace("RUN:ls -la", f"run the test_{session} suite"))
    history = list(first)
    for step in range(turn):
        prose, code = texts()
        words = passage(rng, prose, 1, " ")[:200]
        history.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"I will look at {words}."},
                    {"type": "tool_use", "id": f"toolu_{session:03d}{step:03d}", "name": "Bash",
                     "input": {"command": f"cat src/module_{session}_{step}.py"}},
                ],
            }
        )
        output = passage(rng, code, rng.randint(10, 60), "\n")
        history.append(
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": f"toolu_{session:03d}{step:03d}", "content": output}],
            }
        )
    metadata = {"user_id": json.dumps({"device_id": "d" * 64, "session_id": f"{session:08d}-0000"})}
    return json.dumps(dict(base, messages=history, metadata=metadata)).encode()


def answer(seed: int, low: int = 3_000, high: int = 20_000) -> bytes:
    """A streamed answer of `low`-`high` bytes: text deltas of a few words from real prose, as Claude sends."""
    rng = random.Random(seed)
    size = rng.randint(low, high)
    prose, _ = texts()
    text = passage(rng, prose, 200, ". ")
    template = sse_reply(2_000, seed=seed).replace(b"msg_bench", f"msg_{seed:08d}".encode())
    head, _, tail = template.partition(b"event: content_block_delta")
    tail = tail[tail.index(b"event: content_block_stop") :]
    parts, total, position = [head], len(head) + len(tail), 0
    while total < size and position < len(text):
        step = rng.randint(3, 30)
        data = json.dumps({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text[position : position + step]}}, separators=(",", ":"))
        event = f"event: content_block_delta\ndata: {data}\n\n".encode()
        parts.append(event)
        total += len(event)
        position += step
    return b"".join(parts) + tail


def stamp(seconds: float) -> str:
    import datetime

    from claude_vcr.records import timestamp

    return timestamp(datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc))


def make_recording(session: int, turn: int, version: int, when: float):  # -> Recording
    from claude_vcr.records import Recording

    body = turn_body(session, turn)
    reply = answer(session * 1000 + turn * 10 + version)
    return Recording(
        cassette=f"test_{session:03d}",
        key=hashlib.sha256(body).hexdigest(),
        key_scheme="v2",
        method="POST",
        path=TARGET,
        status=200,
        request_headers=[("anthropic-version", "2023-06-01"), ("content-type", "application/json")],
        request_body=body,
        response_headers=[("content-type", "text/event-stream; charset=utf-8"), ("request-id", f"req_{session}_{turn}_{version}")],
        response_body=reply,
        timings=[(len(reply), 900.0)],
        model="claude-opus-5-5",
        stream=True,
        created_at=stamp(when),
    )


def pack_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in (folder / "objects" / "pack").glob("*.pack"))


def clone_size(origin: Path, aggressive: bool = False) -> int:
    """Bytes of the pack a fresh clone of `origin` downloads (of a gc'd copy of it with `aggressive`)."""
    with tempfile.TemporaryDirectory(prefix="bench-git-clone-") as scratch:
        source = origin
        if aggressive:
            source = Path(scratch) / "repacked"
            subprocess.run(["git", "clone", "-q", "--bare", "--no-local", str(origin), str(source)], check=True)
            git(source, "config", "pack.threads", "1")  # read by the upload-pack that serves the clone below
            git(source, "gc", "-q", "--aggressive", "--prune=now")
        target = Path(scratch) / "clone.git"
        subprocess.run(["git", "clone", "-q", "--bare", "--no-local", str(source), str(target)], check=True)
        return pack_bytes(target)


def loose_bytes(repo: Path) -> int:
    return sum(p.stat().st_size for p in (repo / ".git" / "objects").rglob("*") if p.is_file())


def bench_history(commits: int) -> str:
    from claude_vcr.catalog import Catalog
    from claude_vcr.interchange.seed import export_directory
    from claude_vcr.maintenance import compact
    from claude_vcr.store import Store

    work = Path(tempfile.mkdtemp(prefix="bench-git-"))
    repos = {
        "db": new_repo(work / "db"),
        "compacted": new_repo(work / "compacted"),
        "layout": new_repo(work / "layout"),
    }
    rng = random.Random(7)
    recorded: list[tuple[int, int]] = []
    version: dict[tuple[int, int], int] = {}
    sizes: dict[int, dict[str, int]] = {}
    when = 1_780_000_000.0
    for commit in range(1, commits + 1):
        batch = []
        for turn in range(4):
            batch.append((commit, turn))
        older = rng.sample(recorded, min(4, len(recorded)))
        for item in older:
            version[item] = version.get(item, 0) + 1
        with Store(repos["db"] / "vcr.db") as store:
            for session, turn in [*batch, *older]:
                when += 60
                store.save(make_recording(session, turn, version.get((session, turn), 0), when))
        recorded += batch
        shutil.copyfile(repos["db"] / "vcr.db", repos["compacted"] / "vcr.db")
        compact(repos["compacted"] / "vcr.db")
        with Catalog.open(repos["compacted"] / "vcr.db") as catalog:
            export_directory(catalog, repos["layout"] / "cassettes", [], replace=True)
        for repo in repos.values():
            git(repo, "add", "-A")
            git(repo, "commit", "-q", "-m", f"commit {commit}: 4 new, {len(older)} re-recorded")
        if commit in CHECKPOINTS or commit == commits:
            sizes[commit] = {name: clone_size(repo) for name, repo in repos.items()}
            sizes[commit].update({f"{name} loose": loose_bytes(repo) for name, repo in repos.items()})
            if commit in (24, commits):
                sizes[commit].update({f"{name} gc": clone_size(repo, aggressive=True) for name, repo in repos.items()})
            print(f"commit {commit}: {sizes[commit]}", file=sys.stderr)
    working = {
        "db": (repos["db"] / "vcr.db").stat().st_size,
        "compacted": (repos["compacted"] / "vcr.db").stat().st_size,
        "layout": sum(p.stat().st_size for p in (repos["layout"] / "cassettes").rglob("*") if p.is_file()),
    }
    shutil.rmtree(work, ignore_errors=True)
    return history_table(commits, sizes, working)


def history_table(commits: int, sizes: dict[int, dict[str, int]], working: dict[str, int]) -> str:
    marks = sorted(sizes)
    lines = [
        f"### git history: {commits} commits, each 4 new Claude Code exchanges + 4 re-recorded\n",
        "Bytes of the pack a fresh `git clone --no-local` downloads (deltas computed by pack-objects with git's "
        "defaults, as a server does for loose history), per repo holding the same recordings.\n",
        "| after commit | vcr.db as recorded | vcr.db compacted | seed layout | recorded / layout | compacted / layout |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for mark in marks:
        s = sizes[mark]
        lines.append(
            f"| {mark} | {s['db']:,} | {s['compacted']:,} | {s['layout']:,} | {s['db'] / s['layout']:.2f} | "
            f"{s['compacted'] / s['layout']:.2f} |"
        )
    lines += ["", "| per commit, between | vcr.db as recorded | vcr.db compacted | seed layout | recorded / layout | compacted / layout |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for start, end in zip(marks, marks[1:], strict=False):
        d = {name: (sizes[end][name] - sizes[start][name]) / (end - start) for name in ("db", "compacted", "layout")}
        lines.append(
            f"| {start} -> {end} | {d['db']:,.0f} | {d['compacted']:,.0f} | {d['layout']:,.0f} | "
            f"{d['db'] / d['layout']:.2f} | {d['compacted'] / d['layout']:.2f} |"
        )
    lines += ["", "| after `git gc --aggressive` on the origin, then clone | vcr.db as recorded | vcr.db compacted | seed layout |",
              "| --- | ---: | ---: | ---: |"]
    for mark in marks:
        s = sizes[mark]
        if "db gc" in s:
            lines.append(f"| commit {mark} | {s['db gc']:,} | {s['compacted gc']:,} | {s['layout gc']:,} |")
    last = sizes[marks[-1]]
    lines += [
        "",
        f"Local `.git/objects` before any gc after {marks[-1]} commits: vcr.db as recorded {last['db loose']:,}, "
        f"compacted {last['compacted loose']:,}, seed layout {last['layout loose']:,} bytes. Working tree: vcr.db "
        f"{working['db']:,} (compacted {working['compacted']:,}), seed layout {working['layout']:,} bytes.",
        "",
    ]
    return "\n".join(lines)


# --- merge at scale -----------------------------------------------------------------------------------


_SAMPLE: dict = {}


def small_body(index: int) -> bytes:
    """A Claude Code-sized request (the sample's tools and system prompt) whose question is `index`'s."""
    if not _SAMPLE:
        _SAMPLE.update(json.loads(TOOL_TURN.read_text())["body"])
    messages = [{"role": "user", "content": [{"type": "text", "text": f"Please run test case {index} and fix it."}]}]
    return json.dumps(dict(_SAMPLE, messages=messages)).encode()


def bulk(store, items: list[tuple[int, int]], when: float) -> None:  # noqa: ANN001
    from claude_vcr.records import Recording

    with store.transaction():
        for index, version in items:
            body = small_body(index)
            reply = answer(index * 10 + version, 3_000, 8_000)
            store.save(
                Recording(
                    cassette=f"suite_{index % 50:02d}",
                    key=hashlib.sha256(body).hexdigest(),
                    key_scheme="v2",
                    method="POST",
                    path=TARGET,
                    status=200,
                    request_headers=[("content-type", "application/json")],
                    request_body=body,
                    response_headers=[("content-type", "text/event-stream; charset=utf-8")],
                    response_body=reply,
                    timings=[(len(reply), 5.0)],
                    model="claude-opus-5-5",
                    stream=True,
                    created_at=stamp(when + version),
                )
            )


def bench_merge(per_side: int = 5000, shared: int = 500, deleted: int = 500) -> str:
    """Base: `shared` + `deleted` keys. Ours re-records the shared keys and adds its own; theirs re-records them
    later, deletes the other `deleted` and adds its own: each side ends with `per_side` recordings."""
    from claude_vcr.catalog import Catalog
    from claude_vcr.interchange.gitdb import merge
    from claude_vcr.store import Store

    work = Path(tempfile.mkdtemp(prefix="bench-merge-"))
    base, ours, theirs = work / "base.db", work / "ours.db", work / "theirs.db"
    built = time.perf_counter()
    with Store(base) as store:
        bulk(store, [(i, 0) for i in range(shared + deleted)], 1_780_000_000)
    shutil.copyfile(base, ours)
    shutil.copyfile(base, theirs)
    ours_new = list(range(10_000, 10_000 + per_side - shared - deleted))
    theirs_new = list(range(20_000, 20_000 + per_side - shared))
    with Store(ours) as store:
        bulk(store, [(i, 0) for i in ours_new] + [(i, 1) for i in range(shared)], 1_780_000_100)
    with Store(theirs) as store:
        bulk(store, [(i, 0) for i in theirs_new] + [(i, 2) for i in range(shared)], 1_780_000_200)
        doomed = {hashlib.sha256(small_body(i)).hexdigest() for i in range(shared, shared + deleted)}
        ids = [row[0] for row in store.conn.execute("SELECT id, key FROM recordings") if row[1] in doomed]
        store.delete_recordings(ids)
    built = time.perf_counter() - built
    with Catalog.open(theirs) as catalog:
        their_versions = catalog.key_versions()
    count = lambda path: sqlite3.connect(path).execute("SELECT count(*) FROM recordings").fetchone()[0]  # noqa: E731
    sides = (count(base), count(ours), count(theirs))
    sizes = (base.stat().st_size, ours.stat().st_size, theirs.stat().st_size)
    started = time.perf_counter()
    report = merge(base, ours, theirs)
    elapsed = time.perf_counter() - started
    total = count(ours)
    with Catalog.open(ours) as catalog:
        versions = catalog.key_versions()
    shared_keys = {hashlib.sha256(small_body(i)).hexdigest() for i in range(shared)}
    newest = sum(versions[k] == their_versions[k] for k in versions if k[1] in shared_keys)
    expected = len(ours_new) + len(theirs_new) + shared
    merged_size = ours.stat().st_size
    shutil.rmtree(work, ignore_errors=True)
    status = "correct" if total == expected and newest == shared else f"WRONG: expected {expected}"
    return (
        "### Merge driver at team scale\n\n"
        f"Base {sides[0]:,} recordings ({sizes[0] / 1e6:.1f} MB); ours {sides[1]:,} ({sizes[1] / 1e6:.1f} MB: "
        f"{len(ours_new):,} new, {shared} re-recorded); theirs {sides[2]:,} ({sizes[2] / 1e6:.1f} MB: "
        f"{len(theirs_new):,} new, the same {shared} re-recorded later, {deleted} deleted). Claude Code-sized "
        f"requests (49 KB), SSE answers of 3-8 KB; building the three dbs took {built:.0f} s.\n\n"
        "| | value |\n| --- | ---: |\n"
        f"| merge driver (plan + apply in place), s | {elapsed:.2f} |\n"
        f"| recordings after the merge | {total:,} ({status}); {merged_size / 1e6:.1f} MB |\n"
        f"| taken from theirs / deleted / both-sides notes | {report.taken:,} / {report.dropped:,} / "
        f"{len(report.conflicts):,} |\n"
        f"| re-recorded on both sides: the newer (theirs) kept | {newest} of {shared} |\n"
    )


BENCHES: dict[str, Callable[[argparse.Namespace], str]] = {
    "history": lambda args: bench_history(args.commits),
    "merge": lambda args: bench_merge(),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="?", default="all", choices=[*BENCHES, "all"])
    parser.add_argument("--commits", type=int, default=48)
    args = parser.parse_args()
    for name, bench in BENCHES.items():
        if args.which in (name, "all"):
            print(bench(args))


if __name__ == "__main__":
    main()
