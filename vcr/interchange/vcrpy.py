"""Read vcrpy / pytest-recording cassettes (YAML or JSON) and import their Anthropic Messages API interactions.

A suite moving over from pytest-recording keeps its recordings: each cassette file becomes one cassette, named
as the claude-vcr pytest plugin names that test's cassette (`tests/cassettes/test_api/TestX.test_y.yaml` ->
`tests.test_api.TestX.test_y`), so the suite replays unchanged but for its marker. Bodies come in vcrpy's forms:
text, `!!binary` (bytes as sent, gzip or deflate undone by their Content-Encoding), or pydantic-ai's
`parsed_body` (a JSON value, stored as its serializer's `json.dumps` gives it back to vcrpy). Interactions with
any other API are counted and skipped.

YAML is read with PyYAML's *safe* loader only (plain data, `!!binary` as bytes; never objects): a cassette from
elsewhere is data. PyYAML is vcrpy's own dependency, so every environment that wrote such cassettes has it;
claude-vcr does not carry it (see docs/vcrpy.md). JSON cassettes need nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..errors import FormatError
from ..names import test_cassette_name, validate_cassette_name
from ..storable import NOT_STORED
from . import files
from .mitm import ContentDecodingError, decode_content
from .recorder import ImportReport, ImportRun

if TYPE_CHECKING:
    from ..store import Store

Headers = list[tuple[str, str]]

SUFFIXES = (".yaml", ".yml", ".json")
MESSAGES_PATH = "/v1/messages"
"""The Messages API and its sub-paths (count_tokens, batches); any other path is another API."""

SKIP_OTHER_API = "not the Anthropic Messages API"
SKIP_NO_RESPONSE = "no response recorded"
SKIP_UNDECODABLE = "body not decodable"
SKIP_MALFORMED = "interaction not in vcrpy's form"


@dataclass(frozen=True)
class Interaction:
    """One request and its answer, as a vcrpy cassette holds them, bodies as bytes still Content-Encoded."""

    method: str
    uri: str
    request_headers: Headers
    request_body: bytes
    status: int | None
    response_headers: Headers
    response_body: bytes
    parsed: bool
    """pydantic-ai's `parsed_body` form: the body is JSON text again, whatever its Content-Encoding said."""


def load(data: bytes, source: str) -> dict[str, Any]:
    """A cassette file's top-level mapping: JSON, else YAML through PyYAML's safe loader; one-line errors."""
    text = data.decode("utf-8", errors="strict") if data else ""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError as error:
            raise FormatError(f"{source}: not a vcrpy JSON cassette: {error}") from error
    else:
        try:
            import yaml
        except ImportError as error:
            raise FormatError(
                f"{source}: reading YAML cassettes needs PyYAML (vcrpy's own dependency): "
                "pip install pyyaml, or run claude-vcr where vcrpy is installed"
            ) from error
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            document = yaml.load(text, Loader=loader)  # noqa: S506 (a safe loader: plain data only)
        except yaml.YAMLError as error:
            problem = " ".join(str(error).split())
            raise FormatError(f"{source}: not a vcrpy YAML cassette: {problem}") from error
    if not isinstance(document, dict) or not isinstance(document.get("interactions"), list):
        raise FormatError(f"{source}: not a vcrpy cassette (no `interactions` list)")
    return document


def _headers(value: Any) -> Headers:
    """vcrpy's `{name: [values]}` (or a single value) as a header list, in order."""
    if not isinstance(value, dict):
        return []
    found: Headers = []
    for name, values in value.items():
        for item in values if isinstance(values, list) else [values]:
            if item is not None:
                found.append((str(name), str(item)))
    return found


def _body(value: Any) -> bytes:
    """A body as vcrpy stores it (text, bytes from `!!binary`, `{"string": ...}` or nothing) as bytes."""
    if isinstance(value, dict):
        value = value.get("string")
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise FormatError(f"a body of type {type(value).__name__}")


def interactions(document: dict[str, Any]) -> Iterator[Interaction | None]:
    """Each interaction of a loaded cassette; None for one not in vcrpy's form (counted, skipped)."""
    for item in document["interactions"]:
        try:
            request, response = item["request"], item.get("response")
            parsed = "parsed_body" in request or (isinstance(response, dict) and "parsed_body" in response)
            request_body = (
                json.dumps(request["parsed_body"]).encode() if "parsed_body" in request else _body(request.get("body"))
            )
            if isinstance(response, dict):
                status = response.get("status", {})
                code = status.get("code") if isinstance(status, dict) else status
                body = (
                    json.dumps(response["parsed_body"]).encode()
                    if "parsed_body" in response
                    else _body(response.get("body"))
                )
                headers = _headers(response.get("headers"))
            else:
                code, body, headers = None, b"", []
            yield Interaction(
                method=str(request["method"]).upper(),
                uri=str(request["uri"]),
                request_headers=_headers(request.get("headers")),
                request_body=request_body,
                status=int(code) if code is not None else None,
                response_headers=headers,
                response_body=body,
                parsed=parsed,
            )
        except (KeyError, TypeError, ValueError, AttributeError, FormatError):
            yield None


def cassette_files(source: Path) -> list[tuple[Path, str]]:
    """The cassette files under `source` (or `source` itself), each with the cassette it is imported into:
    the plugin's name for the test whose pytest-recording cassette it is, from the path relative to the
    current directory (run the import where pytest runs), else to `source`."""
    if files.is_directory(source):
        found = sorted(p for p in source.rglob("*") if p.suffix in SUFFIXES and not p.is_symlink() and p.is_file())
    else:
        found = [source]
    base = Path.cwd().resolve()
    named = []
    for path in found:
        resolved = path.resolve()
        try:
            relative = resolved.relative_to(base)
        except ValueError:
            relative = resolved.relative_to(source.resolve()) if resolved != source.resolve() else Path(path.name)
        named.append((path, cassette_name(relative)))
    return named


def cassette_name(relative: Path) -> str:
    """`tests/cassettes/test_api/TestX.test_y[1].yaml` -> `tests.test_api.TestX.test_y-1`: the name the pytest
    plugin gives that test's cassette (pytest-recording keeps `cassettes/<module>/<class>.<test>.yaml`)."""
    parts = [p for p in relative.with_suffix("").parts if p != "cassettes"]
    *folders, stem = parts or ["default"]
    head, bracket, params = stem.partition("[")
    names = head.split(".") if head else [head]
    names[-1] += bracket + params
    module = "/".join(folders) + ".py" if folders else ""
    nodeid = "::".join([module, *names]) if module else "::".join(names)
    name = test_cassette_name(nodeid)
    return validate_cassette_name(name.lstrip("."))


def is_messages_api(uri: str) -> bool:
    """Whether a recorded URL is the Anthropic Messages API (any host: suites record through gateways too)."""
    path = urlsplit(uri).path
    return path == MESSAGES_PATH or path.startswith(MESSAGES_PATH + "/")


def import_files(
    store: Store,
    sources: list[tuple[Path, str]],
    *,
    record_errors: bool = False,
    presets: tuple[str, ...] = (),
) -> ImportReport:
    """Import each file into its cassette, in one transaction: a file that cannot be read leaves the db as
    it was (the error names the file)."""
    run = ImportRun(store, presets, record_errors=record_errors)
    with store.transaction():
        for path, cassette in sources:
            document = load(files.read_file(path), str(path))
            for index, interaction in enumerate(interactions(document)):
                run.report.flows += 1
                reason = _import_one(run, interaction, cassette, path, index)
                if reason:
                    run.report.skipped[reason] += 1
    return run.report


def _import_one(run: ImportRun, item: Interaction | None, cassette: str, path: Path, index: int) -> str | None:
    """Store one interaction; returns why it was skipped, or None."""
    if item is None:
        return SKIP_MALFORMED
    if not is_messages_api(item.uri):
        return SKIP_OTHER_API
    if item.status is None:
        return SKIP_NO_RESPONSE
    try:
        request_body = decode_content(item.request_headers, item.request_body)
        response_body = (
            item.response_body if item.parsed else decode_content(item.response_headers, item.response_body)
        )
    except ContentDecodingError:
        return SKIP_UNDECODABLE
    decided = run.storable(item.status, item.response_headers, response_body)
    if not decided.store:
        return NOT_STORED + (decided.reason or "")
    split = urlsplit(item.uri)
    run.record(
        cassette,
        item.method,
        split.path + (f"?{split.query}" if split.query else ""),
        (item.request_headers, request_body),
        (item.status, item.response_headers, response_body),
        meta={"imported_from": "vcrpy", "source": path.name, "interaction": index},
    )
    return None
