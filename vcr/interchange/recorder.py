"""An import as one record run: keys under the cassette's rules, repeats numbered, replaced keys counted.

The importers (seed directories, mitmproxy dumps, vcrpy cassettes) store what they read the way `serve --mode record`
would have, under the same policy (`record_run`): the first time a run sees a key it drops that key's older
recordings, identical requests are numbered 0, 1, 2... in the order they were made, and a cassette's first
recording stores the rules its keys were made with.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..headers import Headers, for_storage
from ..matching import KEY_SCHEME, KeyedRequest, Rules, key_request
from ..record_run import CassetteRun
from ..records import Recording, utc_now
from ..redact import screen
from ..secrets import redact_target
from ..sse import ends_with_error, is_stream
from ..storable import Verdict, verdict
from ..store import Store


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
    warnings: list[str] = field(default_factory=list)
    """One line per imported recording holding a credential-shaped string (never the secret)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "imported": self.imported,
            "replaced_keys": self.replaced_keys,
            "cassettes": dict(sorted(self.cassettes.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "flows": self.flows,
            "warnings": self.warnings,
        }


class ImportRun:
    """One import as a record run (`record_run.CassetteRun` per cassette), with its report."""

    def __init__(self, store: Store, presets: tuple[str, ...] = (), *, record_errors: bool = False) -> None:
        self.store = store
        self.presets = presets
        self.record_errors = record_errors
        """Transient errors are stored too (`--record-errors`), as `storable` says."""
        self.report = ImportReport()
        self._cassettes: dict[str, CassetteRun] = {}

    def cassette(self, name: str) -> CassetteRun:
        """The cassette as this run sees it: recorded rules, else the defaults (plus presets)."""
        run = self._cassettes.get(name)
        if run is None:
            run = CassetteRun.start(self.store.catalog.cassette_rules(name), Rules(presets=self.presets))
            self._cassettes[name] = run
        return run

    def key(self, cassette: str, method: str, target: str, body: bytes) -> KeyedRequest:
        """Our key for a request, as the proxy computes it for this cassette (`target` is path?query)."""
        path, _, query = target.partition("?")
        return key_request(method, path, query, body, self.cassette(cassette).rules)

    def claim(self, cassette: str, key: str, ordinal: int | None = None) -> int:
        """The ordinal to store a recording under; the first claim of a key drops its older recordings."""
        run = self.cassette(cassette)
        if run.replaces(key) and self.store.forget_key(cassette, key):
            self.report.replaced_keys += 1
        return run.ordinal(key, ordinal)

    def storable(self, status: int, headers: Headers, body: bytes) -> Verdict:
        """Whether an answer read from a file is stored, by the rule recording follows (`storable`)."""
        return verdict(
            status,
            body,
            streamed_error=is_stream(headers, body) and ends_with_error(body),
            record_errors=self.record_errors,
        )

    def record(
        self,
        cassette: str,
        method: str,
        target: str,
        request: tuple[Headers, bytes],
        response: tuple[int, Headers, bytes],
        *,
        meta: dict[str, Any],
        created_at: str | None = None,
        duration_ms: float | None = None,
        ttfb_ms: float | None = None,
        keyed: KeyedRequest | None = None,
    ) -> Recording:
        """Store one exchange read from a file as a record run would have: a credential in the query as a
        placeholder, credential headers dropped, our key under the cassette's rules, the next ordinal;
        `meta` says where it came from; `keyed`: the request's key when the caller needed it first. The one
        place an importer makes a `Recording` from an exchange."""
        target = redact_target(target)
        request_headers, request_body = request
        status, response_headers, response_body = response
        keyed = keyed or self.key(cassette, method, target, request_body)
        recording = Recording(
            cassette=cassette,
            key=keyed.key,
            key_scheme=KEY_SCHEME,
            method=method,
            path=target,
            status=status,
            request_headers=for_storage(request_headers),
            request_body=request_body,
            response_headers=for_storage(response_headers),
            response_body=response_body,
            model=keyed.model,
            stream=keyed.wants_stream,
            ordinal=self.claim(cassette, keyed.key),
            created_at=created_at or utc_now(),
            duration_ms=duration_ms,
            ttfb_ms=ttfb_ms,
            fingerprints=keyed.fingerprints or None,
            meta=meta,
        )
        self.save(recording)
        return recording

    def save(self, recording: Recording, *, keyed_here: bool = True) -> None:
        """Store a recording (its `meta` says where it came from). One `keyed_here` by `key` stores the
        cassette's rules first, if it has none; one keeping an exported key leaves them as exported."""
        if keyed_here:
            stored = self.cassette(recording.cassette).rules_to_store()
            if stored is not None:
                self.store.set_cassette_rules(recording.cassette, stored)
        screened = screen(recording)
        if screened:
            self.report.warnings.append(screened.warning(recording))
        self.store.save(recording)
        self.report.imported += 1
        self.report.cassettes[recording.cassette] += 1
