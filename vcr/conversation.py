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
    id across calls (the caller keeps one per cassette and rules)."""
    wanted = conversation(keyed.normalised)
    if wanted is None:
        return None
    digest = _digest(wanted)
    best: tuple[float, str, int] | None = None
    for recording_id, key, _ordinal, fingerprints in catalog.candidates(cassette, method, target):
        if recording_id not in seen:
            recorded = parse_json_body(catalog.request_body(recording_id))
            found = conversation(normalise(recorded, rules)) if recorded is not None else None
            seen[recording_id] = None if found is None else _digest(found)
        if seen[recording_id] != digest:
            continue
        score = similarity(keyed.fingerprints, fingerprints)
        if best is None or (score, key) > (best[0], best[1]):
            best = (score, key, recording_id)
    if best is None:
        return None
    recorded = normalise(parse_json_body(catalog.request_body(best[2])), rules)
    request = keyed.normalised
    names = sorted(set(request) | set(recorded), key=str)
    differed = tuple(name for name in names if request.get(name) != recorded.get(name))
    return ConversationMatch(best[1], differed)
