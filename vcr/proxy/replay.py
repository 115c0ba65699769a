"""The replay cache: recordings of a cassette's keys kept in memory within a byte budget."""

from __future__ import annotations

import logging
from collections import OrderedDict

from ..records import Recording

log = logging.getLogger("claude_vcr.proxy")
"""One logger for the whole proxy package (tests and users filter on `claude_vcr.proxy`)."""


class ReplayCache:
    """Recordings read in this run, by cassette and key, up to a byte budget (least recently used out)."""

    def __init__(self, budget: int = 256 * 1024 * 1024) -> None:
        self.budget = budget
        self.size = 0
        self._entries: OrderedDict[tuple[str, str], tuple[list[Recording], int]] = OrderedDict()

    def get(self, cassette: str, key: str) -> list[Recording] | None:
        entry = self._entries.get((cassette, key))
        if entry is None:
            return None
        self._entries.move_to_end((cassette, key))
        return entry[0]

    def put(self, cassette: str, key: str, recordings: list[Recording]) -> None:
        self.drop(cassette, key)
        size = sum(len(r.response_frame or r.response_body) + len(r.request_body) for r in recordings)
        if size > self.budget:
            return
        self._entries[(cassette, key)] = (recordings, size)
        self.size += size
        while self.size > self.budget:
            _, (_, dropped) = self._entries.popitem(last=False)
            self.size -= dropped

    def drop(self, cassette: str, key: str) -> None:
        entry = self._entries.pop((cassette, key), None)
        if entry is not None:
            self.size -= entry[1]

    def drop_cassette(self, cassette: str) -> None:
        for name, key in [entry for entry in self._entries if entry[0] == cassette]:
            self.drop(name, key)
