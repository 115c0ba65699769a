"""An import as one record run: keys under the cassette's rules, repeats numbered, replaced keys counted.

Both importers (seed directories and mitmproxy dumps) store what they read the way `serve --mode record`
would have: the first time a run sees a key it drops that key's older recordings, and identical requests
are numbered 0, 1, 2... in the order they were made.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..matching import KEY_SCHEME, KeyedRequest, Rules, key_request
from ..store import Recording, Store


@dataclass
class ImportReport:
    """What an import did, for the CLI's summary line and for scripts."""

    imported: int = 0
    replaced_keys: int = 0
    """Keys that already had recordings in the db; those were replaced, as a new record run replaces them."""
    cassettes: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    """Why items were left out (no body, other path, ...), and how many each."""
    flows: int = 0
    """mitmproxy flows read (dump imports only)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "replaced_keys": self.replaced_keys,
            "cassettes": dict(sorted(self.cassettes.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "flows": self.flows,
        }


class ImportRun:
    """The state of one import: each cassette's rules and each key's next ordinal."""

    def __init__(self, store: Store, presets: tuple[str, ...] = ()) -> None:
        self.store = store
        self.presets = presets
        self.report = ImportReport()
        self._rules: dict[str, Rules] = {}
        self._next: dict[tuple[str, str], int] = {}

    def rules(self, cassette: str) -> Rules:
        """The rules the cassette was recorded with; a new cassette gets the defaults (plus presets)."""
        rules = self._rules.get(cassette)
        if rules is None:
            stored = self.store.cassette_rules(cassette)
            if stored is not None and stored[0]:
                rules = Rules.from_json(stored[0])
            else:
                rules = Rules(presets=self.presets)
                if stored is None:
                    self.store.ensure_cassette(cassette, key_scheme=KEY_SCHEME, rules_json=rules.to_json())
            self._rules[cassette] = rules
        return rules

    def key(self, cassette: str, method: str, target: str, body: bytes) -> KeyedRequest:
        """Our key for a request, as the proxy computes it for this cassette (`target` is path?query)."""
        path, _, query = target.partition("?")
        return key_request(method, path, query, body, self.rules(cassette))

    def claim(self, cassette: str, key: str, ordinal: int | None = None) -> int:
        """The ordinal to store a recording under; the first claim of a key drops its older recordings."""
        identity = (cassette, key)
        if identity not in self._next:
            if self.store.forget_key(cassette, key):
                self.report.replaced_keys += 1
            self._next[identity] = 0
        if ordinal is None:
            ordinal = self._next[identity]
        self._next[identity] = max(self._next[identity], ordinal + 1)
        return ordinal

    def save(
        self, recording: Recording, meta: dict[str, Any] | None, columns: dict[str, Any] | None = None
    ) -> None:
        self.store.save_imported(recording, meta, columns)
        self.report.imported += 1
        self.report.cassettes[recording.cassette] += 1
