"""The README's first screen stays true: its commands are run as pasted, against the scripted upstream.

What is changed from the text, and why: `python3 dist/claude-vcr.pyz` runs this checkout (`python -m
claude_vcr`; the pyz itself is built and run by test_zipapp.py), `--upstream URL` is added so nothing reaches
the paid API, `claude` is the pinned Claude Code CLI from tests/node, and in the `serve` block port 8000 becomes
a free port and `sleep 1` a wait for the port (other test runs may hold 8000, and a loaded machine may take
longer than a second).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.loopback import free_port, unreachable_url

README = (REPO / "README.md").read_text(encoding="utf-8")
PYZ = "python3 dist/claude-vcr.pyz"


def bash_blocks(section: str) -> list[str]:
    """The ```bash blocks of a README section (from its heading to the next `## `)."""
    start = README.index(section)
    end = README.find("\n## ", start + len(section))
    return re.findall(r"```bash\n(.*?)```", README[start : end if end != -1 else None], re.S)


def first_screen() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README, re.S)[0].splitlines()


def test_the_first_lines_say_what_it_is_then_run_and_test():
    title, _, sentence = README.split("\n")[:3]
    assert title == "# claude-vcr" and sentence.startswith("claude-vcr records")
    run, test = first_screen()
    assert "# run:" in run and " serve " in run + " " and "--db" not in run  # the default ./vcr.db
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert test.split("#")[0].strip() == ci == "bash tests/install.sh && python3 -m pytest"


def test_the_first_screen_warns_about_the_paid_api_and_gives_prerequisites():
    head = README[: README.index("## Quick start")]
    assert "Recording costs money" in head and "API key" in head
    assert "Python 3.10 or later" in head and "npm only for the" in head
    assert "the seed" not in README


def pasted(block: str, upstream: str, port: int | None = None) -> str:
    """The block with the substitutions this module's docstring lists."""
    script = block.replace(PYZ, f"{sys.executable} -m claude_vcr")
    assert "python3 build_zipapp.py" in script.splitlines()[0] or port is not None
    if port is None:
        script = "\n".join(script.splitlines()[1:])  # the build: test_zipapp.py
    script = re.sub(r" (run|serve) ", rf" \1 --upstream {upstream} ", script)
    if port is not None:
        script = script.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace(" serve ", f" serve --port {port} ")
        wait = f"until (echo > /dev/tcp/127.0.0.1/{port}) 2>/dev/null; do sleep 0.1; done"
        script = script.replace("sleep 1", wait)
    return script


def run_bash(script: str, cwd: Path, home: Path, claude: str) -> subprocess.CompletedProcess:
    env = {
        "PATH": f"{Path(claude).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PYTHONPATH": str(REPO),
        "HOME": str(home),
        "ANTHROPIC_API_KEY": "sk-ant-api03-EXAMPLE-quick-start-key",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "TERM": "dumb",
    }
    return subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    workdir, home = tmp_path / "project", tmp_path / "home"
    workdir.mkdir()
    home.mkdir()
    (workdir / "README.md").write_text("A small shop app.\n")
    return workdir, home


@pytest.mark.claude_code
def test_quick_start_run_records_then_replays_with_the_upstream_down(claude, upstream, project):
    workdir, home = project
    block = bash_blocks("## Quick start")[0]
    record_line, replay_line = block.splitlines()[1:3]
    assert "--mode record" in record_line and "--mode replay" in replay_line
    recorded = run_bash(pasted(block.replace(replay_line + "\n", ""), upstream.url), workdir, home, claude)
    assert recorded.returncode == 0, recorded.stderr
    assert "Scripted reply number" in recorded.stdout and upstream.script.message_calls()
    assert "1 recorded, 0 replayed, 0 missed" in recorded.stderr  # run's summary, on stderr
    upstream.stop()
    calls = len(upstream.calls)
    replay_only = "\n".join([block.splitlines()[0], replay_line])
    replayed = run_bash(pasted(replay_only, unreachable_url()), workdir, home, claude)
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == recorded.stdout
    assert "0 recorded, 1 replayed, 0 missed" in replayed.stderr
    assert len(upstream.calls) == calls
    assert (workdir / "vcr.db").exists() and not (workdir / "vcr.db-wal").exists()


@pytest.mark.claude_code
def test_quick_start_serve_block_records_stops_and_replays(claude, upstream, project):
    workdir, home = project
    block = bash_blocks("## Quick start")[1]
    assert block.count("kill %1") == 2, "the recorder is stopped before the replayer starts"
    result = run_bash(pasted(block, upstream.url, port=free_port()), workdir, home, claude)
    assert result.returncode == 0, result.stdout + result.stderr
    answers = [line for line in result.stdout.splitlines() if "Scripted reply number" in line]
    assert len(answers) == 2 and answers[0] == answers[1]
    outcomes = re.findall(r"^(recorded|hit|hit-repeat|miss) +\w+ POST /v1/messages", result.stdout, re.M)
    assert "recorded" in outcomes and "hit" in outcomes
    # strict replay never forwards: every call the upstream saw was recorded by the first proxy
    assert len(upstream.script.message_calls()) == outcomes.count("recorded")


def test_shell_completion_as_documented():
    documented = next(line for line in README.splitlines() if "_CLAUDE_VCR_COMPLETE=bash_source" in line)
    assert documented.startswith('eval "$(_CLAUDE_VCR_COMPLETE=bash_source claude-vcr)"')
    env = {**os.environ, "_CLAUDE_VCR_COMPLETE": "bash_source", "PYTHONPATH": str(REPO)}
    script = subprocess.run(
        [sys.executable, "-c", "from claude_vcr.cli import main; main(prog_name='claude-vcr')"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert script.returncode == 0 and "_claude_vcr_completion" in script.stdout
    words = subprocess.run(
        [sys.executable, "-c", "from claude_vcr.cli import main; main(prog_name='claude-vcr')"],
        env={**env, "_CLAUDE_VCR_COMPLETE": "bash_complete", "COMP_WORDS": "claude-vcr se", "COMP_CWORD": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "plain,serve" in words.stdout.splitlines()
