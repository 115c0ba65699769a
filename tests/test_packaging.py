"""claude-vcr installs as `claude_vcr` and lives beside vcrpy (whose import name is `vcr`) in one venv.

Each test builds this checkout's wheel and installs it with vcrpy into a fresh venv from the wheels that
tests/install.sh downloaded into .cache/wheels (no index is contacted), in one order or the other, then
uninstalls each in turn and checks the other still works.
"""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
WHEELS = REPO / ".cache" / "wheels"

VCRPY_WORKS = (
    "import importlib.metadata, vcr; from vcr import VCR; assert callable(vcr.use_cassette); "
    "assert vcr.__version__ == importlib.metadata.version('vcrpy'); print('vcrpy ok')"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    if not any(WHEELS.glob("vcrpy-*.whl")):
        pytest.fail(f"no vcrpy wheel in {WHEELS}: run `bash tests/install.sh` first")
    out = tmp_path_factory.mktemp("wheel")
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


def test_the_wheel_installs_claude_vcr_and_no_top_level_vcr(wheel):
    with zipfile.ZipFile(wheel) as archive:
        tops = {name.split("/")[0] for name in archive.namelist()}
        top_level = next(n for n in archive.namelist() if n.endswith(".dist-info/top_level.txt"))
        declared = archive.read(top_level).decode().split()
    assert tops == {"claude_vcr", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}
    assert declared == ["claude_vcr"]


@pytest.mark.parametrize("first", ["claude-vcr", "vcrpy"])
def test_claude_vcr_and_vcrpy_coexist_in_either_order_and_survive_each_others_removal(tmp_path, wheel, first):
    env = Venv(tmp_path / "venv")
    order = [str(wheel), "vcrpy"] if first == "claude-vcr" else ["vcrpy", str(wheel)]
    for requirement in order:
        env.install(requirement)
    assert "No broken requirements" in env.pip("check").stdout
    env.claude_vcr_works(tmp_path / "absent.db")
    assert env.python_says(VCRPY_WORKS).strip() == "vcrpy ok"

    env.uninstall("vcrpy")
    env.claude_vcr_works(tmp_path / "absent.db")
    assert env.run(env.python, "-c", "import vcr", check=False).returncode != 0

    env.install("vcrpy")
    env.uninstall("claude-vcr")
    assert env.python_says(VCRPY_WORKS).strip() == "vcrpy ok"
    assert env.run(env.python, "-c", "import claude_vcr", check=False).returncode != 0
