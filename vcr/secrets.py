"""Credential-shaped strings: the detectors `scan` reports, and the stable placeholders `redact` puts in.

Detectors run over text as stored (a JSON body's raw text, an SSE stream's bytes as text), so a finding's
span can be replaced in place without reserialising anything else. A placeholder depends only on the secret
and its kind: the same secret becomes the same placeholder in every request and response, and an incoming
request is keyed on its redacted form (`matching.normalise`), so redacted cassettes keep replaying.
Stdlib only: `matching` imports it.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote

PLACEHOLDER_PREFIX = "REDACTED:"
"""Every placeholder starts so (`REDACTED:<kind>:<12 hex>`); detectors never match one."""
QUERY_PLACEHOLDER = "REDACTED"
"""A credential in a query parameter becomes this, whatever it was: a colleague's key replays the same."""

_SECRET_ENV_NAME = re.compile(
    r"(?:^|_)(?:API_?KEY|KEY|TOKEN|SECRET|SECRETS|PASSWORD|PASSWD|PWD|PASS|CREDENTIALS?|AUTH|PRIVATE_KEY|"
    r"ACCESS_KEY|SECRET_KEY|CLIENT_SECRET|DSN)(?:_|$)",
    re.IGNORECASE,
)

_PATTERNS: list[tuple[str, str]] = [
    # Each starts with a literal, so the regex engine skips ahead fast; what may precede a match is checked
    # in `_starts_token` instead of a look-behind (which would defeat that).
    ("anthropic-key", r"sk-ant-[A-Za-z0-9_-]{20,}"),
    ("openai-key", r"sk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,}"),
    ("aws-access-key", r"A(?:KIA|SIA|BIA|CCA)[0-9A-Z]{16}(?![A-Za-z0-9])"),
    ("github-token", r"g(?:h[pousr]_[A-Za-z0-9]{36,}|ithub_pat_[A-Za-z0-9_]{50,})"),
    ("gitlab-token", r"gl(?:pat|dt|ptt|rt)-[A-Za-z0-9_-]{20,}"),
    ("slack-token", r"xox[abposr]-[A-Za-z0-9-]{10,}"),
    ("slack-webhook", r"https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]{16,}"),
    ("google-api-key", r"AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])"),
    ("stripe-key", r"_(?:live|test)_[0-9A-Za-z]{20,}"),
    ("jwt", r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    (
        "private-key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----[\s\S]{16,20000}?"
        r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
    ),
    # NAME=value as in .env files and shells, found from its `=`; the name is read backwards from there.
    # Inside a JSON string a quoted value has escaped quotes.
    ("env-assignment", r"=[ \t]*(?:\\?[\"'])?(?P<value>(?!REDACTED)[A-Za-z0-9_\-./+=:@%~]{12,256})"),
]
_COMPILED = [(kind, re.compile(pattern)) for kind, pattern in _PATTERNS]
"""What `scan` detects."""
_NAME_BEFORE = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]{1,63})[ \t]*\Z")
_WORD = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def _starts_token(text: str, start: int) -> bool:
    """Nothing word-like right before `start` (a JSON string's `\n` or `\t` escape counts as a break)."""
    if start == 0 or text[start - 1] not in _WORD and text[start - 1] != "-":
        return True
    return start >= 2 and text[start - 2] == "\\" and text[start - 1] in "nrt"


@dataclass(frozen=True)
class Secret:
    """One credential-shaped string in a text: where it is, what it looks like, and the secret itself."""

    kind: str
    start: int
    end: int
    value: str
    name: str = ""
    """The variable of a `NAME=value` finding."""

    @property
    def preview(self) -> str:
        """A `NAME=value` shows its name, a key its kind's fixed prefix; never a character of the random part."""
        return f"{self.name}=…({len(self.value)} chars)" if self.name else mask(self.value)

    @property
    def placeholder(self) -> str:
        return placeholder(self.kind, self.value)


def _entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _random_looking(value: str) -> bool:
    """A value that looks generated (a key), not a word, a path, a version or a placeholder."""
    if value.startswith(PLACEHOLDER_PREFIX) or value.lower().startswith(("your", "xxx", "<", "changeme")):
        return False
    letters = sum(c.isalpha() for c in value)
    digits = sum(c.isdigit() for c in value)
    if letters < 4 or digits < 2 or "/" in value.strip("/") and value.count("/") > 1:
        return False
    return _entropy(value) >= min(3.2, math.log2(len(value)) * 0.8)


def find(text: str) -> Iterator[Secret]:
    """Every credential-shaped string in `text`, in order, overlaps dropped; the secret of a `NAME=value`
    is its value."""
    found: list[Secret] = []
    for kind, pattern in _COMPILED:
        for match in pattern.finditer(text):
            secret = _accepted(kind, match, text)
            if secret is not None:
                found.append(secret)
    found.sort(key=lambda s: (s.start, -s.end))
    end = -1
    for secret in found:
        if secret.start >= end:
            end = secret.end
            yield secret


def _accepted(kind: str, match: re.Match[str], text: str) -> Secret | None:
    if kind == "env-assignment":
        value = match.group("value")
        named = _NAME_BEFORE.search(text, max(0, match.start() - 64), match.start())
        if named is None or not _SECRET_ENV_NAME.search(named.group("name")) or not _random_looking(value):
            return None
        if not _starts_token(text, named.start()) and not (
            named.start() >= 2 and text[named.start() - 2] == "\\"
        ):
            return None
        name = named.group("name")
        if name[0] in "nrt" and named.start() >= 1 and text[named.start() - 1] == "\\":
            name = name[1:]  # the `n` of a JSON `\n` before the name
        return Secret(kind, match.start("value"), match.end("value"), value, name)
    start = match.start()
    if kind == "stripe-key":  # the anchor is `_live_`: the prefix sits before it
        if start < 2 or text[start - 2 : start] not in ("sk", "rk", "pk"):
            return None
        start -= 2
    if not _starts_token(text, start):
        return None
    value = text[start : match.end()]
    if kind == "openai-key" and not _random_looking(value[3:]):
        return None
    return Secret(kind, start, match.end(), value)


def placeholder(kind: str, value: str) -> str:
    """The stable stand-in for a secret: its kind and a short hash, never the secret."""
    digest = hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()
    return f"{PLACEHOLDER_PREFIX}{kind}:{digest[:12]}"


_FIXED_PREFIX = re.compile(
    r"^(?:sk-ant-|sk-(?:proj-|svcacct-|admin-)?|A(?:KIA|SIA|BIA|CCA)|gh[pousr]_|github_pat_|gl[a-z]+-|xox[a-z]-|"
    r"https://hooks\.slack\.com/services/|AIza|[srp]k_(?:live|test)_|eyJ|-----BEGIN [A-Z0-9 ]+-----)"
)


def mask(value: str) -> str:
    """What may be shown of a secret: its kind's fixed prefix, if it has one, and its length."""
    prefix = _FIXED_PREFIX.match(value)
    return f"{prefix.group(0) if prefix else ''}…({len(value)} chars)"


def redact(text: str) -> tuple[str, list[Secret]]:
    """`text` with every finding replaced by its placeholder, and the findings."""
    found = list(find(text))
    if not found:
        return text, []
    pieces, at = [], 0
    for secret in found:
        pieces += [text[at : secret.start], secret.placeholder]
        at = secret.end
    pieces.append(text[at:])
    return "".join(pieces), found


def redact_bytes(body: bytes) -> tuple[bytes, list[Secret]]:
    """A body redacted as text (bytes that are not UTF-8 are kept as they are)."""
    text = body.decode("utf-8", "surrogateescape")
    redacted, found = redact(text)
    return (redacted.encode("utf-8", "surrogateescape") if found else body), found


def redact_string(text: str) -> str:
    """`redact` for keying: the text only."""
    return redact(text)[0] if len(text) >= 12 else text


# --- names: headers and query parameters -----------------------------------------------------------------

CREDENTIAL_WORDS = (
    "auth",
    "key",
    "token",
    "secret",
    "session",
    "password",
    "passwd",
    "cookie",
    "credential",
    "signature",
    "subscription",
    "private",
)
"""A header or query parameter whose name contains one of these carries a credential (fail safe)."""
ALLOWED_HEADERS = ("anthropic-version", "anthropic-beta", "anthropic-ratelimit-", "content-", "x-stainless-")
"""Names kept although they contain a word above (`anthropic-ratelimit-tokens-remaining`); a prefix ends in `-`."""
_QUERY_WORDS = (*CREDENTIAL_WORDS, "sig", "code", "pwd")


def is_credential_header(name: str) -> bool:
    """By name: fail safe, with a short allow-list."""
    lowered = name.lower()
    if any(
        lowered == allowed or allowed.endswith("-") and lowered.startswith(allowed)
        for allowed in ALLOWED_HEADERS
    ):
        return False
    return any(word in lowered for word in CREDENTIAL_WORDS)


_CREDENTIAL_VALUE = re.compile(r"^\s*(?:Bearer|Basic|Token|Digest|AWS4-HMAC-SHA256)\s+\S", re.IGNORECASE)


def is_credential_value(value: str) -> bool:
    """A value shaped like a credential under any name: an HTTP auth scheme, or a detector's finding."""
    return bool(_CREDENTIAL_VALUE.match(value)) or any(True for _ in find(value))


def is_credential_parameter(name: str) -> bool:
    lowered = name.lower().replace("-", "_")
    return any(word in lowered for word in _QUERY_WORDS) or lowered in {"pw", "pass"}


def redact_query(query: str) -> str:
    """A raw query string with credential parameters' values replaced; unchanged when there are none."""
    if not query:
        return query
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(is_credential_parameter(name) or is_credential_value(value) for name, value in pairs):
        return query
    parts = []
    for piece in query.split("&"):
        raw_name, sep, raw_value = piece.partition("=")
        name_value = parse_qsl(piece, keep_blank_values=True)
        name, value = name_value[0] if name_value else (raw_name, raw_value)
        if sep and raw_value and (is_credential_parameter(name) or is_credential_value(value)):
            piece = f"{raw_name}={quote(QUERY_PLACEHOLDER)}"
        parts.append(piece)
    return "&".join(parts)


@functools.lru_cache(maxsize=1024)
def redact_target(target: str) -> str:
    """`path?query` with credentials in the query replaced (cached: a client repeats its few targets, and this
    runs on every request's log line)."""
    path, sep, query = target.partition("?")
    return f"{path}?{redact_query(query)}" if sep else target
