"""tests/install.sh says what it will install, where, and how big, before doing anything (run as a dry run)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import REPO


def plan(tmp_path: Path, **env: str) -> str:
    """The plan install.sh prints, with this test's interpreter's folder first on the PATH (an active venv)."""
    path = f"{Path(sys.executable).parent}:/usr/bin:/bin"
    done = subprocess.run(
        ["bash", str(REPO / "tests" / "install.sh")],
        env={"PATH": path, "HOME": str(tmp_path), "VCR_INSTALL_DRY_RUN": "1", **env},
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    return done.stderr


def test_the_plan_names_the_interpreter_each_part_and_its_size(tmp_path):
    text = plan(tmp_path)
    assert text.startswith("tests/install.sh will install:")
    prefix = sys.prefix
    assert (f"into the venv {prefix}" if sys.prefix != sys.base_prefix else f"the system Python {prefix}") in text
    assert "MB" in text and ".cache/wheels" in text
    has_chromium = any(Path(d, "chromium").exists() for d in ("/usr/bin", "/bin"))
    assert ("chromium with apt-get" in text) != has_chromium
    if not has_chromium:
        assert "never apt-get upgrade" in text


def test_no_apt_skips_chromium_and_the_script_never_upgrades(tmp_path):
    assert "chromium" not in plan(tmp_path, VCR_INSTALL_NO_APT="1")
    script = (REPO / "tests" / "install.sh").read_text()
    assert "apt-get upgrade" not in script.replace("never apt-get upgrade", "")
    assert "pip install --upgrade" not in script and " -U " not in script
    assert os.access(REPO / "tests" / "install.sh", os.R_OK)
