"""Miss diagnosis and `--match conversation` in the proxy: both apply a cassette's rules to its stored
requests (text from whoever wrote the db). The requests are read on the store thread; the rules are applied
there too when they have no regular expressions of their own, else in the worker process for their patterns
with a deadline (`Offload`), since Python's `re` holds the interpreter lock for a whole match and a
backtracking pattern would stall the store thread and the event loop, so every client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..catalog import Catalog
from ..conversation import (
    ConversationMatch,
    best_conversation,
    conversation_differed,
    conversation_digests,
    request_bodies,
    request_conversation,
    unseen_batches,
)
from ..diagnosis import MissReport, miss_evidence, rank_miss
from ..matching import KeyedRequest, Rules
from ..store import StoreThread
from .offload import Offload

T = TypeVar("T")


def _pure(_catalog: Catalog, func: Callable[..., T], *args: Any) -> T:
    """`func(*args)` called through `StoreThread.read`, which passes the catalog first."""
    return func(*args)


class StoredRequests:
    """Applies a cassette's rules to its stored requests for one running proxy (and to the request compared
    with them: keyed elsewhere, it is normalised again where the rules run)."""

    def __init__(self, store: StoreThread, offload: Offload) -> None:
        self.store = store
        self.offload = offload

    async def _apply(self, rules: Rules, func: Callable[..., T], *args: Any) -> T:
        """`func(*args)`, which applies `rules` to stored requests: on the store thread as any read, or in the
        worker with a deadline (RulesError past it) when the rules have regular expressions of their own."""
        if rules.replace:
            return await self.offload.under_rules(rules, "its recordings' requests", func, *args)
        return await self.store.read(_pure, func, *args)

    async def explain_miss(
        self, cassette: str, method: str, target: str, keyed: KeyedRequest, rules: Rules
    ) -> MissReport:
        """`diagnosis.explain_miss`, its reads and its rules each where they belong."""
        evidence = await self.store.read(miss_evidence, cassette, method, target, keyed)
        report = MissReport(cassette, method, target, keyed.key)
        return await self._apply(rules, rank_miss, report, evidence, keyed.body, rules)

    async def match_conversation(
        self,
        cassette: str,
        method: str,
        target: str,
        keyed: KeyedRequest,
        rules: Rules,
        seen: dict[int, str | None],
    ) -> ConversationMatch | None:
        """`conversation.match_conversation`, its reads and its rules each where they belong."""
        digest = await self._apply(rules, request_conversation, keyed.body, rules)
        if digest is None:
            return None
        candidates = await self.store.read(Catalog.candidates, cassette, method, target)
        for batch in unseen_batches(candidates, seen):
            bodies = await self.store.read(request_bodies, batch)
            seen.update(await self._apply(rules, conversation_digests, bodies, rules))
        best = best_conversation(candidates, digest, keyed.fingerprints, seen)
        if best is None:
            return None
        body = await self.store.read(Catalog.request_body, best[1])
        return ConversationMatch(
            best[0], await self._apply(rules, conversation_differed, keyed.body, body, rules)
        )
