"""vcr.db in git: a readable `git diff` (textconv) and a merge driver that unions two branches' recordings.

git keeps diff and merge drivers in `.git/config`, which is not versioned, so `claude-vcr git-setup` writes
both that config and the `.gitattributes` line that routes the db file to them. The drivers name the
claude-vcr that ran `git-setup` by absolute paths (the pyz with its Python, a venv's script), so they work
from any shell, and `check` says in one line when this clone's drivers would not run, and what to run.

The merge is three-way over recordings grouped by (cassette, key), because a record run replaces all the
repeats of a key at once. A key changed on one side only takes that side; a key deleted on one side (and
untouched on the other) is deleted; a key changed on both sides keeps the newer recording, and a change
beats a deletion. The result is written in place (see `_merge_into`), not compacted.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..catalog import Catalog
from ..errors import ClaudeVCRError, InvalidInput
from ..schema import exclusive_lock
from ..untrusted import printable_line

DRIVER = "claude-vcr"
"""The name of the diff and merge drivers in git's config and in .gitattributes."""

KeyVersions = dict[tuple[str, str], tuple[str, str]]
CassetteVersions = dict[str, tuple[str, str | None, str]]


def dump_lines(path: str | Path) -> Iterator[str]:
    """What git shows of a db: one sorted line per recording (an empty or missing file shows nothing)."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return
    with Catalog.open(path) as catalog:
        for line in catalog.dump_lines():
            yield printable_line(line)  # git prints it to a terminal: a db's escape codes stay text


# --- merge -------------------------------------------------------------------------------------------


@dataclass
class MergePlan:
    """What to apply to our side: keys to take from theirs, keys to delete, cassette rows likewise."""

    take: list[tuple[str, str]] = field(default_factory=list)
    drop: list[tuple[str, str]] = field(default_factory=list)
    take_cassettes: list[str] = field(default_factory=list)
    drop_cassettes: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    """Keys changed on both sides, each with the side kept: for the driver's message."""
    take_notes: list[tuple[str, str]] = field(default_factory=list)
    drop_notes: list[tuple[str, str]] = field(default_factory=list)
    """Notes of unstored answers (`store.note_unstored`) to copy from theirs, and to delete."""


def _versions(path: Path) -> tuple[KeyVersions, CassetteVersions, KeyVersions]:
    """A side's recordings, cassettes and notes of unstored answers; git gives an empty file as the base of
    a file added on both sides."""
    if not path.exists() or path.stat().st_size == 0:
        return {}, {}, {}
    with Catalog.open(path) as catalog:
        return catalog.key_versions(), catalog.cassette_versions(), catalog.unstored_versions()


def plan_merge(
    base: tuple[KeyVersions, CassetteVersions],
    ours: tuple[KeyVersions, CassetteVersions],
    theirs: tuple[KeyVersions, CassetteVersions],
) -> MergePlan:
    """Decide the merge from the three sides' versions alone (pure, so every rule is easy to test)."""
    plan = MergePlan()
    (base_keys, base_cassettes), (our_keys, our_cassettes), (their_keys, their_cassettes) = base, ours, theirs
    three_way(base_keys, our_keys, their_keys, plan.take, plan.drop, plan.conflicts)
    for name in sorted(set(base_cassettes) | set(our_cassettes) | set(their_cassettes)):
        o_row, a_row, t_row = base_cassettes.get(name), our_cassettes.get(name), their_cassettes.get(name)
        if t_row == o_row or a_row == t_row:
            continue
        if a_row == o_row or a_row is None:
            if t_row is None:
                plan.drop_cassettes.append(name)  # deleted only if no recording of ours is left in it
            else:
                plan.take_cassettes.append(name)
    return plan


def three_way(
    base: KeyVersions,
    ours: KeyVersions,
    theirs: KeyVersions,
    take: list[tuple[str, str]],
    drop: list[tuple[str, str]],
    conflicts: list[str],
) -> None:
    """The rule for every (cassette, key) unit, recordings and notes of unstored answers alike: changed on
    theirs only is taken, deleted on theirs only is dropped, changed on both keeps the newer, a change beats
    a deletion. Appends to `take`, `drop` and `conflicts` in key order (deterministic)."""
    for identity in sorted(set(base) | set(ours) | set(theirs)):
        o, a, t = base.get(identity), ours.get(identity), theirs.get(identity)
        o_digest, a_digest, t_digest = (v[0] if v else None for v in (o, a, t))
        if t_digest == o_digest or a_digest == t_digest:
            continue  # theirs did not change it, or both made the same change
        if a_digest == o_digest:
            (take if t is not None else drop).append(identity)
            continue
        label = f"{identity[0]} {identity[1][:12]}"
        if t is None:
            conflicts.append(f"{label}: deleted on theirs, changed on ours; kept ours")
        elif a is None:
            take.append(identity)
            conflicts.append(f"{label}: deleted on ours, changed on theirs; kept theirs")
        elif t[1] > a[1]:
            take.append(identity)
            conflicts.append(f"{label}: recorded on both sides; kept theirs (newer)")
        else:
            conflicts.append(f"{label}: recorded on both sides; kept ours (newer)")


def plan_notes(base: KeyVersions, ours: KeyVersions, theirs: KeyVersions, plan: MergePlan) -> None:
    """Add to a plan the notes of unstored answers to take and to drop, by `three_way`'s rule (a note is
    small and only a hint: where both sides changed one, the newer is kept without a word)."""
    three_way(base, ours, theirs, plan.take_notes, plan.drop_notes, [])


@dataclass
class MergeReport:
    taken: int
    dropped: int
    conflicts: list[str]

    def line(self) -> str:
        """What the driver did, in the one line git prints: counts, and the first keys both sides changed."""
        text = f"claude-vcr merge: {self.taken} key(s) taken from the other side, {self.dropped} deleted"
        if self.conflicts:
            shown = "; ".join(self.conflicts[:2])
            more = f"; and {len(self.conflicts) - 2} more" if len(self.conflicts) > 2 else ""
            text += f", {len(self.conflicts)} changed on both sides ({shown}{more})"
        return text


def merge(base: str | Path, ours: str | Path, theirs: str | Path) -> MergeReport:
    """git's `%O %A %B`: merge theirs into ours, writing the result over `ours` (refused while another
    claude-vcr process has `ours` open)."""
    base, ours, theirs = Path(base), Path(ours), Path(theirs)
    sides = [_versions(path) for path in (base, ours, theirs)]
    plan = plan_merge(*(side[:2] for side in sides))
    plan_notes(*(side[2] for side in sides), plan)
    lock = exclusive_lock(ours, "claude-vcr merge-driver")  # never a rename under a live writer
    try:
        _merge_into(ours, theirs, plan)
    finally:
        if lock is not None:
            lock.release()
    return MergeReport(len(plan.take), len(plan.drop), plan.conflicts)


def _merge_into(ours: Path, theirs: Path, plan: MergePlan) -> None:
    """Apply the plan to a copy of ours, in place (no compaction), and rename it over ours.

    Written in place, recordings neither side changed keep their bytes and their place in the file, so the
    merge commit costs git little more than the recordings it brings; a compacted result would move every
    page after the first change (tests/benchmarks/bench_git.py). The same three sides still give the same
    bytes: SQLite writes the same file from the same file and the same statements."""
    from ..maintenance import merge_from
    from ..store import Store

    with tempfile.TemporaryDirectory(prefix=".claude-vcr-merge-", dir=ours.parent) as scratch:
        result = Path(scratch) / "result.db"
        other = Path(scratch) / "theirs.db"
        if ours.exists() and ours.stat().st_size:
            shutil.copyfile(ours, result)
        if theirs.exists() and theirs.stat().st_size:
            shutil.copyfile(theirs, other)
        Store(other).close()  # this version's schema, so rows copy column for column
        with Store(result) as store:
            merge_from(
                store,
                other,
                take=plan.take,
                drop=plan.drop,
                take_cassettes=plan.take_cassettes,
                drop_cassettes=plan.drop_cassettes,
                take_notes=plan.take_notes,
                drop_notes=plan.drop_notes,
            )
            store.drop_unused_chunks()
        os.replace(result, ours)


# --- setup -------------------------------------------------------------------------------------------


@dataclass
class SetupReport:
    repo: Path
    attributes_line: str
    attributes_added: bool
    command: str


def default_command() -> str:
    """How git should run the claude-vcr that is running now, by absolute paths so that it works from any
    shell: the pyz with this interpreter, the entry-point script of a venv or pip install, or this
    interpreter with `-m claude_vcr`."""
    from .. import _bootstrap

    found = _bootstrap.load_manifest()
    if found is not None:
        return f"{shlex.quote(sys.executable)} {shlex.quote(found[0])}"
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if script is not None and script.name in ("claude-vcr", "claude-vcr.exe") and script.is_file():
        return shlex.quote(str(script.absolute()))
    return f"{shlex.quote(sys.executable)} -m claude_vcr"


@dataclass
class DriverCheck:
    """Whether git can run this clone's drivers for the db: `ok`, and one line that says so or what to run."""

    ok: bool
    line: str


MERGE_ARGUMENTS = " merge-driver %O %A %B"
TEXTCONV_ARGUMENTS = " dump"


def _config(repo: Path, name: str) -> str | None:
    done = subprocess.run(["git", "config", "--get", name], cwd=repo, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


def _runs(repo: Path, shell_command: str) -> str | None:
    """None when `shell_command` runs as git would run it (through the shell); else the first error line."""
    try:
        done = subprocess.run(
            shell_command, shell=True, cwd=repo, capture_output=True, text=True, timeout=60, check=False
        )
    except subprocess.TimeoutExpired:
        return "it did not finish within 60 s"
    if done.returncode == 0:
        return None
    lines = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {done.returncode}"


def check(db: str | Path) -> DriverCheck:
    """Whether `git diff` and `git merge` of `db` in its clone would run claude-vcr's drivers, said in one line
    with the command that fixes it (drivers live in each clone's .git/config, so a fresh clone has none)."""
    db = Path(db).absolute()
    existing = next(parent for parent in db.parents if parent.exists())
    repo = Path(_git(existing, "rev-parse", "--show-toplevel"))
    if not db.resolve().is_relative_to(repo.resolve()):
        return DriverCheck(False, f"{db} is not inside the git repository {repo}")
    relative = db.resolve().relative_to(repo.resolve()).as_posix()
    fix = f"run: {default_command()} git-setup --db {shlex.quote(str(db))}"
    attributes = _git(repo, "check-attr", "diff", "merge", "--", relative)
    if attributes.count(DRIVER) < 2:
        return DriverCheck(False, f"git does not route {relative} to claude-vcr's drivers (.gitattributes); {fix}")
    textconv = _config(repo, f"diff.{DRIVER}.textconv")
    driver = _config(repo, f"merge.{DRIVER}.driver")
    if not textconv or not driver:
        return DriverCheck(
            False, f"this clone has no claude-vcr diff/merge driver in .git/config (git would show binary "
            f"diffs and conflict on merges); {fix}"
        )
    probe = f"{textconv} {os.devnull}"  # what git runs, on an empty file: prints nothing, exits 0
    if driver.endswith(MERGE_ARGUMENTS):
        command = driver[: -len(MERGE_ARGUMENTS)]
        probes = [probe, f"{command} merge-driver --help"]
    else:
        command, probes = textconv, [probe]
    for shell_command in probes:
        error = _runs(repo, shell_command)
        if error is not None:
            return DriverCheck(False, f"git's driver for {relative} cannot run here ({shell_command!r}: {error}); {fix}")
    return DriverCheck(True, f"git diff and merge of {relative} run claude-vcr as {command!r}: working")


def _git(cwd: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as error:
        raise ClaudeVCRError("git is not installed (or not on PATH)") from error
    if done.returncode != 0:
        raise ClaudeVCRError(f"git {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def _attribute_pattern(relative: str) -> str:
    """An anchored .gitattributes pattern for one file; whitespace (a separator there) becomes `?`."""
    return "/" + "".join("?" if ch.isspace() else ch for ch in relative)


def setup(db: str | Path, command: str | None = None) -> SetupReport:
    """Route `db` to the drivers in .gitattributes and define the drivers in the repository's git config."""
    db = Path(db).absolute()
    existing = next(parent for parent in db.parents if parent.exists())  # the db may not exist yet
    repo = Path(_git(existing, "rev-parse", "--show-toplevel"))
    try:
        relative = db.resolve().relative_to(repo.resolve()).as_posix()
    except ValueError as error:
        raise InvalidInput(f"{db} is not inside the git repository {repo}") from error
    command = command or default_command()
    line = f"{_attribute_pattern(relative)} diff={DRIVER} merge={DRIVER}"
    attributes = repo / ".gitattributes"
    existing = attributes.read_text(encoding="utf-8") if attributes.exists() else ""
    added = line not in existing.splitlines()
    if added:
        separator = "" if not existing or existing.endswith("\n") else "\n"
        attributes.write_text(existing + separator + line + "\n", encoding="utf-8")
    _git(repo, "config", f"diff.{DRIVER}.textconv", f"{command} dump")
    _git(repo, "config", f"merge.{DRIVER}.name", "claude-vcr: union of recordings")
    _git(repo, "config", f"merge.{DRIVER}.driver", f"{command} merge-driver %O %A %B")
    return SetupReport(repo, line, added, command)


HOOK_MARKER = "# claude-vcr pre-commit hook"
"""The line that says a pre-commit hook is ours (and may be rewritten)."""


def install_pre_commit(db: str | Path, command: str) -> Path:
    """Write a git pre-commit hook that scans the staged copy of `db` and blocks the commit on findings.

    The staged blob is what the commit would carry, so it is the one scanned (not the working file). The
    way around it is git's own: `git commit --no-verify`. A hook that is not ours is never overwritten.
    """
    db = Path(db).absolute()
    existing = next(parent for parent in db.parents if parent.exists())
    repo = Path(_git(existing, "rev-parse", "--show-toplevel"))
    relative = db.resolve().relative_to(repo.resolve()).as_posix()
    hooks = Path(_git(repo, "rev-parse", "--git-path", "hooks"))
    hooks = hooks if hooks.is_absolute() else repo / hooks
    hook = hooks / "pre-commit"
    if hook.exists() and HOOK_MARKER not in hook.read_text(encoding="utf-8", errors="replace"):
        raise InvalidInput(
            f"{hook} already exists and is not claude-vcr's; add this line to it instead: "
            f"{command} scan --db <staged copy of {relative}>"
        )
    quoted = shlex.quote(relative)
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text(
        f"""#!/bin/sh
{HOOK_MARKER}: scans the staged {relative} for credential-shaped strings.
# Bypass it consciously with: git commit --no-verify
git diff --cached --quiet -- {quoted} && exit 0
git cat-file -e :{quoted} 2>/dev/null || exit 0
staged=$(mktemp "${{TMPDIR:-/tmp}}/claude-vcr-staged.XXXXXX") || exit 1
trap 'rm -f "$staged"' EXIT
git show :{quoted} > "$staged" || exit 1
if ! {command} scan --db "$staged"; then
    echo "claude-vcr: the staged {relative} holds credential-shaped strings (above, masked)." >&2
    echo "Run: {command} redact --db {quoted}  then git add it again;" >&2
    echo "or commit anyway, knowingly: git commit --no-verify" >&2
    exit 1
fi
""",
        encoding="utf-8",
    )
    hook.chmod(0o755)
    return hook
