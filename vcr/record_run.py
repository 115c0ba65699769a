"""The record-run policy, one for the proxy and for every import, so that recording through `serve` and
importing the same traffic store the same thing:

- identical requests are numbered 0, 1, 2... (their ordinals) in the order the run sees them;
- the first time a run records a key it replaces that key's older recordings (a new take, not an append);
- a cassette's first recording keyed in the run stores the rules its keys were made with, and a cassette
  that has rules keeps them.

`CassetteRun` is pure bookkeeping, one per cassette a run touches: the caller does the reading and writing
(the proxy through `StoreThread`, imports through `Store`), so one policy serves the event loop and plain
code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .matching import KEY_SCHEME, Rules
from .records import StoredRules, utc_now


@dataclass
class CassetteRun:
    """What one run knows of one cassette: the rules its requests are keyed with, and each key's count."""

    rules: Rules
    rules_stored: bool
    """Whether the cassette already has these rules in the db."""
    rules_json: str | None = None
    """The rules as the db holds them (compared at each save: a `rekey` may change them meanwhile)."""
    started: str = field(default_factory=utc_now)
    """When the run began: recordings made before it are the ones its first take of a key replaces."""
    _next: dict[str, int] = field(default_factory=dict)
    _replaced: set[str] = field(default_factory=set)

    @classmethod
    def start(cls, stored: StoredRules | None, default: Rules, started: str | None = None) -> CassetteRun:
        """A cassette as a run finds it: the rules it was recorded with, else `default` (stored later)."""
        when = {"started": started} if started else {}
        if stored is not None and stored.rules_json:
            return cls(stored.rules(), rules_stored=True, rules_json=stored.rules_json, **when)
        return cls(default, rules_stored=False, **when)

    def ordinal(self, key: str, given: int | None = None) -> int:
        """The next ordinal of a key in this run; a `given` one (an export's own) is kept, and the count
        goes on after it."""
        ordinal = self._next.get(key, 0) if given is None else given
        self._next[key] = max(self._next.get(key, 0), ordinal + 1)
        return ordinal

    def replaces(self, key: str) -> bool:
        """True the first time the run records a key: the caller then drops the key's older recordings."""
        if key in self._replaced:
            return False
        self._replaced.add(key)
        return True

    def rules_to_store(self) -> StoredRules | None:
        """The rules to store with the cassette before its first save in this run; None once they are."""
        if self.rules_stored:
            return None
        self.rules_stored = True
        self.rules_json = self.rules.to_json()
        return StoredRules(self.rules_json, KEY_SCHEME)
