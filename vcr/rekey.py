"""Recompute a cassette's keys after its rules or the key scheme changed, and report what collided."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .errors import NotFound
from .matching import KEY_SCHEME, Rules, key_request
from .records import StoredRules, UnstoredAnswer
from .store import Store


@dataclass
class RekeyResult:
    """What rekeying one cassette did."""

    cassette: str
    recordings: int = 0
    changed: int = 0
    collisions: list[tuple[str, list[str]]] = field(default_factory=list)
    """(new key, old keys): requests that differed before and are the same now; they replay in the order
    they were recorded."""
    notes_dropped: int = 0
    """Notes of unstored answers whose new key cannot be known (no recording of their key moved as one)."""


def rekey(store: Store, cassette: str | None = None, rules: Rules | None = None) -> list[RekeyResult]:
    """Key every recording again under `rules` (default: the rules each cassette was recorded with)."""
    names = [cassette] if cassette else store.catalog.cassette_names()
    results = []
    for name in names:
        with store.writing():  # read and rewrite under one write lock: a recording saved meanwhile is kept
            if cassette is None and store.catalog.cassette_rules(name) is None:
                continue  # cleared by another process since it was listed
            results.append(_rekey_cassette(store, name, rules))
    return results


def _rekey_cassette(store: Store, name: str, rules: Rules | None) -> RekeyResult:
    """One cassette, inside the caller's write transaction."""
    stored = store.catalog.cassette_rules(name)
    if stored is None:
        raise NotFound(f"no cassette named {name!r}")
    cassette_rules = rules or stored.rules()
    result = RekeyResult(name)
    groups: dict[str, list[tuple[int, str, dict[str, str] | None]]] = {}
    for recording_id, method, target, _ordinal, _created, body in store.catalog.requests(name):
        parts = urlsplit(target)
        keyed = key_request(method, parts.path, parts.query, body, cassette_rules)
        fingerprints = keyed.fingerprints or None
        groups.setdefault(keyed.key, []).append((recording_id, target, fingerprints))
    old_keys = {rid: key for rid, key, _ in store.catalog.keys(name)}
    updates = []
    for key, members in groups.items():
        previous = sorted({old_keys[rid] for rid, _, _ in members})
        if len(previous) > 1:
            result.collisions.append((key, previous))
        for ordinal, (recording_id, _target, fingerprints) in enumerate(members):
            updates.append((recording_id, key, ordinal, fingerprints))
            result.changed += old_keys[recording_id] != key
    result.recordings = len(updates)
    new_rules = StoredRules(cassette_rules.to_json(), KEY_SCHEME)
    notes = None
    if new_rules != stored:
        moved: dict[str, set[str]] = {}
        for recording_id, key, _ordinal, _fingerprints in updates:
            moved.setdefault(old_keys[recording_id], set()).add(key)
        noted = store.catalog.unstored_answers(name)
        notes = moved_notes(noted, moved)
        result.notes_dropped = len(noted) - len(notes)
    store.rekey(name, new_rules, updates, notes)
    return result


def moved_notes(notes: list[UnstoredAnswer], moved: dict[str, set[str]]) -> list[UnstoredAnswer]:
    """A cassette's notes of unstored answers under new keys. A note holds no request, so its new key is
    known only when its key's recordings all moved to one key; the others are dropped (they could never
    match again). Two notes meeting on one key keep the newer."""
    kept: dict[str, UnstoredAnswer] = {}
    for note in notes:
        targets = moved.get(note.key, set())
        if len(targets) != 1:
            continue
        key = next(iter(targets))
        if key not in kept or note.noted_at > kept[key].noted_at:
            kept[key] = dataclasses.replace(note, key=key)
    return [kept[key] for key in sorted(kept)]
