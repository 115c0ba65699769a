"""claude-vcr installs as `claude_vcr` and lives beside vcrpy (whose import name is `vcr`) in one venv.

Each test builds this checkout's wheel and installs it with vcrpy into a fresh venv from the wheels that
tests/install.sh downloaded into .cache/wheels (no index is contacted), in one order or the other, then
uninstalls each in turn and checks the other still works.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.support.venvs import Venv, build_wheel

VCRPY_WORKS = (
    "import importlib.metadata, vcr; from vcr import VCR; assert callable(vcr.use_cassette); "
    "assert vcr.__version__ == importlib.metadata.version('vcrpy'); print('vcrpy ok')"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


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
