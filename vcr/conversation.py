"""`--match conversation`: when a request's exact key misses, find a recording of the same conversation.

A client's harness (Claude Code's system prompt, tool set, `max_tokens`, thinking, effort) changes from release
to release while the conversation stays the same. What counts here, and nothing else:

- the method and path (with its query), and the `model`;
- `tool_choice` and `stop_sequences` (they change the answer);
- the messages, in order, consecutive messages of one role joined as the API joins them: text (with Claude
  Code's `<system-reminder>...</system-reminder>` spans cut out, then trimmed; a block left empty is dropped),
  tool calls (name and input), tool results (their text, with reminders cut out, and `is_error`), images and
  documents and any other block, `cache_control` left out; ids, `thinking` and `redacted_thinking` (the
  model's own reasoning, which the client only carries back) left out.

Both sides are first normalised under the cassette's rules (so the claude-code preset's directory, HOME and date
blurring applies). Pure functions over the read side (a `Catalog`); the proxy calls `match_conversation` and logs the warning.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from .catalog import Catalog
from .claude_code import conversation_block
from .matching import KeyedRequest, Rules, canonical_json, normalise, parse_json_body, short_key, similarity

COUNTED_FIELDS = ("model", "tool_choice", "stop_sequences")
"""Top-level request fields that count besides the messages."""


def conversation(body: Any) -> dict[str, Any] | None:
    """The part of a (normalised) Messages request that counts for `--match conversation`; None for a body
    that is not a Messages request."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return None
    turns: list[dict[str, Any]] = []
    for message in body["messages"]:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        blocks = [content] if isinstance(content, str) else content if isinstance(content, list) else []
        kept = [b for b in (conversation_block(block) for block in blocks) if b is not None]
        role = message.get("role")
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(kept)
        else:
            turns.append({"role": role, "content": kept})
    counted = {name: body[name] for name in COUNTED_FIELDS if name in body}
    return {**counted, "messages": turns}


def _digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


@dataclass(frozen=True)
class ConversationMatch:
    """The recording whose conversation a missed request has, and what else differed."""

    key: str
    differed: tuple[str, ...]
    """Top-level request fields that differ (`system`, `tools`, `max_tokens`...), and `messages` when only
    what does not count in them differs."""

    def warning(self, key: str) -> str:
        """One log line: which recording stands in for which request, and what differed."""
        what = ", ".join(self.differed) or "nothing the key counts"
        return (
            f"hit-conversation {short_key(key)} replays {short_key(self.key)}: same conversation, "
            f"different {what}"
        )


BATCH = 16
"""How many stored requests are read (and sent to the worker process) at a time while looking for a conversation."""


def conversation_digest(normalised: Any) -> str | None:
    """The digest of a normalised request's conversation; None for a body that is not a Messages request."""
    found = conversation(normalised)
    return None if found is None else _digest(found)


def request_conversation(request: bytes, rules: Rules) -> str | None:
    """The digest of a request's conversation under the cassette's rules. Pure, as `conversation_digests`."""
    parsed = parse_json_body(request)
    return None if parsed is None else conversation_digest(normalise(parsed, rules))


def unseen_batches(
    candidates: list[tuple[int, str, int, dict[str, str]]], seen: dict[int, str | None]
) -> list[list[int]]:
    """The ids of the recordings whose conversation is not known yet, BATCH at a time."""
    unseen = [candidate[0] for candidate in candidates if candidate[0] not in seen]
    return [unseen[start : start + BATCH] for start in range(0, len(unseen), BATCH)]


def request_bodies(catalog: Catalog, recording_ids: list[int]) -> dict[int, bytes]:
    """Stored request bodies by recording id (read on the store thread)."""
    return {recording_id: catalog.request_body(recording_id) for recording_id in recording_ids}


def conversation_digests(bodies: dict[int, bytes], rules: Rules) -> dict[int, str | None]:
    """Each stored request's conversation digest under the cassette's rules. Pure: the proxy runs it where a
    stored rule's regex is bounded by a deadline (`Offload.under_rules`)."""
    digests: dict[int, str | None] = {}
    for recording_id, body in bodies.items():
        recorded = parse_json_body(body)
        digests[recording_id] = None if recorded is None else conversation_digest(normalise(recorded, rules))
    return digests


def best_conversation(
    candidates: list[tuple[int, str, int, dict[str, str]]],
    digest: str,
    fingerprints: dict[str, str],
    seen: dict[int, str | None],
) -> tuple[str, int] | None:
    """(key, recording id) of the recording with the wanted conversation and the most request parts in common."""
    best: tuple[float, str, int] | None = None
    for recording_id, key, _ordinal, recorded in candidates:
        if seen.get(recording_id) != digest:
            continue
        score = similarity(fingerprints, recorded)
        if best is None or (score, key) > (best[0], best[1]):
            best = (score, key, recording_id)
    return None if best is None else (best[1], best[2])


def conversation_differed(request: bytes, body: bytes, rules: Rules) -> tuple[str, ...]:
    """The top-level fields a request and a stored request (both normalised under the cassette's rules)
    differ in. Pure, as `conversation_digests`."""
    normalised = normalise(parse_json_body(request), rules)
    recorded = normalise(parse_json_body(body), rules)
    names = sorted(set(normalised) | set(recorded), key=str)
    return tuple(name for name in names if normalised.get(name) != recorded.get(name))


def match_conversation(
    catalog: Catalog,
    cassette: str,
    method: str,
    target: str,
    keyed: KeyedRequest,
    rules: Rules,
    seen: dict[int, str | None],
) -> ConversationMatch | None:
    """The cassette's recording (same method and path) whose conversation equals the request's; among several,
    the one with the most request parts in common. `seen` caches each recording's conversation digest by row
    id across calls (the caller keeps one per cassette and rules). The proxy takes the same steps with the
    reads on its store thread and the rules applied in its worker process (`proxy/stored_rules.py`)."""
    digest = request_conversation(keyed.body, rules)
    if digest is None:
        return None
    candidates = catalog.candidates(cassette, method, target)
    for batch in unseen_batches(candidates, seen):
        seen.update(conversation_digests(request_bodies(catalog, batch), rules))
    best = best_conversation(candidates, digest, keyed.fingerprints, seen)
    if best is None:
        return None
    return ConversationMatch(best[0], conversation_differed(keyed.body, catalog.request_body(best[1]), rules))
