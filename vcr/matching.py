"""Turn a request into the key its recording is stored under, and explain misses: pure functions, no I/O.

A key is the sha256 of the method, path, sorted query and the *normalised* body. Normalisation follows
`Rules`: JSON paths left out, regular expressions replaced by placeholders in every string value, and
presets (such as `claude-code`) that do both for a known client; credential-shaped strings key as their
`secrets` placeholders, and credential query parameters as `REDACTED`, so a redacted cassette still
matches the original request. Normalisation only changes the key: the
stored and forwarded request bytes stay exact.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode

from . import claude_code, providers, regex_deadline
from .errors import BadRequestBody, RulesError
from .excerpts import differences, marked, quote
from .secrets import redact_bytes, redact_path, redact_query, redact_string

KEY_SCHEME = "v2"
"""Stored with every recording and cassette, so keys can be recomputed when the scheme changes.
v1: canonical JSON without `metadata`, `stream` included. v2: `Rules` applied, `stream` left out."""

SHORT_KEY_LENGTH = 12
MAX_JSON_DEPTH = 128
"""Deepest JSON nesting of a request body the proxy keys (real requests stay under 20); deeper is refused,
because normalising, fingerprinting and describing walk the body recursively."""
ALWAYS_IGNORED = ("stream", "anthropic_version", "anthropic_beta")
"""Streamed and non-streamed requests share recordings; the proxy converts between the two forms. Bedrock
and Vertex carry the API version and betas in the body: left out like the `anthropic-version` and
`anthropic-beta` headers (which no key includes), so a client release that bumps them still replays."""


# --- JSON paths ---------------------------------------------------------------------------------------

_SEGMENT = re.compile(r"\*\*|\*|\[\*\]|\[\d+\]|[^.\[\]]+")


def parse_path(path: str) -> tuple[str, ...]:
    """`messages[*].content[0].cache_control` -> ('messages', '[*]', 'content', '[0]', 'cache_control')."""
    segments = tuple(_SEGMENT.findall(path))
    if not path or "".join(segments) != path.replace(".", ""):
        raise RulesError(
            f"invalid JSON path {path!r}: use dotted keys, [N] or [*] for list items, * for any key, ** for any depth"
        )
    return segments


def _remove(value: Any, segments: tuple[str, ...]) -> None:
    """Delete what the path points at, in place."""
    if not segments:
        return
    head, rest = segments[0], segments[1:]
    if head == "**":
        _remove(value, rest)
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        for child in children:
            _remove(child, segments)
        return
    if isinstance(value, dict):
        keys = list(value) if head == "*" else [head] if head in value else []
        for key in keys:
            if rest:
                _remove(value[key], rest)
            else:
                del value[key]
    elif isinstance(value, list) and head.startswith("["):
        indexes = range(len(value)) if head == "[*]" else [int(head[1:-1])]
        for index in reversed([i for i in indexes if 0 <= i < len(value)]):
            if rest:
                _remove(value[index], rest)
            else:
                del value[index]


def _map_strings(value: Any, func: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return func(value)
    if isinstance(value, dict):
        return {k: _map_strings(v, func) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, func) for v in value]
    return value


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for child in value.values():
            yield from _strings(child)
    elif isinstance(value, list):
        for child in value:
            yield from _strings(child)


# --- rules and presets ----------------------------------------------------------------------------------


_REPEATS = {"MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"}


def nested_repeat(pattern: str) -> bool:
    """Whether a regex has a repeat inside a repeat (star height over one), the shape of catastrophic
    backtracking (`(\\w+\\s?)*$`): rules from a db are data, and Python's `re` has no time limit, so such
    patterns are refused when rules are loaded rather than run."""
    try:
        import re._parser as parser  # type: ignore[import-not-found]  # Python 3.11+
    except ImportError:  # pragma: no cover - Python 3.10
        import sre_parse as parser  # type: ignore[no-redef]

    def walk(items: object, inside: bool) -> bool:
        for op, value in items:  # type: ignore[attr-defined]
            name = str(op)
            if name in _REPEATS:
                low, high, sub = value
                repeats = high != low  # `a{3}` is no repetition of choice
                if repeats and inside:
                    return True
                if walk(sub, inside or repeats):
                    return True
            elif name == "SUBPATTERN":
                if walk(value[-1], inside):
                    return True
            elif name == "BRANCH":
                if any(walk(branch, inside) for branch in value[1]):
                    return True
            elif name in {"ASSERT", "ASSERT_NOT"}:
                if walk(value[1], inside):
                    return True
            elif name == "GROUPREF_EXISTS":
                if any(walk(branch, inside) for branch in value[1:] if branch is not None):
                    return True
            elif name == "ATOMIC_GROUP":
                continue  # no backtracking into it
        return False

    return walk(parser.parse(pattern), False)


@dataclass(frozen=True)
class Replacement:
    """Text matching `pattern` in any string value becomes `placeholder` (before the key is computed)."""

    pattern: str
    placeholder: str

    def compiled(self) -> re.Pattern[str]:
        try:
            compiled = re.compile(self.pattern)
        except re.error as error:
            raise RulesError(f"invalid regular expression {self.pattern!r}: {error}") from error
        if nested_repeat(self.pattern):
            raise RulesError(
                f"regular expression {self.pattern!r} repeats a repetition (like `(a+)*`), which can take "
                "exponential time on a crafted request: write it without the nested repeat"
            )
        return compiled


@dataclass(frozen=True)
class Rules:
    """What is left out of, or blurred in, a request before its key is computed."""

    ignore: tuple[str, ...] = ("metadata",)
    replace: tuple[Replacement, ...] = ()
    presets: tuple[str, ...] = ()
    versions: tuple[tuple[str, int], ...] = ()
    """Which version of each preset: a preset that learns to leave out more gets a new version, and a cassette
    keeps the version it was recorded with (its keys stay valid) until `rekey` moves it on. Presets not named
    here get their latest version."""

    def __post_init__(self) -> None:
        for path in self.ignore:
            parse_path(path)
        for replacement in self.replace:
            replacement.compiled()
        unknown = [name for name in self.presets if name not in PRESETS]
        if unknown:
            raise RulesError(f"unknown preset {', '.join(unknown)}; known: {', '.join(sorted(PRESETS))}")
        chosen = dict(self.versions)
        versions = tuple((name, chosen.get(name, max(PRESETS[name]))) for name in self.presets)
        for name, version in versions:
            if version not in PRESETS[name]:
                raise RulesError(f"preset {name} has no version {version}; known: {sorted(PRESETS[name])}")
        object.__setattr__(self, "versions", versions)

    def to_json(self) -> str:
        """The form stored with a cassette: replay uses the rules it was recorded with."""
        return json.dumps(
            {
                "ignore": list(self.ignore),
                "replace": [{"pattern": r.pattern, "with": r.placeholder} for r in self.replace],
                "presets": list(self.presets),
                "versions": dict(self.versions),
            },
            sort_keys=True,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rules:
        if not isinstance(data, dict):
            raise RulesError("rules must be a table/object with 'ignore', 'replace' and 'presets'")
        unknown = set(data) - {"ignore", "replace", "presets", "preset", "versions"}
        if unknown:
            raise RulesError(f"unknown rules field(s): {', '.join(sorted(unknown))}")
        presets = data.get("presets", [])
        if "preset" in data:
            presets = [data["preset"], *presets]
        try:
            replace = tuple(Replacement(str(r["pattern"]), str(r["with"])) for r in data.get("replace", []))
        except (KeyError, TypeError) as error:
            raise RulesError("each 'replace' entry needs 'pattern' and 'with'") from error
        versions = data.get("versions", {})
        if not isinstance(versions, dict) or not all(isinstance(v, int) for v in versions.values()):
            raise RulesError("'versions' must map preset names to version numbers")
        return cls(
            ignore=tuple(str(p) for p in data.get("ignore", ["metadata"])),
            replace=replace,
            presets=tuple(str(p) for p in presets),
            versions=tuple((str(k), v) for k, v in versions.items()),
        )

    @classmethod
    def from_json(cls, text: str | None) -> Rules:
        """Rules as stored with a cassette; rules stored before presets had versions mean version 1."""
        if not text:
            return cls()
        data = json.loads(text)
        if isinstance(data, dict) and "versions" not in data:
            named = [data["preset"]] if "preset" in data else []
            data = {**data, "versions": {str(name): 1 for name in [*named, *data.get("presets", [])]}}
        return cls.from_dict(data)

    def with_presets(self, *names: str) -> Rules:
        merged = tuple(dict.fromkeys(self.presets + names))
        return Rules(ignore=self.ignore, replace=self.replace, presets=merged, versions=self.versions)


def load_rules(path: str | Path) -> Rules:
    """Read a rules file: TOML (`.toml`) or JSON."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise RulesError(f"cannot read rules file {path}: {error.strerror or error}") from error
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError as error:  # Python 3.10
                raise RulesError("TOML rules files need Python 3.11+; write the rules as JSON") from error
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ValueError as error:
        raise RulesError(
            f"{path} is not valid {path.suffix.lstrip('.').upper() or 'JSON'}: {error}"
        ) from error
    return Rules.from_dict(data)


def _claude_code(body: Any) -> tuple[tuple[str, ...], list[tuple[re.Pattern[str], str]]]:
    """Claude Code's per-machine and per-day text: working directory, HOME, date, version, environment."""
    replacements: list[tuple[re.Pattern[str], str]] = []
    cwd = home = None
    for text in _strings(body):
        if cwd is None and (found := re.search(r"Primary working directory: (\S+)", text)):
            cwd = found.group(1)
        if home is None and (found := re.search(r"(/[^\s`'\"]*?)/\.claude/", text)):
            home = found.group(1)
        if cwd and home:
            break
    if cwd:
        replacements.append((re.compile(re.escape(cwd)), "<CWD>"))
        replacements.append((re.compile(re.escape(re.sub(r"[^A-Za-z0-9]", "-", cwd))), "<CWD_SLUG>"))
    if home:
        replacements.append((re.compile(re.escape(home) + r"(?=/|\b|$)"), "<HOME>"))
    replacements += [
        (re.compile(r"Today's date is \d{4}-\d{2}-\d{2}"), "Today's date is <DATE>"),
        (re.compile(r"cc_version=[^;\s]+"), "cc_version=<CC_VERSION>"),
        (re.compile(r"Is a git repository: \w+"), "Is a git repository: <GIT>"),
        (re.compile(r"OS Version: [^\n]*"), "OS Version: <OS>"),
        (re.compile(r"gitStatus: .*?(?=\n\n[^\s-]|\Z)", re.S), "gitStatus: <GIT_STATUS>"),
    ]
    return ("metadata", "**.cache_control"), replacements


def _claude_code_across_releases(body: Any) -> tuple[tuple[str, ...], list[tuple[re.Pattern[str], str]]]:
    """Version 2: also what Claude Code rewrites from release to release without changing the answer to the
    conversation: its tools' descriptions and input schemas (their names, and so the tool set, still count)."""
    paths, replacements = _claude_code(body)
    return (*paths, "tools[*].description", "tools[*].input_schema"), replacements


def _claude_code_conversation(body: Any) -> tuple[tuple[str, ...], list[tuple[re.Pattern[str], str]]]:
    """Versions 3 and 4: the key is the conversation, the user's choices and the request's purpose
    (`claude_code.key_view`, `key_view_v4`); the per-machine text blurred as before (tool results can quote the
    directory)."""
    return _claude_code(body)


Preset = Callable[[Any], tuple[tuple[str, ...], list[tuple[re.Pattern[str], str]]]]
PRESETS: dict[str, dict[int, Preset]] = {
    "claude-code": {
        1: _claude_code,
        2: _claude_code_across_releases,
        3: _claude_code_conversation,
        4: _claude_code_conversation,
    },
}
"""A preset looks at the request and says which paths to leave out and which text to blur; by version."""
PROJECTIONS: dict[tuple[str, int], Callable[[Any], Any]] = {
    ("claude-code", 3): claude_code.key_view,
    ("claude-code", 4): claude_code.key_view_v4,
}
"""Preset versions that key on a view of the request rather than the whole of it (applied before the rest)."""


def normalise(body: Any, rules: Rules) -> Any:
    """The request as its key sees it; the original is not changed."""
    if not isinstance(body, (dict, list)):
        return body
    value = body
    for chosen in rules.versions:
        if (project := PROJECTIONS.get(chosen)) is not None:
            value = project(value)
    value = copy.deepcopy(value)
    ignore = list(rules.ignore) + list(ALWAYS_IGNORED)
    replacements = [(r.compiled(), r.placeholder) for r in rules.replace]
    for name, version in rules.versions:
        paths, found = PRESETS[name][version](body)
        ignore += paths
        replacements += found
    for path in dict.fromkeys(ignore):
        _remove(value, parse_path(path))

    def blur(text: str) -> str:
        text = redact_string(text)  # a secret keys as its placeholder, so redacted cassettes still match
        for pattern, placeholder in replacements:
            text = pattern.sub(placeholder, text)
        return text

    if not rules.replace:
        return _map_strings(value, blur)
    try:  # the cassette's own patterns may come from whoever wrote the db
        with regex_deadline.bounded():
            return _map_strings(value, blur)
    except regex_deadline.RegexTimeout:
        patterns = ", ".join(repr(r.pattern) for r in rules.replace)
        raise RulesError(
            f"applying the cassette's regular expressions ({patterns}) to a request took over "
            f"{regex_deadline.SECONDS:g} s, so it was stopped: a pattern that backtracks catastrophically on this "
            "text? Give the cassette rules of your own with `claude-vcr rekey --rules FILE`."
        ) from None


# --- keys -----------------------------------------------------------------------------------------------


def _canonical_value(value: Any) -> Any:
    """Integral floats become ints, so `1.0` and `1` make the same key."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _canonical_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical_value(v) for v in value]
    return value


def canonical_json(value: Any) -> bytes:
    """One byte form per JSON value: sorted keys, no whitespace, UTF-8."""
    return json.dumps(
        _canonical_value(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


def parse_json_body(body: bytes) -> Any | None:
    """The parsed body, or None when it is empty or not JSON: such bodies are keyed by their bytes. So is
    JSON with a lone surrogate escape (`"\\ud800"`, which Node writes for a broken emoji): no UTF-8 form
    exists for it, so it is forwarded and stored unchanged. Nesting past MAX_JSON_DEPTH is refused."""
    stripped = body.lstrip()
    if not stripped or stripped[:1] not in (b"{", b"["):
        return None
    try:
        parsed = json.loads(body)
    except RecursionError:
        parsed = _TOO_DEEP
    except (ValueError, UnicodeDecodeError):
        return None
    if parsed is _TOO_DEEP or (
        body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and _deeper_than(parsed, MAX_JSON_DEPTH)
    ):
        raise BadRequestBody(f"the request body's JSON is nested deeper than {MAX_JSON_DEPTH} levels")
    if (b"\\ud" in body or b"\\uD" in body) and _has_lone_surrogate(parsed):
        return None
    return parsed


_TOO_DEEP: Any = object()


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether containers nest more than `limit` levels, found level by level (no recursion)."""
    level = [value]
    for _ in range(limit):
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, (dict, list))
        ]
        if not level:
            return False
    return True


def _has_lone_surrogate(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def canonical_query(query: str) -> str:
    """Query parameters in a stable order, so `?a=1&b=2` and `?b=2&a=1` match."""
    return urlencode(sorted(parse_qsl(query, keep_blank_values=True)))


_UNSET: Any = object()


class KeyedRequest:
    """A request's key; its parsed and normalised JSON (None for other bodies), model and fingerprints are worked
    out once, only when asked for (on a miss, or when recording), so a replay hit found by its raw bytes never
    parses JSON."""

    def __init__(
        self,
        key: str,
        body: bytes = b"",
        rules: Rules | None = None,
        *,
        parsed: Any = _UNSET,
        normalised: Any = _UNSET,
        wants_stream: bool | None = None,
        path: str = "",
        model: Any = _UNSET,
        fingerprints: Any = _UNSET,
    ) -> None:
        self.key = key
        self._body = body
        self._path = path
        self._rules = rules or Rules()
        for name, value in (
            ("parsed", parsed),
            ("normalised", normalised),
            ("model", model),
            ("fingerprints", fingerprints),
        ):
            if value is not _UNSET:
                self.__dict__[name] = value
        if wants_stream is not None:
            self.__dict__["wants_stream"] = wants_stream

    @classmethod
    def from_facts(cls, facts: KeyFacts, body: bytes, rules: Rules, path: str) -> KeyedRequest:
        """A request keyed elsewhere (another process): its facts given, its JSON parsed again only if asked."""
        return cls(
            facts.key,
            body,
            rules,
            wants_stream=facts.wants_stream,
            path=path,
            model=facts.model,
            fingerprints=facts.fingerprints,
        )

    def facts(self) -> KeyFacts:
        """What recording needs of a keyed request, small enough to send from another process."""
        return KeyFacts(self.key, self.wants_stream, self.model, self.fingerprints)

    @property
    def body(self) -> bytes:
        """The request's bytes as received (what another process is sent to work on them)."""
        return self._body

    @cached_property
    def parsed(self) -> Any:
        return parse_json_body(self._body)

    @cached_property
    def normalised(self) -> Any:
        return None if self.parsed is None else normalise(self.parsed, self._rules)

    @cached_property
    def wants_stream(self) -> bool:
        """Whether the request asked for a stream (`stream: true`, or Bedrock's and Vertex's streaming paths):
        decides stream/JSON conversion on replay."""
        by_path = providers.wants_stream_from_path(self._path)
        if by_path is not None:
            return by_path
        return isinstance(self.parsed, dict) and self.parsed.get("stream") is True

    @cached_property
    def model(self) -> str | None:
        """The Messages-style `model`, or the model id a Bedrock or Vertex path names, for the metadata columns."""
        model = self.parsed.get("model") if isinstance(self.parsed, dict) else None
        return model if isinstance(model, str) else providers.model_in_path(self._path)

    @cached_property
    def fingerprints(self) -> dict[str, str]:
        return {} if self.normalised is None else fingerprint(self.normalised)


class KeyFacts(NamedTuple):
    """A keyed request's key and what a recording stores beside it (`KeyedRequest.facts`)."""

    key: str
    wants_stream: bool
    model: str | None
    fingerprints: dict[str, str]


def key_facts(method: str, path: str, query: str, body: bytes, rules: Rules) -> KeyFacts:
    """`key_request`'s facts without the parsed body: what a child process keying a large body sends back."""
    return key_request(method, path, query, body, rules).facts()


def key_request(method: str, path: str, query: str, body: bytes, rules: Rules | None = None) -> KeyedRequest:
    """Key a request under `rules` (default: leave out `metadata`)."""
    rules = rules or Rules()
    digest = hashlib.sha256()
    keyed_path = redact_path(providers.key_path(path))
    digest.update(f"{KEY_SCHEME}\n{method.upper()}\n{keyed_path}\n{canonical_query(redact_query(query))}\n".encode())
    parsed = parse_json_body(body)
    if parsed is None:
        digest.update(b"raw:" + redact_bytes(body)[0])
        return KeyedRequest(digest.hexdigest(), body, rules, parsed=None, normalised=None, path=path)
    normalised = normalise(parsed, rules)
    digest.update(b"json:" + canonical_json(normalised))
    return KeyedRequest(digest.hexdigest(), body, rules, parsed=parsed, normalised=normalised, path=path)


def raw_hash(method: str, target: str, body: bytes) -> str:
    """The exact bytes of a request (method, path with query, body): the fast path's index, which maps
    a request seen before straight to its key without parsing JSON."""
    digest = hashlib.sha256(f"{method.upper()}\n{target}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def request_key(method: str, path: str, query: str, body: bytes, rules: Rules | None = None) -> str:
    """The hex sha256 that identifies a request within a cassette."""
    return key_request(method, path, query, body, rules).key


def short_key(key: str, ordinal: int = 0) -> str:
    """How a key is shown: 12 hex digits, and `#N` for a repeat of the same request."""
    return key[:SHORT_KEY_LENGTH] + (f"#{ordinal}" if ordinal else "")


# --- miss diagnosis ---------------------------------------------------------------------------------------


def _digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()[:16]


def fingerprint(normalised: Any) -> dict[str, str]:
    """Short hashes of a request's parts (each message, system block, other field): stored with each
    recording, so finding the closest recording compares a few hashes instead of whole bodies."""
    if not isinstance(normalised, dict):
        return {"$": _digest(normalised)}
    parts: dict[str, str] = {}
    for name, value in normalised.items():
        if name in ("messages", "system") and isinstance(value, list):
            parts[f"{name}#"] = str(len(value))
            for index, item in enumerate(value):
                parts[f"{name}[{index}]"] = _digest(item)
        else:
            parts[name] = _digest(value)
    return parts


def similarity(a: dict[str, str], b: dict[str, str]) -> float:
    """Share of request parts two requests' fingerprints have in common (1.0 = the same parts)."""
    keys = set(a) | set(b)
    if not keys:
        return 1.0
    return sum(1 for k in keys if a.get(k) == b.get(k)) / len(keys)


def _size(value: Any) -> int:
    """Characters of a JSON value in its canonical form."""
    return len(canonical_json(value))


_SHORT_TEXT = 4096
"""Strings up to this length (both together) are compared character by character; longer ones by their common
start and end, which is linear and enough for the one edited passage a prompt usually has."""


def _unlike(a: Any, b: Any) -> int:
    """How many characters of two JSON values differ: for strings, those outside the longest matching runs."""
    if a == b:
        return 0
    if isinstance(a, dict) and isinstance(b, dict):
        return sum(
            _unlike(a[k], b[k]) if k in a and k in b else _size(k) + _size(a[k] if k in a else b[k])
            for k in set(a) | set(b)
        )
    if isinstance(a, list) and isinstance(b, list):
        paired = sum(_unlike(x, y) for x, y in zip(a, b, strict=False))
        return paired + sum(_size(rest) for rest in (a[len(b) :] or b[len(a) :]))
    if isinstance(a, str) and isinstance(b, str):
        if len(a) + len(b) <= _SHORT_TEXT:
            matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
            same = sum(block.size for block in matcher.get_matching_blocks())
        else:
            prefix = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            suffix = 0
            while suffix < min(len(a), len(b)) - prefix and a[-1 - suffix] == b[-1 - suffix]:
                suffix += 1
            same = prefix + suffix
        return len(a) + len(b) - 2 * same
    return _size(a) + _size(b)


def likeness(a: Any, b: Any) -> float:
    """How alike two (normalised) requests are, by size: the share of their characters that are the same, so one
    changed word in a long request is close to 100% and a different question is far from it."""
    total = _size(a) + _size(b)
    return 1.0 if total == 0 else max(0.0, 1 - _unlike(a, b) / total)


def json_differences(request: Any, recorded: Any, limit: int = 3) -> list[str]:
    """The first JSON paths where a request differs from a recorded one, each with a short excerpt of both."""
    found: list[str] = []
    for d in differences(request, recorded, limit):
        if d.only_in_a:
            found.append(f"{d.path}: only in the request")
        elif d.only_in_b:
            found.append(f"{d.path}: only in the recording")
        elif d.lengths:
            found.append(f"{d.path}: {len(d.a)} items in the request vs {len(d.b)} in the recording")
        elif d.at is not None:
            mine, theirs = marked(d.a, d.b)
            found.append(f"{d.path}: {mine} vs {theirs}")
        else:
            found.append(f"{d.path}: {quote(d.a)} vs {quote(d.b)}")
    return found
