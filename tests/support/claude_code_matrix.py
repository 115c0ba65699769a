"""The release matrix: which Claude Code releases, the sessions each records, and one session's run."""

from __future__ import annotations

import json
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support import REPO

RELEASES = {
    "2.1.197": REPO / "tests/node/node_modules/claude-code-old/bin/claude.exe",  # 2026-06-30
    "2.1.229": REPO / "tests/node-releases/node_modules/claude-code-2.1.229/bin/claude.exe",  # 2026-08-12
    "2.1.270": REPO / "tests/node-releases/node_modules/claude-code-2.1.270/bin/claude.exe",  # 2026-09-12
    "2.1.306": REPO / "tests/node-releases/node_modules/claude-code-2.1.306/bin/claude.exe",  # 2026-10-21
    "2.1.328": REPO / "tests/node/node_modules/@anthropic-ai/claude-code/bin/claude.exe",  # 2026-11-18
    "2.1.332": REPO / "tests/node/node_modules/claude-code-next/bin/claude.exe",  # 2026-11-24
    "2.1.337": REPO / "tests/node-releases/node_modules/claude-code-2.1.337/bin/claude.exe",  # 2026-12-04
}
"""Oldest first; tests/node-releases/package.json pins the ones tests/node does not."""

MODEL = ["--model", "claude-opus-4-5-20251101"]
"""The default model is Claude Code's choice and changed three times across these releases; a suite that wants
its recordings to outlive a release pins the model, as a user would."""

SIDE_REQUESTS = {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": ""}
"""Nonessential traffic on: Claude Code also asks a small model for the session's title (a side request)."""

FOREGROUND_SUBAGENTS = {"CLAUDE_CODE_DISABLE_BACKGROUND_TASKS": "1"}
"""Since 2.1.229 Claude Code starts a subagent in the background, and whether the main loop takes one more turn
depends on whether it reports back before the turn ends (timing); with background tasks off (a documented
variable) the Agent tool waits for the subagent as 2.1.197 always did, and the session replays strict."""

NOT_REPLAYED = ("background-subagent",)
"""Recorded (its requests are in the no-collision check) but not replayed: its requests depend on timing."""


@dataclass(frozen=True)
class Session:
    """One or more `claude -p` runs in one directory (a later run may `--continue` the earlier)."""

    name: str
    runs: tuple[tuple[str, ...], ...]
    expected: tuple[str, ...]
    """One of these is in the last run's output (a subagent may finish before or after the main turn ends)."""
    env: tuple[tuple[str, str], ...] = ()


SESSIONS = (
    Session("text-turn", (("Summarise what this project does.",),), ("Scripted reply number",)),
    Session("bash-turn", (("Please RUN:echo vcr-tool-ok", "--allowedTools", "Bash"),), ("vcr-tool-ok",)),
    Session(
        "continue",
        (("Remember the word teal.",), ("--continue", "Which word did I ask you to remember?")),
        ("Scripted",),
    ),
    Session(
        "subagent",
        (("AGENT: Say hello from the subagent",),),
        ("subagent", "Scripted reply number"),
        tuple(FOREGROUND_SUBAGENTS.items()),
    ),
    Session(
        "background-subagent",
        (("AGENT: Say hello from the background subagent",),),
        ("subagent", "Scripted reply number"),
    ),
    Session(
        "side-requests",
        (("Name this session: a shop app review.",),),
        ("Scripted",),
        tuple(SIDE_REQUESTS.items()),
    ),
)


REPLAYED = tuple(s for s in SESSIONS if s.name not in NOT_REPLAYED)


def installed(version: str) -> bool:
    return RELEASES[version].exists()


def later(version: str) -> list[str]:
    names = list(RELEASES)
    return names[names.index(version) + 1 :]


def run_session(
    run,
    binary: Path,
    base_url: str,
    workdir: Path,
    home: Path,
    session: Session,
    date: str | None = None,
    env: dict[str, str] | None = None,
) -> list[subprocess.CompletedProcess]:
    """Every run of a session, in order, in one directory and HOME."""
    workdir.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    (workdir / "README.md").write_text("A small shop app.\n")
    extra = {**dict(session.env), **(env or {})}
    return [
        run(str(binary), base_url, workdir, home, *args, *MODEL, env=extra, date=date)
        for args in session.runs
    ]


@dataclass
class Recorded:
    """One release's recorded sessions: the db, and each session's outputs as the recording run printed them."""

    version: str
    db: Path
    outputs: dict[str, list[str]]
    seconds: float


def record_release(
    loop_thread, folder: Path, version: str, run: Callable | None = None, binary: Path | str | None = None
) -> Recorded:
    """Record every session of `SESSIONS` with one release through a record-mode proxy under the preset; `run`
    (`run_claude`'s signature) and `binary` drive another client of the same harness (the Agent SDK)."""
    from claude_vcr.config import ProxyConfig
    from claude_vcr.matching import Rules

    from tests.support.claude_code import run_claude
    from tests.support.loopback import serving
    from tests.support.proxies import ProxyHandle
    from tests.support.upstream import ScriptedUpstream

    started = time.monotonic()
    db = folder / "vcr.db"
    outputs: dict[str, list[str]] = {}
    with serving(loop_thread, ScriptedUpstream()) as upstream:
        config = ProxyConfig(
            db=db, upstream=upstream.url, port=0, mode="record", rules=Rules().with_presets("claude-code")
        )
        recorder = ProxyHandle(loop_thread, config)
        try:
            for session in SESSIONS:
                runs = run_session(
                    run or run_claude,
                    binary or RELEASES[version],
                    recorder.url,
                    folder / session.name / "shop-app",
                    folder / session.name / "home",
                    session,
                )
                for result in runs:
                    assert result.returncode == 0, f"{version} {session.name}: {result.stdout}{result.stderr}"
                assert any(e in runs[-1].stdout for e in session.expected), f"{version} {session.name}: {runs[-1].stdout}"
                outputs[session.name] = [r.stdout for r in runs]
        finally:
            recorder.stop()
    return Recorded(version, db, outputs, time.monotonic() - started)


def replay_sessions(
    loop_thread,
    db: Path,
    binary: Path | str,
    folder: Path,
    *,
    run: Callable | None = None,
    date: str | None = None,
    env: dict[str, str] | None = None,
    sessions=SESSIONS,
) -> dict[str, list[str]]:
    """Replay sessions with `binary` from another directory and HOME through a replay-mode proxy; each
    session's outputs. The proxy's upstream is a scripted one that must see no request at all."""
    from claude_vcr.config import ProxyConfig

    from tests.support.claude_code import run_claude
    from tests.support.loopback import serving
    from tests.support.proxies import ProxyHandle
    from tests.support.upstream import ScriptedUpstream

    outputs = {}
    scripted = ScriptedUpstream()
    with serving(loop_thread, scripted) as upstream:
        replayer = ProxyHandle(loop_thread, ProxyConfig(db=db, upstream=upstream.url, port=0, mode="replay"))
        try:
            for session in sessions:
                runs = run_session(
                    run or run_claude,
                    binary,
                    replayer.url,
                    folder / session.name / "checkout",
                    folder / session.name / "laptop-home",
                    session,
                    date=date,
                    env=env,
                )
                outputs[session.name] = [r.stdout for r in runs]
                for result in runs:
                    assert result.returncode == 0, f"{session.name}: {result.stdout}{result.stderr}"
        finally:
            replayer.stop()
    assert scripted.calls == [], f"{len(scripted.calls)} requests reached the upstream"
    return outputs


def truth(body: dict) -> str:
    """Everything that tells two requests' purposes and conversations apart, however unstable across releases."""
    from claude_vcr import claude_code

    return json.dumps(
        {
            "system": [
                b.get("text")
                for b in body.get("system") or []
                if not str(b.get("text", "")).startswith(claude_code.BILLING)
            ],
            "tools": sorted(t.get("name", "") for t in body.get("tools") or []),
            "format": (body.get("output_config") or {}).get("format"),
            "model": body.get("model"),
            "conversation": claude_code.conversation(body),
        },
        sort_keys=True,
    )


@dataclass
class Collisions:
    """The no-collision property over one db: keys shared by requests that differ in purpose or conversation."""

    keys: int
    purposes: set[str]
    shared: dict[str, list[str]]


def collisions(db: Path) -> Collisions:
    """Every recording's key against `truth` of its request: a key shared by two truths is a collision."""
    from claude_vcr import claude_code
    from claude_vcr.catalog import Catalog

    by_key: dict[str, set[str]] = defaultdict(set)
    purposes = set()
    catalog = Catalog.open(db)
    try:
        for recording in catalog.iter_details():
            body = json.loads(recording.request_body)
            by_key[recording.key].add(truth(body))
            purposes.add(json.dumps(claude_code.purpose(body), sort_keys=True))
    finally:
        catalog.close()
    shared = {key[:12]: sorted(t[:200] for t in truths) for key, truths in by_key.items() if len(truths) > 1}
    return Collisions(len(by_key), purposes, shared)
