"""vcr.db in a real git repository: `git-setup`, a readable `git diff`, and merges of branches that recorded
different tests (and deleted different recordings) without a conflict."""

from __future__ import annotations

import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from claude_vcr.interchange.gitdb import plan_merge

from tests.support.cassettes import recording, rows, save_all
from tests.support.cli import cli
from tests.support.client import call, params

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
COMMAND = f"{shlex.quote(sys.executable)} -m claude_vcr"


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=120)
    if check:
        assert done.returncode == 0, f"git {' '.join(args)}: {done.stdout}\n{done.stderr}"
    return done


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for key, value in {
        "user.name": "Test",
        "user.email": "test@example.com",
        "commit.gpgsign": "false",
    }.items():
        git(repo, "config", key, value)
    return repo


def key_of(db: Path, text: str) -> str:
    """The key of the recording whose request asked `text`."""
    from claude_vcr.catalog import Catalog

    with Catalog.open(db) as catalog:
        for row in catalog.recordings():
            if text.encode() in catalog.detail(row).request_body:
                return row.key
    raise AssertionError(f"no recording asked {text!r}")


def test_git_setup_writes_attributes_and_config_once(repo):
    db = repo / "tests" / "vcr.db"
    db.parent.mkdir()
    first = cli("git-setup", "--command", COMMAND, "--db", db)
    assert first.exit_code == 0, first.output
    assert "'/tests/vcr.db diff=claude-vcr merge=claude-vcr' added to" in first.output
    second = cli("git-setup", "--command", COMMAND, "--db", db)
    assert "already in" in second.output
    assert (repo / ".gitattributes").read_text() == "/tests/vcr.db diff=claude-vcr merge=claude-vcr\n"
    assert git(repo, "config", "diff.claude-vcr.textconv").stdout.strip() == f"{COMMAND} dump"
    assert git(repo, "config", "merge.claude-vcr.driver").stdout.strip() == f"{COMMAND} merge-driver %O %A %B"
    assert git(repo, "check-attr", "diff", "merge", "--", "tests/vcr.db").stdout.count("claude-vcr") == 2

    outside = cli("git-setup", "--db", repo.parent / "elsewhere" / "vcr.db")
    assert outside.exit_code == 1 and "not a git repository" in outside.output.lower()


def test_git_diff_shows_one_line_per_recording(repo, proxy):
    db = repo / "vcr.db"
    assert cli("git-setup", "--command", COMMAND, "--db", db).exit_code == 0
    recorder = proxy(mode="record", db=db)
    call(recorder.url + "/c/basic", **params("First question"))
    recorder.stop()
    git(repo, "add", ".gitattributes", "vcr.db")
    git(repo, "commit", "-q", "-m", "first recording")
    first_key = key_of(db, "First question")

    recorder = proxy(mode="record", db=db)
    call(recorder.url + "/c/basic", **params("Second question", stream=True))
    recorder.stop()
    second_key = key_of(db, "Second question")
    diff = git(repo, "diff").stdout
    assert "Binary files" not in diff
    added = [line for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert len(added) == 1
    assert added[0].startswith(f"+basic {second_key[:12]} POST /v1/messages claude-opus-5-5 stream 200 ")
    assert f" {first_key[:12]} " in diff  # the unchanged recording is context
    committed = git(repo, "show", "--textconv", "HEAD:vcr.db").stdout.splitlines()
    assert len(committed) == 1 and committed[0].startswith(f"basic {first_key[:12]} POST /v1/messages ")
    dumped = cli("dump", db).output.splitlines()
    assert len(dumped) == 2 and dumped == sorted(dumped)


def test_merge_unions_both_branches_and_keeps_both_deletions(repo, proxy):
    db = repo / "vcr.db"
    assert cli("git-setup", "--command", COMMAND, "--db", db).exit_code == 0
    recorder = proxy(mode="record", db=db)
    for text in ("keep me", "feature deletes me", "main deletes me"):
        call(recorder.url + "/c/shared", **params(text))
    recorder.stop()
    git(repo, "add", ".gitattributes", "vcr.db")
    git(repo, "commit", "-q", "-m", "base recordings")
    keys = {text: key_of(db, text) for text in ("keep me", "feature deletes me", "main deletes me")}

    git(repo, "checkout", "-q", "-b", "feature")
    recorder = proxy(mode="record", db=db)
    call(recorder.url + "/c/feature_tests", **params("feature test asks", stream=True))
    recorder.stop()
    assert cli("delete", keys["feature deletes me"][:12], "--db", db).exit_code == 0
    git(repo, "commit", "-q", "-am", "feature: record its test, drop one")

    git(repo, "checkout", "-q", "main")
    save_all(db, [recording(1, cassette="main_tests"), recording(2, cassette="main_tests", stream=True)])
    assert cli("delete", keys["main deletes me"][:12], "--db", db).exit_code == 0
    git(repo, "commit", "-q", "-am", "main: record its tests, drop another")

    merged = git(repo, "merge", "--no-edit", "feature", check=False)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert "CONFLICT" not in merged.stdout
    assert "claude-vcr merge: 1 key(s) taken from the other side, 1 deleted" in merged.stderr
    assert git(repo, "status", "--porcelain").stdout == ""

    found = rows(db)
    by_cassette: dict[str, int] = {}
    for row in found:
        by_cassette[row["cassette"]] = by_cassette.get(row["cassette"], 0) + 1
    assert by_cassette == {"shared": 1, "feature_tests": 1, "main_tests": 2}
    assert [r["key"] for r in found if r["cassette"] == "shared"] == [keys["keep me"]]
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # written in place, not compacted
    assert not list(repo.glob("vcr.db-*"))
    conn.close()
    assert not list(repo.glob(".claude-vcr-merge-*"))

    log = git(repo, "log", "--oneline").stdout.splitlines()
    assert len(log) == 4 and "Merge branch 'feature'" in log[0]


def test_merge_of_the_same_key_recorded_on_both_sides_keeps_the_newer(repo):
    db = repo / "vcr.db"
    assert cli("git-setup", "--command", COMMAND, "--db", db).exit_code == 0
    save_all(db, [recording(1, cassette="c", created_at="2025-01-01T00:00:00.000Z")])
    git(repo, "add", ".gitattributes", "vcr.db")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "other")
    newer = recording(1, cassette="c", created_at="2025-03-01T00:00:00.000Z", size=999)
    save_all(db, [newer])
    git(repo, "commit", "-q", "-am", "re-recorded later")
    git(repo, "checkout", "-q", "main")
    save_all(db, [recording(1, cassette="c", created_at="2025-02-01T00:00:00.000Z", size=10)])
    git(repo, "commit", "-q", "-am", "re-recorded earlier")
    merged = git(repo, "merge", "--no-edit", "other", check=False)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert "recorded on both sides; kept theirs (newer)" in merged.stderr
    [row] = rows(db)
    assert row["created_at"] == "2025-03-01T00:00:00.000Z"
    assert row["response_size"] == len(newer.response_body)


V = {("c", "k1"): ("d1", "2025-01-01"), ("c", "k2"): ("d2", "2025-01-01")}
CASSETTES = {"c": ("v2", None, "2025-01-01")}


def test_plan_merge_rules():
    base = (dict(V), dict(CASSETTES))
    # theirs adds k3 and a cassette, deletes k1; ours deletes k2 and changes nothing else
    theirs_keys = {("c", "k2"): V[("c", "k2")], ("d", "k3"): ("d3", "2025-02-01")}
    theirs = (theirs_keys, {**CASSETTES, "d": ("v2", None, "2025-02-01")})
    ours = ({("c", "k1"): V[("c", "k1")]}, dict(CASSETTES))
    plan = plan_merge(base, ours, theirs)
    assert plan.take == [("d", "k3")] and plan.drop == [("c", "k1")]
    assert plan.take_cassettes == ["d"] and plan.drop_cassettes == [] and plan.conflicts == []

    # the same change on both sides is no change; theirs unchanged is no change
    same = ({**V, ("c", "k1"): ("new", "2025-05-01")}, dict(CASSETTES))
    assert plan_merge(base, same, same).take == [] and plan_merge(base, same, base).take == []

    # changed on both sides: the newer wins; a change beats a deletion, on either side
    ours_changed = ({**V, ("c", "k1"): ("a", "2025-03-01")}, dict(CASSETTES))
    theirs_changed = ({**V, ("c", "k1"): ("t", "2025-04-01")}, dict(CASSETTES))
    assert plan_merge(base, ours_changed, theirs_changed).take == [("c", "k1")]
    assert plan_merge(base, theirs_changed, ours_changed).take == []
    theirs_deleted = ({("c", "k2"): V[("c", "k2")]}, dict(CASSETTES))
    kept = plan_merge(base, ours_changed, theirs_deleted)
    assert kept.drop == [] and "kept ours" in kept.conflicts[0]
    revived = plan_merge(base, theirs_deleted, ours_changed)
    assert revived.take == [("c", "k1")] and "kept theirs" in revived.conflicts[0]

    # a cassette cleared on theirs goes (if nothing of ours is left in it)
    cleared = ({}, {})
    assert plan_merge(base, base, cleared).drop_cassettes == ["c"]
    assert plan_merge(base, base, cleared).drop == [("c", "k1"), ("c", "k2")]


def test_dump_of_an_empty_file_is_empty_and_of_a_foreign_file_an_error(tmp_path):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert cli("dump", empty).output == ""
    foreign = tmp_path / "foreign.db"
    foreign.write_text("hello")
    result = cli("dump", foreign)
    assert result.exit_code == 1 and "not a SQLite database" in result.output


def test_merge_driver_at_small_scale_keeps_everything_either_side_kept_and_is_deterministic(tmp_path):
    """The shape of the 5,000 x 2 benchmark (tests/benchmarks/bench_git.py merge), small: both sides add
    their own keys, both re-record the same keys (theirs later), theirs deletes keys ours left alone."""
    from claude_vcr.catalog import Catalog
    from claude_vcr.interchange.gitdb import merge

    base, ours, theirs = tmp_path / "base.db", tmp_path / "ours.db", tmp_path / "theirs.db"
    save_all(base, [recording(i, cassette=f"s{i % 3}", created_at="2025-01-01T00:00:00.000Z") for i in range(40)])
    ours.write_bytes(base.read_bytes())
    theirs.write_bytes(base.read_bytes())
    save_all(ours, [recording(i, cassette=f"s{i % 3}") for i in range(100, 160)])
    save_all(ours, [recording(i, cassette=f"s{i % 3}", created_at="2025-02-01T00:00:00.000Z", size=300) for i in range(20)])
    save_all(theirs, [recording(i, cassette=f"s{i % 3}") for i in range(200, 250)])
    save_all(theirs, [recording(i, cassette=f"s{i % 3}", created_at="2025-03-01T00:00:00.000Z", size=400) for i in range(20)])
    with Catalog.open(theirs) as catalog:
        doomed = [(f"s{i % 3}", recording(i).key) for i in range(20, 30)]
        their_versions = catalog.key_versions()
    from claude_vcr.store import Store

    with Store(theirs) as store:
        for cassette, key in doomed:
            store.forget_key(cassette, key)
    with Catalog.open(ours) as catalog:
        our_versions = catalog.key_versions()
    again = tmp_path / "again.db"
    again.write_bytes(ours.read_bytes())

    report = merge(base, ours, theirs)
    assert report.line().startswith(
        "claude-vcr merge: 70 key(s) taken from the other side, 10 deleted, 20 changed on both sides ("
    )
    assert "kept theirs (newer)" in report.line() and "and 18 more" in report.line()
    with Catalog.open(ours) as catalog:
        merged = catalog.key_versions()
    expected = {k: v for k, v in our_versions.items() if k not in set(doomed)}
    expected.update({k: v for k, v in their_versions.items() if k not in set(doomed)})
    assert merged == expected and len(merged) == 20 + 10 + 60 + 50
    assert merge(base, again, theirs).line() == report.line()
    assert again.read_bytes() == ours.read_bytes()  # the same three sides give the same bytes
