"""Fresh venvs that install only from the wheels tests/install.sh downloaded (no index is contacted), and
this checkout's wheel to put in them: for tests of claude-vcr beside other packages (vcrpy, pytest-recording)
that must never be installed in the suite's own venv."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.support import REPO

WHEELS = REPO / ".cache" / "wheels"


def build_wheel(out: Path) -> Path:
    """This checkout's wheel, built into `out`."""
    if not any(WHEELS.glob("vcrpy-*.whl")):
        pytest.fail(f"no vcrpy wheel in {WHEELS}: run `bash tests/install.sh` first")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("claude_vcr-*.whl")
    return built


class Venv:
    """A fresh venv with nothing but pip; installs only from the local wheels."""

    def __init__(self, folder: Path) -> None:
        venv.create(folder, with_pip=True, symlinks=True)
        self.folder = folder
        self.python = str(folder / "bin" / "python")

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(args, capture_output=True, text=True, cwd=self.folder)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def pip(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(self.python, "-m", "pip", "--disable-pip-version-check", *args)

    def install(self, requirement: str) -> None:
        self.pip("install", "--quiet", "--no-index", "--find-links", str(WHEELS), requirement)

    def uninstall(self, name: str) -> None:
        self.pip("uninstall", "--yes", "--quiet", name)

    def python_says(self, code: str) -> str:
        return self.run(self.python, "-c", code).stdout

    def claude_vcr_works(self, db: Path) -> None:
        """The script, `python -m claude_vcr`, and a command that opens a db all work and say who they are."""
        script = str(self.folder / "bin" / "claude-vcr")
        assert self.run(script, "--version").stdout.startswith("claude-vcr, version ")
        assert self.run(self.python, "-m", "claude_vcr", "--version").stdout.startswith("claude-vcr, version ")
        missing = self.run(script, "stats", "--db", str(db), check=False)
        assert missing.returncode == 1 and "no database at" in missing.stderr and "Traceback" not in missing.stderr
        found = self.python_says("import claude_vcr, claude_vcr.proxy; print(claude_vcr.__file__)")
        assert "site-packages" in found
