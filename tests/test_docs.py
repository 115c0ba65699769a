"""The manual builds, the front page stays short, and the CLI reference is what the commands print."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support import REPO
from tests.support.cli_reference import TARGET, render

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_the_cli_reference_is_what_the_commands_print():
    assert TARGET.read_text(encoding="utf-8") == render(), (
        "docs/cli.md differs from the commands' --help: regenerate it with `python3 -m tests.support.cli_reference`"
    )


def test_the_cli_reference_has_every_command():
    from claude_vcr.cli import main

    page = TARGET.read_text(encoding="utf-8")
    for name in main.commands:
        assert f"## `claude-vcr {name}`" in page


def test_the_docs_build_strict(tmp_path: Path):
    """`mkdocs build --strict`: a broken link, a missing page or a bad config fails the build."""
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    built = {p.relative_to(tmp_path / "site").as_posix() for p in (tmp_path / "site").rglob("index.html")}
    for page in (REPO / "docs").glob("*.md"):
        assert ("index.html" if page.stem == "index" else f"{page.stem}/index.html") in built, page.name


def test_the_readme_is_a_front_page_linking_the_manual():
    """At most 400 lines; it links every page the manual moved out of it (other pages appear in the site's
    menu on their own), and every page it links exists."""
    assert len(README.splitlines()) <= 400
    linked = set(re.findall(r"\(docs/([\w\-]+\.md)\)", README))
    moved = {"pytest.md", "vcrpy.md", "settings.md", "matching.md", "database.md", "cassettes.md", "sharing.md",
             "secrets.md", "performance.md", "pyz.md", "protocol.md", "conformance.md", "openai-adapter.md",
             "cli.md"}
    assert moved <= linked, f"README's Documentation table lacks {sorted(moved - linked)}"
    for page in linked:
        assert (REPO / "docs" / page).exists(), page


def test_mkdocs_has_no_hand_kept_nav():
    """Every docs/*.md is a page on its own: a nav list would hide pages other work adds."""
    assert not re.search(r"(?m)^nav:", (REPO / "mkdocs.yml").read_text(encoding="utf-8"))
