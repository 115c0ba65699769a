"""What `serve` can be told, declared once: each `ProxyConfig` field carries its flag, variable and help.

The CLI builds `serve`'s options from these declarations, the proxy and the adapters read the dataclass,
and the README's serve-options table lists the same flags, variables and defaults. The parsers here give a
value's syntax (`--pace`, `--model-map`, URLs) to the CLI and to library callers alike. Stdlib only, so
every command can import it without aiohttp.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import InvalidInput
from .matching import PRESETS, Rules, load_rules
from .names import validate_cassette_name
from .secrets import redact_url
from .storable import RECORD_ERRORS

MODES = ("auto", "record", "replay", "passthrough")
FALLBACKS = ("strict", "fallback")
EXHAUSTED = ("repeat", "miss")
MATCHES = ("exact", "conversation")
UPSTREAM_FORMATS = ("anthropic", "openai", "bedrock", "vertex", "foundry")
PRESET_NAMES = tuple(PRESETS)


def parse_pace(text: str) -> float | None:
    """`instant` -> None, `recorded` -> 1.0, `N` -> N (a speed factor above 0)."""
    if text == "instant":
        return None
    if text == "recorded":
        return 1.0
    try:
        factor = float(text)
    except ValueError:
        factor = 0.0
    if not factor > 0:
        raise InvalidInput(f"{text!r}: use instant, recorded or a speed factor above 0")
    return factor


def parse_model_mapping(text: str) -> tuple[str, str]:
    """`GLOB=MODEL` -> (glob on the client's model, upstream model)."""
    pattern, sep, model = text.partition("=")
    if not sep or not pattern or not model:
        raise InvalidInput(f"{text!r}: use GLOB=MODEL, e.g. 'claude-*=qwen/qwen3-coder'")
    return pattern, model


def http_url(text: str) -> str:
    """The URL itself when it is http:// or https://; anything else would fail on the first request."""
    if not text.startswith(("http://", "https://")):
        raise InvalidInput(f"{redact_url(text)!r} is not an http:// or https:// URL")
    return text


@dataclass(frozen=True)
class Flag:
    """How a person sets one `ProxyConfig` field: a command-line flag and, usually, an environment variable."""

    decl: str
    """`--mode`; `--record-errors/--no-record-errors` for an on/off pair."""
    help: str
    env: str | None = None
    choices: tuple[str, ...] = ()
    parse: Callable[[str], Any] | None = None
    """The value's syntax: text -> value, raising InvalidInput with a message for the person."""
    metavar: str | None = None
    multiple: bool = False
    path: str | None = None
    """`file`, `existing file` or `directory`: the value names a path of that kind."""
    bounds: tuple[float | None, float | None] = (None, None)
    shown_default: str | None = None
    """The default as typed on the command line, when the field's own default is a parsed value."""


def option(default: Any = None, *, factory: Callable[[], Any] | None = None, **flag: Any) -> Any:
    """A dataclass field that `serve` takes as a flag (see `Flag`)."""
    metadata = {"flag": Flag(**flag)}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class ProxyConfig:
    """Everything `serve` can be told; fields in the order `serve --help` lists them."""

    mode: str = option(
        "auto",
        decl="--mode",
        env="VCR_MODE",
        choices=MODES,
        help="record: forward and store; replay: answer from the cassette; auto: replay hits, record misses; "
        "passthrough: forward, store nothing (monitor mode, with --check).",
    )
    fallback: str = option(
        "strict",
        decl="--fallback",
        env="VCR_REPLAY_FALLBACK",
        choices=FALLBACKS,
        help="What a replay miss does: strict answers a 400 error at once; fallback forwards and records.",
    )
    cassette: str = option(
        "default",
        decl="--cassette",
        env="VCR_CASSETTE",
        parse=validate_cassette_name,
        metavar="NAME",
        help="Cassette for requests that name none (header X-VCR-Cassette or URL prefix /c/NAME/).",
    )
    db: Path = option(
        Path("vcr.db"),
        decl="--db",
        env="VCR_DB",
        path="file",
        help="The cassette database (one SQLite file, meant for git).",
    )
    upstream: str = option(
        "https://api.anthropic.com",
        decl="--upstream",
        env="VCR_UPSTREAM",
        parse=http_url,
        metavar="URL",
        help="Where recorded requests go.",
    )
    host: str = option(
        "127.0.0.1",
        decl="--host",
        env="VCR_HOST",
        help="Listening address. On loopback, requests whose Host is not a loopback name are refused "
        "(DNS rebinding); --allow-host adds names.",
    )
    allow_host: tuple[str, ...] = option(
        (),
        decl="--allow-host",
        env="VCR_ALLOW_HOST",
        multiple=True,
        metavar="NAME",
        help="Also answer requests whose Host is NAME (a container or machine name); the Host check then "
        "applies on any listening address. Default: loopback names only, when listening on loopback.",
    )
    port: int = option(
        8000,
        decl="--port",
        env="VCR_PORT",
        bounds=(0, 65535),
        help="0 picks a free port (the banner line says which).",
    )
    record_errors: bool = option(
        False,
        decl="--record-errors/--no-record-errors",
        env="VCR_RECORD_ERRORS",
        help="Also store transient errors (429, 5xx, 529, a stream ended by an overloaded error); API errors "
        "that come back the same every time (400, 401, 403, 404, 413, 422) are always stored. Either way every "
        "answer is passed through.",
    )
    rules: Rules = option(
        factory=Rules,
        decl="--rules",
        env="VCR_RULES",
        path="existing file",
        parse=load_rules,
        metavar="FILE",
        help="Key rules file (TOML or JSON): JSON paths to leave out, text to replace. Stored with new cassettes.",
    )
    """Key rules for cassettes recorded from now on (presets included); a cassette keeps the rules it was
    recorded with."""
    presets: tuple[str, ...] = option(
        (),
        decl="--preset",
        env="VCR_PRESET",
        choices=PRESET_NAMES,
        multiple=True,
        help="Built-in rules: claude-code replays a session in another directory, HOME, day or patch release.",
    )
    exhausted: str = option(
        "repeat",
        decl="--exhausted",
        env="VCR_EXHAUSTED",
        choices=EXHAUSTED,
        help="Replay past the last recording of a repeated request: repeat the last, or miss.",
    )
    match: str = option(
        "exact",
        decl="--match",
        env="VCR_MATCH",
        choices=MATCHES,
        help="conversation: when the exact key misses, replay a recording of the same conversation (same model, "
        "messages without system-reminders, tool calls and results; system prompt, tools, max_tokens, thinking "
        "and output_config do not count), logged as hit-conversation with what differed.",
    )
    pace: float | None = option(
        None,
        decl="--pace",
        env="VCR_PACE",
        parse=parse_pace,
        metavar="instant|recorded|N",
        shown_default="instant",
        help="instant, recorded (each chunk at its recorded offset), or a speed factor N (2 = twice as fast).",
    )
    """None replays at once; a number replays each chunk at its recorded offset divided by it."""
    save_misses: Path | None = option(
        None,
        decl="--save-misses",
        env="VCR_SAVE_MISSES",
        path="directory",
        help="Write every request that misses in replay to this directory, for `claude-vcr explain`.",
    )
    redact: bool = option(
        False,
        decl="--redact/--no-redact",
        env="VCR_REDACT",
        help="Store credential-shaped strings in bodies as placeholders (`claude-vcr redact`'s), not as sent.",
    )
    check: bool = option(
        False,
        decl="--check",
        env="VCR_CHECK",
        help="Validate every response against the Anthropic protocol rules; log what breaks them.",
    )
    upstream_format: str = option(
        "anthropic",
        decl="--upstream-format",
        env="VCR_UPSTREAM_FORMAT",
        choices=UPSTREAM_FORMATS,
        help="openai: translate to an OpenAI-compatible Chat Completions upstream (OpenRouter, Ollama, vLLM...); "
        "bedrock: Claude on Amazon Bedrock, each request signed with SigV4 from the standard AWS credentials "
        "(the region's endpoint unless --upstream is given); vertex: Claude on Google Vertex AI, with the "
        "client's bearer token, GOOGLE_OAUTH_ACCESS_TOKEN or the application-default credentials; foundry: as anthropic (Microsoft Foundry's Messages API, "
        "--upstream https://RESOURCE.services.ai.azure.com/anthropic), `run` then sets Claude Code's Foundry variables.",
    )
    model_map: tuple[tuple[str, str], ...] = option(
        (),
        decl="--model-map",
        env="VCR_MODEL_MAP",
        parse=parse_model_mapping,
        metavar="GLOB=MODEL",
        multiple=True,
        help="With --upstream-format openai: send models matching GLOB as MODEL, e.g. 'claude-*=qwen/qwen3-coder'.",
    )
    """(glob on the client's model, upstream model) pairs for a translating upstream; first match wins."""
    upstream_key_env: str = option(
        "VCR_UPSTREAM_API_KEY",
        decl="--upstream-key-env",
        metavar="NAME",
        help="Environment variable with the translating upstream's API key (never stored).",
    )
    ping_interval: float = option(
        15.0,
        decl="--ping-interval",
        env="VCR_PING_INTERVAL",
        bounds=(0.1, None),
        help="With --upstream-format openai: seconds of upstream silence before a ping event.",
    )
    header_timeout: float = option(
        20.0,
        decl="--header-timeout",
        env="VCR_HEADER_TIMEOUT",
        bounds=(0.01, None),
        metavar="SECONDS",
        help="Seconds a client may take to send a request's line and headers; then it gets a 408 and is closed.",
    )
    body_timeout: float = option(
        60.0,
        decl="--body-timeout",
        env="VCR_BODY_TIMEOUT",
        bounds=(0.01, None),
        metavar="SECONDS",
        help="Seconds a client may take to send a whole request body; then it gets a 408 and is closed.",
    )
    upstream_read_timeout: float = 600.0
    """Seconds an upstream may stay silent mid-answer; not a flag."""
    how_to_record: str = "record with --mode record or auto"
    """What a strict miss tells the user to do, in the words of what started the proxy (the pytest plugin
    names its own option); not a flag."""
    record_errors_option: str = RECORD_ERRORS
    """How the user asks for transient errors to be stored, in the same words; not a flag."""

    def __post_init__(self) -> None:
        """`rules` is what the proxy keys new cassettes with: the rules file's rules plus the presets."""
        self.rules = self.rules.with_presets(*self.presets)


_TRUE = {"1", "true", "t", "yes", "y", "on"}
_FALSE = {"0", "false", "f", "no", "n", "off", ""}


def _from_text(spec: Any, text: str) -> Any:
    """One variable's text as the value its field holds, with the checks `serve`'s flag makes."""
    flag: Flag = spec.metadata["flag"]
    default = spec.default if spec.default is not MISSING else None
    if flag.multiple:
        return tuple(_one_value(flag, default, part) for part in text.split())
    return _one_value(flag, default, text)


def _one_value(flag: Flag, default: Any, text: str) -> Any:
    if flag.choices and text not in flag.choices:
        raise InvalidInput(f"{text!r}: use one of {', '.join(flag.choices)}")
    if flag.parse is not None:
        return flag.parse(text)
    if flag.path is not None:
        return Path(text)
    if isinstance(default, bool):
        if text.lower() not in _TRUE | _FALSE:
            raise InvalidInput(f"{text!r} is not a boolean")
        return text.lower() in _TRUE
    if isinstance(default, (int, float)):
        try:
            number = type(default)(text)
        except ValueError:
            raise InvalidInput(f"{text!r} is not a number") from None
        low, high = flag.bounds
        if (low is not None and number < low) or (high is not None and number > high):
            raise InvalidInput(f"{text!r} is out of range")
        return number
    return text


def from_environment(environ: Mapping[str, str], **given: Any) -> ProxyConfig:
    """A `ProxyConfig` from the `VCR_*` variables `serve` reads, with `given` values winning over them:
    for callers without a command line (the pytest plugin, `use_cassette`)."""
    values: dict[str, Any] = {}
    for spec in fields(ProxyConfig):
        flag: Flag | None = spec.metadata.get("flag")
        if spec.name in given or flag is None or flag.env is None or flag.env not in environ:
            continue
        try:
            values[spec.name] = _from_text(spec, environ[flag.env])
        except InvalidInput as error:
            raise InvalidInput(f"{flag.env}: {error}") from None
    values.update(given)
    return ProxyConfig(**values)
