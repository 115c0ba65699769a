"""Why a replay missed: the closest recordings of the cassette and where the best one differs."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .catalog import Catalog
from .claude_code import drift_summary
from .errors import NotFound
from .matching import (
    KeyedRequest,
    Rules,
    json_differences,
    key_request,
    likeness,
    normalise,
    parse_json_body,
    short_key,
    similarity,
)
from .records import UnstoredAnswer
from .storable import RECORD_ERRORS, unstored_hint

CLOSEST = 3
REFINED = 8
"""How many of the recordings closest by fingerprints are read whole to rank them by likeness."""


@dataclass
class Candidate:
    key: str
    ordinal: int
    score: float

    @property
    def percent(self) -> int:
        """The score in whole percent, rounded down: a request that missed never reads as 100% same."""
        return math.floor(self.score * 100)


@dataclass
class MissReport:
    """The closest recordings (best first) and the first JSON paths where the best one differs."""

    cassette: str
    method: str
    target: str
    key: str
    closest: list[Candidate] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    exhausted: int | None = None
    """When the request was recorded, but fewer times than it was asked: how many times."""
    harness: str | None = None
    """For Claude Code: how its harness differs from the closest recording's (said after the conversation)."""
    unstored: UnstoredAnswer | None = None
    """A record run's note that this request's answer was not stored (`explain` says so last)."""

    def text(self) -> str:
        """One paragraph for the error message and the log."""
        said = self._text()
        return f"{said} {unstored_hint(self.unstored, RECORD_ERRORS)}" if self.unstored is not None else said

    def _text(self) -> str:
        head = (
            f"claude-vcr: no recording for {self.method} {self.target} in cassette '{self.cassette}' "
            f"(key {short_key(self.key)})"
        )
        if self.exhausted is not None:
            return (
                f"{head}: all {self.exhausted} recording(s) of this request were already replayed in this run "
                "(--exhausted miss)."
            )
        if not self.closest:
            return f"{head}; the cassette has no recording of {self.method} {self.target.split('?')[0]}."
        ranked = ", ".join(f"{short_key(c.key)} ({c.percent}% same)" for c in self.closest)
        best = short_key(self.closest[0].key)
        diff = "; ".join(self.differences) if self.differences else "only in parts the key leaves out"
        harness = f". Claude Code's own part differs too: {self.harness}" if self.harness else ""
        return f"{head}. Closest recordings: {ranked}. Request vs {best}: {diff}{harness}"


@dataclass
class MissEvidence:
    """What a miss's diagnosis reads from the db: the cassette's recordings of the same method and path closest
    by fingerprints (best first, one per key, REFINED at most) and their request bodies.
    Read on the store thread; ranked by `rank_miss`, which applies the cassette's rules to them."""

    shortlist: list[tuple[float, int, str, int]]
    """(share of fingerprints in common, recording id, key, ordinal)."""
    bodies: dict[int, bytes]


def miss_evidence(
    catalog: Catalog, cassette: str, method: str, target: str, keyed: KeyedRequest
) -> MissEvidence:
    """Rank the cassette's recordings of the same method and path by the share of request parts they have in
    common (their fingerprints only, no rule runs here) and read the request bodies of the REFINED best."""
    candidates = catalog.candidates(cassette, method, target)
    ranked = sorted(
        (
            (similarity(keyed.fingerprints, fingerprints), recording_id, key, ordinal)
            for recording_id, key, ordinal, fingerprints in candidates
        ),
        key=lambda item: (-item[0], item[2], item[3]),
    )
    shortlist: list[tuple[float, int, str, int]] = []
    seen: set[str] = set()
    for item in ranked:
        if item[2] not in seen:
            seen.add(item[2])
            shortlist.append(item)
            if len(shortlist) == REFINED:
                break
    return MissEvidence(shortlist, {item[1]: catalog.request_body(item[1]) for item in shortlist})


def rank_miss(report: MissReport, evidence: MissEvidence, request: bytes, rules: Rules) -> MissReport:
    """Rank the shortlist by how much of the request is the same (`likeness` of the normalised bodies: ties
    between parts that differ are broken by how alike the differing values are), which is also the percentage
    shown, and diff the request against the best. Pure: the proxy runs it where a stored rule's regex is
    bounded by a deadline (`Offload.under_rules`), and so normalises the request there too."""
    parsed = parse_json_body(request)
    normalised = None if parsed is None else normalise(parsed, rules)
    shortlist = evidence.shortlist
    bodies: dict[int, Any] = {}
    recorded: dict[int, Any] = {}
    if normalised is not None:
        scored = []
        for share, recording_id, key, ordinal in shortlist:
            recorded[recording_id] = parse_json_body(evidence.bodies.get(recording_id, b""))
            if recorded[recording_id] is None:
                scored.append((share, share, recording_id, key, ordinal))
                continue
            bodies[recording_id] = normalise(recorded[recording_id], rules)
            scored.append((likeness(normalised, bodies[recording_id]), share, recording_id, key, ordinal))
        scored.sort(key=lambda item: (-item[0], -item[1], item[3], item[4]))
        shortlist = [(score, recording_id, key, ordinal) for score, _, recording_id, key, ordinal in scored]
    for score, _, key, ordinal in shortlist[:CLOSEST]:
        report.closest.append(Candidate(key, ordinal, score))
    if shortlist and shortlist[0][1] in bodies:
        report.differences = json_differences(normalised, bodies[shortlist[0][1]])
        report.harness = drift_summary(recorded[shortlist[0][1]], parsed)
    return report


def rank_and_compare(
    report: MissReport, evidence: MissEvidence, request: bytes, rules: Rules
) -> tuple[MissReport, dict[str, list[str]]]:
    """`rank_miss`, and where the request differs from each of its closest recordings (the ui lists them
    all, not only the best): pure, so it runs wherever the cassette's rules are bounded."""
    report = rank_miss(report, evidence, request, rules)
    parsed = parse_json_body(request)
    if parsed is None:
        return report, {}
    normalised = normalise(parsed, rules)
    ids = {(key, ordinal): recording_id for _, recording_id, key, ordinal in evidence.shortlist}
    found: dict[str, list[str]] = {}
    for candidate in report.closest:
        recorded = parse_json_body(evidence.bodies.get(ids.get((candidate.key, candidate.ordinal), -1), b""))
        if recorded is not None:
            found[candidate.key] = json_differences(normalised, normalise(recorded, rules))
    return report, found


def explain_miss(
    catalog: Catalog, cassette: str, method: str, target: str, keyed: KeyedRequest, rules: Rules
) -> MissReport:
    """Why a request missed: its closest recordings (`miss_evidence`), ranked and diffed (`rank_miss`)."""
    evidence = miss_evidence(catalog, cassette, method, target, keyed)
    report = MissReport(cassette, method, target, keyed.key)
    return rank_miss(report, evidence, keyed.body, rules)


@dataclass
class SavedRequest:
    """A request read from a file: a bare Messages body, or `{method, path, body}` as `--save-misses` writes."""

    method: str
    target: str
    body: bytes
    cassette: str | None = None


def read_request_file(text: str) -> SavedRequest:
    """Accept what `serve --save-misses` writes (and shared/samples), or a plain body for POST /v1/messages."""
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ValueError(f"not JSON: {error}") from error
    if isinstance(data, dict) and {"method", "path", "body"} <= set(data):
        body = data["body"]
        raw = body.encode() if isinstance(body, str) else b"" if body is None else json.dumps(body).encode()
        return SavedRequest(str(data["method"]).upper(), str(data["path"]), raw, data.get("cassette"))
    return SavedRequest("POST", "/v1/messages", text.encode())


def explain(catalog: Catalog, cassette: str, request: SavedRequest) -> tuple[str, MissReport | None]:
    """Which recording a request would replay under the cassette's rules, or why it would miss."""
    stored = catalog.cassette_rules(cassette)
    if stored is None:
        raise NotFound(f"no cassette named {cassette!r}")
    rules = stored.rules()
    parts = urlsplit(request.target)
    keyed = key_request(request.method, parts.path, parts.query, request.body, rules)
    if catalog.lookup(cassette, keyed.key) is not None:
        return keyed.key, None
    report = explain_miss(catalog, cassette, request.method, request.target, keyed, rules)
    report.unstored = catalog.unstored_answer(cassette, keyed.key)
    return keyed.key, report
