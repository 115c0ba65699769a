"""A Claude Code request, split into Claude Code's harness, the conversation and the user's choices.

Derived from the traffic of Claude Code releases 2.1.197 (June 2026) to 2.1.337 (December 2026), run offline
against a scripted upstream, directly and through three Agent SDK releases (tests/test_claude_code_matrix.py,
tests/test_agent_sdk_matrix.py). Between releases only the harness changed:

- the harness: `system` (the billing header `x-anthropic-billing-header: cc_version=...`, the identity line,
  the system prompt with its memory paths), the `system`-role messages Claude Code puts in `messages` (the
  environment block: directory, git, platform, OS, date), `<system-reminder>` spans and blocks that hold only
  reminders, `tools` (descriptions, schemas and the tool set itself), `max_tokens`, `thinking`, `output_config`
  (effort), `context_management`, `temperature`, `metadata` (device and session ids) and `cache_control`
  markers; the notification Claude Code sends when a background subagent reports;
- the conversation: the user's typed prompts, the assistant's turns with their tool calls (name and input),
  tool results, images and documents, in order;
- the user's choices: `model` (`--model`, and a fallback model), `tool_choice`, `stop_sequences`, `top_p`,
  `top_k` (version 3 of the preset counted `temperature` here too).

`key_view_v4` is what the `claude-code` preset (version 4) keys on: the conversation, the user's choices and the
request's purpose (`key_view`, version 3's, also counts `temperature`). The purpose tells apart requests of one
session that share a conversation, using only what stayed stable across every release seen: whether the request
offers tools (the main loop and subagents do; side requests such as title or topic detection and summaries do
not), whether it asks for structured output and which fields (title generation asks for `title`), and for an
unstructured side request its own short system prompt. `harness` and `drift` say what changed in the harness
between a recording and a request, for the drift line and `claude-vcr harness-diff`. Pure functions.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.S)
RESULT_HARNESS = re.compile(r"<usage>.*?</usage>|agentId: [0-9a-f]+[^\n]*", re.S)
"""What Claude Code appends to an Agent tool's result: the subagent's random id and its token/timing usage."""
BILLING = "x-anthropic-billing-header:"
CHOICES = ("model", "tool_choice", "stop_sequences", "temperature", "top_p", "top_k")
"""Top-level fields the user chooses (by flags, or through the SDK) that change what is asked."""
SETTINGS = ("max_tokens", "thinking", "output_config", "context_management", "temperature")
"""Top-level fields Claude Code sets for itself and changes from release to release."""
SET_BY_CLAUDE_CODE = ("temperature",)
"""Fields version 3 counted as the user's choice that Claude Code sets for itself (2.1.197 sends `temperature: 1`
with a subagent's requests, later releases none; neither Claude Code nor the Agent SDK lets a user set it):
version 4 leaves them out of the key."""
_LEFT_OUT_BLOCKS = frozenset({"thinking", "redacted_thinking"})
_LEFT_OUT_FIELDS = frozenset({"id", "tool_use_id", "cache_control", "citations"})
_VERSION = re.compile(r"(\d+\.\d+\.\d+)")
_USER_AGENT = re.compile(r"claude-cli/(\d+\.\d+\.\d+)")
_CC_VERSION = re.compile(r"cc_version=(\d+\.\d+\.\d+)")


def is_claude_code(body: Any) -> bool:
    """Whether a parsed body looks like Claude Code's (its billing header, or a Claude Code system prompt)."""
    if not isinstance(body, dict):
        return False
    return any(
        BILLING in text or "Claude Code" in text or "Claude Agent SDK" in text for text in _system_texts(body)
    )


def _system_texts(body: dict[str, Any]) -> list[str]:
    system = body.get("system")
    if isinstance(system, str):
        return [system]
    if isinstance(system, list):
        return [str(b.get("text", "")) for b in system if isinstance(b, dict)]
    return []


def cut_reminders(text: str) -> str:
    """Text without Claude Code's `<system-reminder>` spans, trimmed."""
    return REMINDER.sub("", text).strip() if "<system-reminder>" in text else text.strip()


TASK_NOTIFICATION = "<task-notification>"
"""Claude Code's user turn when a background subagent reports (random task id, output file, usage): harness."""
_NOTIFICATION_SUMMARY = re.compile(r"<summary>(.*?)</summary>", re.S)


def shown_text(text: str) -> str:
    """A user text block as a person should see it in an excerpt: reminders cut, and a background task's
    notification as `[task-notification] <its summary>` instead of Claude Code's preamble."""
    if TASK_NOTIFICATION not in text:
        return cut_reminders(text)
    found = _NOTIFICATION_SUMMARY.search(text)
    return f"[task-notification] {found.group(1).strip() if found else ''}".strip()


HARNESS_TOOLS = frozenset({"Agent", "Task"})
"""Tools whose result is Claude Code's own text (a subagent's launch notice, its id, output file and usage; the
subagent's own turns are keyed as its requests): their results count by `is_error` alone."""


def conversation_block(block: Any, harness_ids: frozenset[str] = frozenset()) -> Any | None:
    """A content block as the conversation sees it; None for a harness-only block (also `--match conversation`'s
    view of a block)."""
    if isinstance(block, str):
        text = cut_reminders(block)
        return {"type": "text", "text": text} if text else None
    if not isinstance(block, dict):
        return block
    kind = block.get("type")
    if kind in _LEFT_OUT_BLOCKS:
        return None
    if kind == "text":
        text = cut_reminders(str(block.get("text", "")))
        return {"type": "text", "text": text} if text else None
    if kind == "tool_use":
        return {"type": "tool_use", "name": block.get("name"), "input": block.get("input")}
    if kind == "tool_result" and block.get("tool_use_id") in harness_ids:
        return {"type": "tool_result", "content": [], "is_error": bool(block.get("is_error", False))}
    if kind == "tool_result":
        content = block.get("content")
        parts = [content] if isinstance(content, str) else content if isinstance(content, list) else []
        parts = [RESULT_HARNESS.sub("", p) if isinstance(p, str) else p for p in parts]
        parts = [
            {**p, "text": RESULT_HARNESS.sub("", p["text"])}
            if isinstance(p, dict) and isinstance(p.get("text"), str)
            else p
            for p in parts
        ]
        return {
            "type": "tool_result",
            "content": [b for b in (conversation_block(p) for p in parts) if b is not None],
            "is_error": bool(block.get("is_error", False)),
        }
    return {k: v for k, v in block.items() if k not in _LEFT_OUT_FIELDS}


def conversation(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The turns, in order, without the harness: `system`-role messages dropped, reminders cut, consecutive
    turns of one role joined as the API joins them, ids and cache markers left out."""
    turns: list[dict[str, Any]] = []
    harness_ids: set[str] = set()
    for message in body.get("messages") or []:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            continue
        content = message.get("content")
        blocks = [content] if isinstance(content, str) else content if isinstance(content, list) else []
        for block in blocks:
            if (
                isinstance(block, dict)
                and block.get("type") == "tool_use"
                and block.get("name") in HARNESS_TOOLS
            ):
                harness_ids.add(str(block.get("id")))
        kept = [b for b in (conversation_block(block, frozenset(harness_ids)) for block in blocks) if b is not None]
        role = message["role"]
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(kept)
        elif kept or role == "assistant":
            turns.append({"role": role, "content": kept})
    return turns


def purpose(body: dict[str, Any]) -> dict[str, Any]:
    """What a request is for, from what stays stable across releases: tools offered or not, structured output
    asked or not and the fields it asks for (a title, a topic), and an unstructured side request's own system
    prompt (without the billing header and reminders)."""
    tools = body.get("tools")
    output = body.get("output_config")
    found: dict[str, Any] = {
        "tools": bool(tools),
        "structured": isinstance(output, dict) and "format" in output,
    }
    if not tools and found["structured"]:
        schema = output["format"].get("schema") if isinstance(output["format"], dict) else None
        properties = schema.get("properties") if isinstance(schema, dict) else None
        found["answers"] = sorted(properties) if isinstance(properties, dict) else None
    elif not tools:
        found["system"] = [cut_reminders(t) for t in _system_texts(body) if not t.startswith(BILLING)]
    return found


def key_view(body: Any) -> Any:
    """What the `claude-code` preset (version 3) keys on: the conversation, the user's choices and the purpose.
    A body that is not a Messages request is returned as it is."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return body
    view: dict[str, Any] = {name: body[name] for name in CHOICES if name in body}
    view["purpose"] = purpose(body)
    view["messages"] = conversation(body)
    return view


def key_view_v4(body: Any) -> Any:
    """What the `claude-code` preset (version 4) keys on: version 3's view without what Claude Code sets for
    itself (`SET_BY_CLAUDE_CODE`)."""
    view = key_view(body)
    if view is body:
        return body
    return {name: value for name, value in view.items() if name not in SET_BY_CLAUDE_CODE}


def typed_prompt(body: Any) -> str | None:
    """The text the user typed in the last user turn (reminders, task notifications and `system`-role messages
    left out); None when that turn holds no typed text (a tool result, a notification) or the body is not a
    Messages request."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return None
    for message in reversed(body["messages"]):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            blocks = [content] if isinstance(content, str) else content if isinstance(content, list) else []
            texts = [
                b["text"]
                for b in (conversation_block(x) for x in blocks)
                if isinstance(b, dict) and b.get("type") == "text" and TASK_NOTIFICATION not in b["text"]
            ]
            return " ".join(texts) or None
    return None


# --- the harness and its drift ------------------------------------------------------------------------------


def version(headers: dict[str, str] | None, body: Any) -> str | None:
    """Claude Code's version: `claude-cli/X` in the user-agent, else the billing header's `cc_version`."""
    for name, value in (headers or {}).items():
        if name.lower() == "user-agent" and (found := _USER_AGENT.search(value)):
            return found.group(1)
    if isinstance(body, dict):
        for text in _system_texts(body):
            if text.startswith(BILLING) and (found := _CC_VERSION.search(text)):
                return found.group(1)
    return None


@dataclass(frozen=True)
class Harness:
    """Claude Code's own part of one request."""

    version: str | None
    system: tuple[str, ...]
    """The system prompt's lines (billing header left out: it changes with every build)."""
    messages: tuple[str, ...]
    """Lines of the `system`-role messages and `<system-reminder>` spans in `messages`."""
    tools: dict[str, str] = field(default_factory=dict)
    """Tool name -> digest of its definition."""
    settings: dict[str, Any] = field(default_factory=dict)


def _message_harness_lines(body: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        blocks = [content] if isinstance(content, str) else content if isinstance(content, list) else []
        for block in blocks:
            text = block if isinstance(block, str) else block.get("text") if isinstance(block, dict) else None
            if not isinstance(text, str):
                continue
            if message.get("role") == "system":
                lines += text.splitlines()
            else:
                for span in REMINDER.findall(text):
                    lines += span.splitlines()
    return lines


def harness(body: Any, headers: dict[str, str] | None = None) -> Harness | None:
    """The harness of a Claude Code request; None for a body that is not a Messages request."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return None
    system: list[str] = []
    for text in _system_texts(body):
        if not text.startswith(BILLING):
            system += text.splitlines()
    tools = {}
    for tool in body.get("tools") or []:
        if isinstance(tool, dict):
            digest = hashlib.sha256(json.dumps(tool, sort_keys=True, default=str).encode()).hexdigest()[:12]
            tools[str(tool.get("name"))] = digest
    settings = {name: body[name] for name in SETTINGS if name in body}
    return Harness(
        version(headers, body), tuple(system), tuple(_message_harness_lines(body)), tools, settings
    )


def _changed_lines(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """How many lines differ between two texts (added plus removed, a changed line counted once)."""
    changed = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag != "equal":
            changed += max(i2 - i1, j2 - j1)
    return changed


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        found: dict[str, Any] = {}
        for key, child in value.items():
            found.update(_leaves(child, f"{prefix}.{key}" if prefix else str(key)))
        return found
    return {prefix: value}


@dataclass(frozen=True)
class Drift:
    """How a request's harness differs from its recording's."""

    recorded_version: str | None
    current_version: str | None
    system_lines: int = 0
    message_lines: int = 0
    tools_added: tuple[str, ...] = ()
    tools_removed: tuple[str, ...] = ()
    tools_changed: tuple[str, ...] = ()
    settings: tuple[str, ...] = ()
    """Dotted names of settings that differ (`thinking.display`, `max_tokens`)."""

    @property
    def any(self) -> bool:
        return bool(
            self.system_lines
            or self.message_lines
            or self.tools_added
            or self.tools_removed
            or self.tools_changed
            or self.settings
            or self.recorded_version != self.current_version
        )

    def summary(self) -> str:
        """One line: `claude-code 2.1.332 -> 2.1.337: system prompt 3 lines, tools +CronCreate -Edit`."""
        parts = []
        if self.system_lines:
            parts.append(f"system prompt {self.system_lines} line{'s' * (self.system_lines != 1)}")
        if self.message_lines:
            parts.append(f"reminders/environment {self.message_lines} line{'s' * (self.message_lines != 1)}")
        tools = [f"+{n}" for n in self.tools_added] + [f"-{n}" for n in self.tools_removed]
        if self.tools_changed:
            tools.append(f"~{len(self.tools_changed)} definition{'s' * (len(self.tools_changed) != 1)}")
        if tools:
            parts.append("tools " + " ".join(tools))
        if self.settings:
            parts.append(", ".join(self.settings))
        versions = f"{self.recorded_version or '?'} -> {self.current_version or '?'}"
        return f"claude-code {versions}: {', '.join(parts) or 'same harness'}"


def drift(recorded: Harness, current: Harness) -> Drift:
    """What changed in the harness from a recording to a request."""
    old_settings, new_settings = _leaves(recorded.settings), _leaves(current.settings)
    settings = tuple(
        sorted(n for n in set(old_settings) | set(new_settings) if old_settings.get(n) != new_settings.get(n))
    )
    return Drift(
        recorded.version,
        current.version,
        _changed_lines(recorded.system, current.system),
        _changed_lines(recorded.messages, current.messages),
        tuple(sorted(set(current.tools) - set(recorded.tools))),
        tuple(sorted(set(recorded.tools) - set(current.tools))),
        tuple(
            sorted(
                n for n in set(recorded.tools) & set(current.tools) if recorded.tools[n] != current.tools[n]
            )
        ),
        settings,
    )


def harness_diff(recorded: Harness, current: Harness) -> list[str]:
    """The full difference, line by line: the summary, then a unified diff of the system prompt and of the
    reminders/environment, the tool set and each differing setting."""
    lines = [drift(recorded, current).summary()]
    for title, a, b in (
        ("system prompt", recorded.system, current.system),
        ("reminders and environment", recorded.messages, current.messages),
    ):
        diff = list(difflib.unified_diff(a, b, f"recorded {title}", f"current {title}", lineterm="", n=1))
        lines += diff
    added = sorted(set(current.tools) - set(recorded.tools))
    removed = sorted(set(recorded.tools) - set(current.tools))
    changed = sorted(
        n for n in set(recorded.tools) & set(current.tools) if recorded.tools[n] != current.tools[n]
    )
    for label, names in (
        ("tools added", added),
        ("tools removed", removed),
        ("tool definitions changed", changed),
    ):
        if names:
            lines.append(f"{label}: {', '.join(names)}")
    old_settings, new_settings = _leaves(recorded.settings), _leaves(current.settings)
    for name in sorted(set(old_settings) | set(new_settings)):
        if old_settings.get(name) != new_settings.get(name):
            lines.append(
                f"{name}: {json.dumps(old_settings.get(name))} -> {json.dumps(new_settings.get(name))}"
            )
    return lines


def drift_line(recorded_headers: Any, recorded_body: bytes, headers: Any, body: bytes) -> str | None:
    """The drift line for a replay of a Claude Code recording whose harness differs from the request's; None
    when either is not a Claude Code request or nothing in the harness changed."""
    try:
        recorded_json, current_json = json.loads(recorded_body), json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return drift_summary(recorded_json, current_json, recorded_headers, headers)


def drift_summary(recorded: Any, current: Any, recorded_headers: Any = None, headers: Any = None) -> str | None:
    """`drift_line` for parsed bodies (miss diagnosis has them already)."""
    if not (is_claude_code(recorded) and is_claude_code(current)):
        return None
    old, new = harness(recorded, _as_dict(recorded_headers)), harness(current, _as_dict(headers))
    if old is None or new is None:
        return None
    found = drift(old, new)
    return found.summary() if found.any else None


def _as_dict(headers: Any) -> dict[str, str]:
    """Headers as a recording keeps them (pairs, or a mapping) as a plain dict."""
    if headers is None:
        return {}
    items = headers.items() if hasattr(headers, "items") else headers
    return {str(k): str(v) for k, v in items}


def compare(recorded_headers: Any, recorded_body: bytes, headers: Any, body: bytes) -> list[str]:
    """`harness-diff`: the full difference between two Claude Code requests' harnesses, summary line first.
    Raises ValueError for a body that is not a Messages request."""
    found = []
    for which, raw, heads in (("recorded", recorded_body, recorded_headers), ("current", body, headers)):
        try:
            parsed = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise ValueError(f"the {which} request's body is not JSON") from error
        result = harness(parsed, _as_dict(heads))
        if result is None:
            raise ValueError(f"the {which} request is not a Messages request")
        found.append(result)
    return harness_diff(found[0], found[1])
