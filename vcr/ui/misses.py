"""The misses page: each saved miss explained against the db now. Its reads run on the viewer's reading
thread; the cassette's rules run there too unless they have regular expressions of their own (`replace`,
written by whoever wrote the db), which run in a worker process with a deadline (`Offload.under_rules`):
Python's `re` holds the interpreter lock and cannot be interrupted in a thread, so a pattern that backtracks
would hang the viewer, Ctrl-C included."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from ..catalog import Catalog
from ..diagnosis import MissReport, SavedRequest, miss_evidence, rank_and_compare, read_request_file
from ..errors import ClaudeVCRError, NotFound, RulesError
from ..matching import KeyedRequest, Rules, key_facts
from ..proxy.offload import Offload
from . import pages

T = TypeVar("T")
Read = Callable[..., Awaitable[Any]]
"""`read(func, *args)`: `func(catalog, *args)` on the reading thread."""

MAX_MISS_BYTES = 32 * 1024 * 1024
"""A saved miss larger than this is listed but not read."""
Outcome = Any
"""What `pages.misses_page` shows for one file: an error text, or (report or None, linked keys, diffs)."""


def saved_files(folder: Path) -> list[tuple[str, SavedRequest | str]]:
    """The folder's saved misses, each read (or the line saying why it was not), by name."""
    files = sorted(p for p in folder.iterdir() if p.suffix == ".json") if folder.is_dir() else []
    return [(path.name, _read(path)) for path in files]


def _read(path: Path) -> SavedRequest | str:
    if path.is_symlink() or not path.is_file():
        return "not a regular file: skipped"
    if path.stat().st_size > MAX_MISS_BYTES:
        return f"larger than {MAX_MISS_BYTES // 1024 // 1024} MB: skipped"
    try:
        return read_request_file(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, OSError) as error:
        return f"cannot read it: {error}"


def _rules(catalog: Catalog, cassette: str) -> Rules:
    stored = catalog.cassette_rules(cassette)
    if stored is None:
        raise NotFound(f"no cassette named {cassette!r}")
    return stored.rules()


def _pure(_catalog: Catalog, func: Callable[..., T], *args: Any) -> T:
    """`func(*args)` called through `read`, which passes the catalog first."""
    return func(*args)


def _link(catalog: Catalog, cassette: str, key: str, ordinal: int) -> str:
    row = catalog.lookup(cassette, key, ordinal)
    if row is None:
        return pages.h(key[:12])
    prompt = f' <span class="muted">{pages.h(row.prompt_excerpt)}</span>' if row.prompt_excerpt else ""
    return f'<a href="{pages.recording_url(row.id)}">{pages.h(row.short)}</a>{prompt}'


def _hit(catalog: Catalog, cassette: str, key: str) -> dict[str, str] | None:
    """The recording the request would replay now, linked; None if it would miss."""
    return {key: _link(catalog, cassette, key, 0)} if catalog.lookup(cassette, key) is not None else None


def _links(catalog: Catalog, report: MissReport) -> dict[str, str]:
    return {c.key: _link(catalog, report.cassette, c.key, c.ordinal) for c in report.closest}


class Misses:
    """Builds the misses page for one viewer: reads through `read`, bounded rules through `offload`."""

    def __init__(self, folder: Path | None, read: Read, offload: Offload) -> None:
        self.folder = folder
        self.read = read
        self.offload = offload
        self.stopped: dict[tuple[str, tuple[str, ...]], str] = {}
        """Cassettes (with their patterns) whose rules ran past the deadline: not run again by this viewer,
        so a hostile cassette costs one deadline, not one per miss or per reload."""

    async def page(self) -> str:
        if self.folder is None:
            return pages.misses_page(None, [])
        found = await self.read(_pure, saved_files, self.folder)
        explained = [(name, await self._outcome(saved)) for name, saved in found]
        return pages.misses_page(str(self.folder), explained)

    async def _outcome(self, saved: SavedRequest | str) -> Outcome:
        if isinstance(saved, str):
            return saved
        cassette = saved.cassette or "default"
        try:
            rules = await self.read(_rules, cassette)
            return await self._explain(cassette, saved, rules)
        except ClaudeVCRError as error:
            return str(error)

    async def _explain(self, cassette: str, saved: SavedRequest, rules: Rules) -> Outcome:
        """Key the request, then: the recording it would replay now, or its closest ones and where it
        differs from each."""
        patterns = tuple(r.pattern for r in rules.replace)
        if (cassette, patterns) in self.stopped:
            return self.stopped[(cassette, patterns)]
        parts = urlsplit(saved.target)
        try:
            facts = await self._apply(
                rules, key_facts, saved.method, parts.path, parts.query, saved.body, rules
            )
            keyed = KeyedRequest.from_facts(facts, saved.body, rules, parts.path)
            hit = await self.read(_hit, cassette, keyed.key)
            if hit is not None:
                return None, hit, {}
            evidence = await self.read(miss_evidence, cassette, saved.method, saved.target, keyed)
            report = MissReport(cassette, saved.method, saved.target, keyed.key)
            report, diffs = await self._apply(rules, rank_and_compare, report, evidence, saved.body, rules)
        except RulesError as error:
            if not rules.replace:
                raise
            said = f"cassette {cassette!r}: its stored rules were stopped, so this miss is not explained: {error}"
            self.stopped[(cassette, patterns)] = said
            return said
        return report, await self.read(_links, report), diffs

    async def _apply(self, rules: Rules, func: Callable[..., T], *args: Any) -> T:
        """`func(*args)`, which applies `rules`: on the reading thread as any read, or in a worker process
        with a deadline (RulesError past it) when the rules have regular expressions of their own."""
        if rules.replace:
            return await self.offload.under_rules(rules, "the saved miss", func, *args)
        return await self.read(_pure, func, *args)
