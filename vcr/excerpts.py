"""Long values said in one short line: a cut string, the text around a difference, where two JSON values differ.

`show` previews, `explain` (why a replay missed) and `verify` (how a live answer differs from its recording)
all cut and quote through here, so every excerpt reads the same. Stdlib only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

from .claude_code import cut_reminders, shown_text
from .secrets import redact

__all__ = ["Difference", "clip", "differences", "excerpt", "marked", "prompt_excerpt", "quote"]

ELLIPSIS = "..."


def clip(text: str, limit: int) -> str:
    """One line of at most `limit` characters, newlines shown as `\\n`; a cut one ends in `...`."""
    flat = text.replace("\r", "\\r").replace("\n", "\\n")
    return flat if len(flat) <= limit else flat[: limit - len(ELLIPSIS)] + ELLIPSIS


PROMPT_EXCERPT_CHARS = 60
"""How much of the last user message `list` and the viewer show: the first words, enough to tell turns apart."""


class Excerpt(NamedTuple):
    """A request's prompt excerpt worked out before saving (for a large body, in a child process); `text` is
    None for a body that is no Messages request."""

    text: str | None


def prompt_excerpt(body: bytes) -> str | None:
    """The first words of a Messages request's last user message (its text, else its tool results' text), in
    one line, Claude Code's `<system-reminder>` spans left out and its task notifications summed up (what the
    user typed, not the harness); None for a body that is not a Messages request."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    messages = parsed.get("messages") if isinstance(parsed, dict) else None
    if not isinstance(messages, list):
        return None
    last = next((m for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), None)
    if last is None:
        return None
    content = last.get("content")
    texts = [shown_text(content)] if isinstance(content, str) else []
    results: list[str] = []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(shown_text(str(block.get("text", ""))))  # Claude Code's reminders are not typed
        elif block.get("type") == "tool_result":
            inner = block.get("content")
            parts = inner if isinstance(inner, list) else [{"text": inner}] if isinstance(inner, str) else []
            results.append(" ".join(cut_reminders(str(p.get("text", ""))) for p in parts if isinstance(p, dict)))
    text = " ".join(texts) if any(t.strip() for t in texts) else " ".join(results)
    prefix = "" if any(t.strip() for t in texts) or not results else "[tool_result] "
    words = " ".join(text.split()).encode("utf-8", "replace").decode("utf-8")  # a lone surrogate becomes "?"
    return clip(redact(prefix + words)[0], PROMPT_EXCERPT_CHARS)  # a key cut short would escape detection


def quote(value: Any, limit: int = 80) -> str:
    """A JSON value in a message, in at most `limit` characters: a string in quotes, its cut (`...`) inside
    the closing quote so the excerpt still reads as one string; anything else as compact JSON, clipped."""
    if not isinstance(value, str):
        return clip(json.dumps(value, ensure_ascii=False, sort_keys=True), limit)
    shown = json.dumps(value, ensure_ascii=False)
    keep = len(value)
    while len(shown) > limit and keep > 0:
        keep = max(0, keep - (len(shown) - limit))  # escapes make the quoted form longer than the text
        shown = json.dumps(value[:keep] + ELLIPSIS, ensure_ascii=False)
    return shown


def excerpt(text: str, at: int, width: int = 40) -> str:
    """The text around position `at`, quoted, from the start of its line when that is near so the excerpt
    names the setting that differs (`"Primary working directory: ..."`); `...` inside the quotes marks each
    side that was cut."""
    line_start = text.rfind("\n", 0, at) + 1
    start = line_start if at - line_start <= 3 * width else at - width
    end = min(len(text), at + width)
    cut = (ELLIPSIS if start else "") + text[start:end] + (ELLIPSIS if end < len(text) else "")
    return json.dumps(cut, ensure_ascii=False)


MARK_START, MARK_END = "\u00ab", "\u00bb"
"""`«` and `»` around the words that differ between two strings."""


def _differing_words(a: str, b: str) -> tuple[int, int]:
    """(common prefix, common suffix) of two strings, each cut back to a whitespace boundary so the part between
    them is whole words (a path, a name), never half of one."""
    prefix = _first_unequal(a, b)
    limit = min(len(a), len(b)) - prefix
    suffix = 0
    while suffix < limit and a[len(a) - 1 - suffix] == b[len(b) - 1 - suffix]:
        suffix += 1
    while prefix > 0 and not a[prefix - 1].isspace():
        prefix -= 1
    while suffix > 0 and not a[len(a) - suffix].isspace():
        suffix -= 1
    return prefix, suffix


def marked(a: str, b: str, width: int = 40, longest: int = 80) -> tuple[str, str]:
    """Two strings that differ, each quoted whole at both ends, the words that differ marked `«...»` and the
    same text around them kept short (`...` inside the quotes where cut): from the start of the line when that
    is near, so the excerpt names the setting that differs; at most `longest` characters of the differing part."""
    prefix, suffix = _differing_words(a, b)
    line_start = a.rfind("\n", 0, prefix) + 1
    start = line_start if prefix - line_start <= 3 * width else prefix - width

    def one(text: str) -> str:
        middle = text[prefix : len(text) - suffix]
        if len(middle) > longest:
            middle = middle[: longest - len(ELLIPSIS)] + ELLIPSIS
        end = min(len(text), len(text) - suffix + width)
        before = (ELLIPSIS if start else "") + text[start:prefix]
        after = text[len(text) - suffix : end] + (ELLIPSIS if end < len(text) else "")
        return json.dumps(f"{before}{MARK_START}{middle}{MARK_END}{after}", ensure_ascii=False)

    return one(a), one(b)


_ABSENT: Any = object()


@dataclass(frozen=True)
class Difference:
    """One place where two JSON values differ; the caller says it in its own words (request vs recording,
    live vs recorded)."""

    path: str
    """`messages[1].content[0].text`; "" for the values themselves."""
    a: Any = _ABSENT
    b: Any = _ABSENT
    at: int | None = None
    """For two strings: the first character where they differ."""

    @property
    def only_in_a(self) -> bool:
        return self.b is _ABSENT

    @property
    def only_in_b(self) -> bool:
        return self.a is _ABSENT

    @property
    def lengths(self) -> bool:
        """Two lists whose common items agree but whose lengths do not."""
        return isinstance(self.a, list) and isinstance(self.b, list)


def _first_unequal(a: str, b: str) -> int:
    """The first position where two strings differ (the shorter length when one starts the other)."""
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def differences(a: Any, b: Any, limit: int = 3) -> list[Difference]:
    """The first `limit` places where two JSON values differ, in document order (object keys sorted)."""
    found: list[Difference] = []

    def walk(x: Any, y: Any, where: str) -> None:
        if len(found) >= limit or x == y:
            return
        if isinstance(x, dict) and isinstance(y, dict):
            for key in sorted(set(x) | set(y), key=str):
                here = f"{where}.{key}" if where else str(key)
                if key not in y:
                    found.append(Difference(here, a=x[key]))
                elif key not in x:
                    found.append(Difference(here, b=y[key]))
                else:
                    walk(x[key], y[key], here)
                if len(found) >= limit:
                    return
        elif isinstance(x, list) and isinstance(y, list):
            for index, (xi, yi) in enumerate(zip(x, y, strict=False)):
                walk(xi, yi, f"{where}[{index}]")
                if len(found) >= limit:
                    return
            if len(x) != len(y):
                found.append(Difference(where, x, y))
        elif isinstance(x, str) and isinstance(y, str):
            found.append(Difference(where, x, y, _first_unequal(x, y)))
        else:
            found.append(Difference(where, x, y))

    walk(a, b, "")
    return found
