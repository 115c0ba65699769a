"""The manual's "Testing with pytest" examples (docs/pytest.md), pasted as a reader would: the test module and the script."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys

from tests.support import REPO
from tests.support.client import TEST_API_KEY
from tests.support.inner_suites import FAST, clean_environment


def section_blocks(title: str) -> list[str]:
    """The ```python blocks of the docs page titled so (docs/pytest.md, moved there from the README)."""
    text = (REPO / "docs" / "pytest.md").read_text()
    assert text.startswith(f"# {title}\n")
    return re.findall(r"```python\n(.*?)```", text, re.S)


def test_the_pytest_example_records_then_replays_offline(pytester, monkeypatch, upstream):
    module = next(b for b in section_blocks("Testing with pytest") if "pytest.mark.claude_vcr" in b)
    clean_environment(monkeypatch)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("VCR_UPSTREAM", upstream.url)
    pytester.makepyfile(test_example=module)
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_API_KEY)
    pytester.runpytest_subprocess(*FAST, "--claude-vcr-record-mode=once").assert_outcomes(passed=2)
    upstream.stop()
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    replayed = pytester.runpytest_subprocess(*FAST)
    replayed.assert_outcomes(passed=2)
    assert "0 recorded, 2 replayed, 0 missed" in replayed.stdout.str()


def test_the_use_cassette_example_runs_as_a_script(upstream, tmp_path):
    script = next(b for b in section_blocks("Testing with pytest") if "use_cassette" in b)
    (tmp_path / "example.py").write_text(script)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VCR_", "ANTHROPIC_"))}
    env["VCR_UPSTREAM"] = upstream.url

    def run(**extra: str) -> str:
        done = subprocess.run(
            [sys.executable, "example.py"], cwd=tmp_path, env={**env, **extra}, capture_output=True, text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == "", done.stderr  # no "Exception in thread claude-vcr-proxy" on exit
        return done.stdout.strip()

    assert run(ANTHROPIC_API_KEY=TEST_API_KEY) == "['recorded']"
    upstream.stop()
    assert run() == "['hit']"
    assert (tmp_path / "vcr.db").exists() and not (tmp_path / "vcr.db-wal").exists()
    with sqlite3.connect(tmp_path / "vcr.db") as conn:  # whole on its own: not left in WAL mode
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
