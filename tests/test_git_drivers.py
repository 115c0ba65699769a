"""git's drivers for vcr.db work wherever claude-vcr was run from: `git-setup` run from the built pyz (with a
Python that has nothing installed) and from a venv's script writes drivers that git runs from a shell whose
PATH has no claude-vcr; `git-setup --check` says in one line when they would not work; a clone without any
setup still replays."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO
from tests.support.cassettes import recording, rows, save_all
from tests.support.cli import cli
from tests.support.client import call, params
from tests.support.venvs import Venv, build_wheel

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
BARE_PATH = os.pathsep.join(str(Path(p).parent) for p in (shutil.which("git"), "/bin/sh"))


def shell_env(home: Path) -> dict[str, str]:
    """A shell that knows git and sh, and no claude-vcr."""
    env = {"PATH": BARE_PATH, "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1", "LANG": "C.UTF-8"}
    assert shutil.which("claude-vcr", path=env["PATH"]) is None, "claude-vcr is on the bare PATH"
    return env


def run(args: list[str], cwd: Path, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if check:
        assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def new_repo(folder: Path, env: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    run(["git", "init", "-q", "-b", "main"], folder, env)
    for key, value in {"user.name": "Test", "user.email": "test@example.com", "commit.gpgsign": "false"}.items():
        run(["git", "config", key, value], folder, env)
    return folder


def drivers_work_from_a_bare_shell(claude_vcr: list[str], tmp_path: Path) -> None:
    """git-setup by `claude_vcr`, then a readable diff and a two-branch merge that unions the recordings."""
    env = shell_env(tmp_path)
    repo = new_repo(tmp_path / "repo", env)
    db = repo / "tests" / "vcr.db"
    db.parent.mkdir()
    setup = run([*claude_vcr, "git-setup", "--db", str(db)], repo, env)
    assert "run claude-vcr as" in setup.stdout and ": working" in setup.stdout, setup.stdout + setup.stderr
    checked = run([*claude_vcr, "git-setup", "--check", "--db", str(db)], repo, env)
    assert checked.stdout.count("\n") == 1 and checked.stdout.strip().endswith(": working")

    save_all(db, [recording(1, cassette="shared")])
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-q", "-m", "base"], repo, env)
    save_all(db, [recording(2, cassette="shared", stream=True)])
    diff = run(["git", "diff"], repo, env)
    assert "Binary files" not in diff.stdout and not diff.stderr
    added = [line for line in diff.stdout.splitlines() if line.startswith("+shared ")]
    assert len(added) == 1 and " POST /v1/messages claude-haiku-4-5 stream 200 " in added[0]
    run(["git", "commit", "-q", "-am", "main records 2"], repo, env)

    run(["git", "checkout", "-q", "-b", "feature", "HEAD~1"], repo, env)
    save_all(db, [recording(3, cassette="feature"), recording(4, cassette="feature")])
    run(["git", "commit", "-q", "-am", "feature records 3 and 4"], repo, env)
    run(["git", "checkout", "-q", "main"], repo, env)
    merged = run(["git", "merge", "--no-edit", "feature"], repo, env, check=False)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert "claude-vcr merge: 2 key(s) taken from the other side, 0 deleted" in merged.stderr
    assert sorted((r["cassette"], r["request_size"] > 0) for r in rows(db)) == [
        ("feature", True),
        ("feature", True),
        ("shared", True),
        ("shared", True),
    ]
    assert run(["git", "status", "--porcelain"], repo, env).stdout == ""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A venv with this checkout's wheel pip-installed (from local wheels only)."""
    wheel = build_wheel(tmp_path_factory.mktemp("wheel"))
    env = Venv(tmp_path_factory.mktemp("installed") / "venv")
    env.install(str(wheel))
    return env


def test_drivers_from_a_venv_script_work_in_a_shell_without_claude_vcr(installed, tmp_path):
    script = str(Path(installed.folder) / "bin" / "claude-vcr")
    drivers_work_from_a_bare_shell([script], tmp_path)
    config = (tmp_path / "repo" / ".git" / "config").read_text()
    assert f"textconv = {script} dump" in config


@pytest.mark.slow
def test_drivers_from_the_pyz_work_with_a_python_that_has_nothing_installed(tmp_path_factory, tmp_path):
    pyz = tmp_path_factory.mktemp("dist") / "claude-vcr.pyz"
    built = subprocess.run(
        [sys.executable, str(REPO / "build_zipapp.py"), "--output", str(pyz)], capture_output=True, text=True, timeout=900
    )
    assert built.returncode == 0, built.stdout + built.stderr
    bare = tmp_path_factory.mktemp("bare-venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=120)
    python = str(bare / "bin" / "python")
    assert subprocess.run([python, "-c", "import claude_vcr"], capture_output=True).returncode != 0
    drivers_work_from_a_bare_shell([python, str(pyz)], tmp_path)
    config = (tmp_path / "repo" / ".git" / "config").read_text()
    assert f"textconv = {python} {pyz} dump" in config


def test_check_names_the_fix_in_one_line_when_a_clone_has_no_drivers_or_broken_ones(tmp_path):
    env = shell_env(tmp_path)
    repo = new_repo(tmp_path / "repo", env)
    db = repo / "vcr.db"
    save_all(db, [recording(1)])
    (repo / ".gitattributes").write_text("/vcr.db diff=claude-vcr merge=claude-vcr\n")
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-q", "-m", "base"], repo, env)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], tmp_path, env)

    missing = cli("git-setup", "--check", "--db", clone / "vcr.db")
    assert missing.exit_code == 1
    [line] = missing.output.splitlines()
    assert "this clone has no claude-vcr diff/merge driver" in line and "git-setup --db" in line

    run(["git", "config", "diff.claude-vcr.textconv", "/nowhere/claude-vcr dump"], clone, env)
    run(["git", "config", "merge.claude-vcr.driver", "/nowhere/claude-vcr merge-driver %O %A %B"], clone, env)
    broken = cli("git-setup", "--check", "--db", clone / "vcr.db")
    assert broken.exit_code == 1
    [line] = broken.output.splitlines()
    assert "cannot run here ('/nowhere/claude-vcr dump" in line and "not found" in line
    assert "; run: " in line and "git-setup --db" in line

    unrouted = new_repo(tmp_path / "plain", env)
    save_all(unrouted / "vcr.db", [recording(1)])
    result = cli("git-setup", "--check", "--db", unrouted / "vcr.db")
    assert result.exit_code == 1 and "does not route vcr.db to claude-vcr's drivers" in result.output
    assert not (unrouted / ".gitattributes").exists()  # --check changes nothing


def test_a_clone_with_no_setup_replays(repo_with_recording, proxy, tmp_path):
    env = shell_env(tmp_path)
    clone = tmp_path / "clone"
    origin, recorded = repo_with_recording
    run(["git", "clone", "-q", str(origin), str(clone)], tmp_path, env)
    assert not any("claude-vcr" in line for line in (clone / ".git" / "config").read_text().splitlines())
    replay = proxy(mode="replay", db=clone / "vcr.db", upstream="http://127.0.0.1:9")
    assert call(replay.url + "/c/basic", **params("Question in git")) == recorded


@pytest.fixture
def repo_with_recording(tmp_path, proxy) -> tuple[Path, bytes]:
    env = shell_env(tmp_path)
    repo = new_repo(tmp_path / "origin", env)
    recorder = proxy(mode="record", db=repo / "vcr.db")
    recorded = call(recorder.url + "/c/basic", **params("Question in git"))
    recorder.stop()
    assert cli("git-setup", "--command", f"{sys.executable} -m claude_vcr", "--db", repo / "vcr.db").exit_code == 0
    run(["git", "add", "-A"], repo, env)
    run(["git", "commit", "-q", "-m", "recorded"], repo, env)
    return repo, recorded
