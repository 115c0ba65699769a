"""Secrets in stored recordings: screen one as it is recorded or imported, scan a db, redact it in place.

Findings come from `secrets`; what a person sees of one is its kind, where it is (recording, side, JSON path)
and a masked preview, never the secret. `redact_db` rewrites every affected recording through the store in
one transaction (bodies with placeholders, credential headers and query values dropped), drops request chunks
no recording uses any more, and recomputes the cassette's keys under its stored rules (`rekey`): since
requests key on their redacted form, the original request still replays.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import eventstream
from .headers import is_secret
from .matching import short_key
from .secrets import Secret, find, redact_bytes, redact_path, redact_target
from .untrusted import printable_line

if TYPE_CHECKING:
    from .catalog import Catalog
    from .records import Recording
    from .request_scan import RequestScan
    from .response_scan import ResponseScan
    from .store import Store


def recording_name(recording: Recording) -> str:
    """How warnings and reports name a recording: cassette, short key, method and stored path."""
    return f"{recording.cassette} {short_key(recording.key, recording.ordinal)} {recording.method} {recording.path}"


@dataclass
class Screened:
    """What screening one recording found (kinds and counts only), and whether its bodies were redacted."""

    kinds: Counter[str] = field(default_factory=Counter)
    redacted: bool = False

    def __bool__(self) -> bool:
        return bool(self.kinds)

    def warning(self, recording: Recording) -> str:
        """One line naming the recording and the kinds found, never a secret."""
        count = sum(self.kinds.values())
        kinds = ", ".join(f"{kind} x{n}" if n > 1 else kind for kind, n in sorted(self.kinds.items()))
        done = (
            "stored with placeholders"
            if self.redacted
            else "stored as sent: run `claude-vcr scan`, then `claude-vcr redact`"
        )
        return (
            f"recording {recording_name(recording)} holds {count} credential-shaped "
            f"string{'s' if count != 1 else ''} ({kinds}); {done}"
        )


SCREEN_LIMIT = 64 * 1024 * 1024
"""A response kept compressed (over 4 MB) is decompressed to be screened up to this size; larger ones are
left to `scan`."""


def screen(
    recording: Recording,
    *,
    redact: bool = False,
    request: RequestScan | None = None,
    response: ResponseScan | None = None,
) -> Screened:
    """Look for secrets in a recording's bodies; with `redact`, replace them in the recording (its key does
    not change: keys are computed on the redacted form). `request` and `response`: the bodies' scans, when
    already made (off this process, for a large body)."""
    screened = Screened()
    if request is None:
        request_body, found = redact_bytes(recording.request_body)
    else:
        request_body, found = request.redacted or recording.request_body, request.found
    screened.kinds.update(secret.kind for secret in found)
    if response is None:
        body, found_response = response_secrets(recording)
    else:
        body, found_response = b"", response.found
    screened.kinds.update(secret.kind for secret in found_response)
    if redact and screened:
        if request_body != recording.request_body:
            recording.request_body = request_body
            recording.raw_hash = None  # worked out again on save, from the stored bytes
        if found_response and response is None:
            recording.response_body = body
            recording.response_frame = recording.response_length = None  # stored whole, compressed anew
        screened.redacted = True
    if response is not None:  # the stored form the scan made: the redacted body's, or the body's own
        redacted = redact and bool(found_response)
        frame = response.redacted_frame if redacted else response.frame
        if frame is not None:
            length = response.redacted_length if redacted else recording.response_bytes
            recording.response_body, recording.response_frame, recording.response_length = b"", frame, length
    return screened


def response_secrets(recording: Recording) -> tuple[bytes, list[Secret]]:
    """A recording's response body with its secrets as placeholders (whole, also for one kept as a frame),
    and the secrets; Bedrock's binary frames are read as the events they carry and written back framed."""
    body: bytes | None = recording.response_body
    if recording.response_frame is not None:
        body = _large_response(recording)
    found_response: list[Secret] = []
    response = b""
    framed = body is not None and eventstream.is_framed(recording.response_headers)
    if body is not None:
        readable = eventstream.to_sse(body)[0] if framed else body  # Bedrock's payloads are base64
        response, found_split = redact_stream(readable)
        response, found_response = redact_bytes(response)
        found_response += found_split
        if framed and found_response:
            response = eventstream.from_sse(response)
    return response, found_response


def _large_response(recording: Recording) -> bytes | None:
    """The body of a response kept as a zstd frame, when it is small enough to screen."""
    if (recording.response_length or 0) > SCREEN_LIMIT:
        return None

    from .compression import decompress_frame, decompressor

    return decompress_frame(decompressor(), recording.response_frame)


# --- streams: a secret split across deltas -------------------------------------------------------------

_DELTA_FIELDS = {"text_delta": "text", "thinking_delta": "thinking", "input_json_delta": "partial_json"}
"""The delta types whose strings a stream splits a block's content into, and the field holding each piece."""


@dataclass
class _Piece:
    event: int
    field: str
    text: str


def _stream_blocks(body: bytes) -> tuple[list[Any], dict[Any, list[_Piece]]]:
    """An SSE body's events and, per content block index, its delta pieces in order ({} if not a stream)."""
    if not body.lstrip()[:6].startswith((b"event:", b"data:", b":")):
        return [], {}
    from .sse import parse_sse

    try:
        events = parse_sse(body)
    except (ValueError, UnicodeDecodeError):
        return [], {}
    blocks: dict[Any, list[_Piece]] = {}
    for number, event in enumerate(events):
        payload = event.parsed
        if not isinstance(payload, dict) or payload.get("type") != "content_block_delta":
            continue
        delta = payload.get("delta")
        field = _DELTA_FIELDS.get(delta.get("type")) if isinstance(delta, dict) else None
        if field and isinstance(delta.get(field), str):
            blocks.setdefault(payload.get("index"), []).append(_Piece(number, field, delta[field]))
    return events, blocks


def _split_secrets(pieces: list[_Piece]) -> Iterator[tuple[Secret, list[tuple[int, int, int]]]]:
    """Secrets in a block's joined text that span two or more pieces (one inside a piece is found in the
    raw bytes), each with (piece number, start, end) of its parts."""
    starts, at = [], 0
    for piece in pieces:
        starts.append(at)
        at += len(piece.text)
    for secret in find("".join(piece.text for piece in pieces)):
        parts = [
            (number, max(secret.start, start) - start, min(secret.end, start + len(piece.text)) - start)
            for number, (piece, start) in enumerate(zip(pieces, starts, strict=True))
            if start < secret.end and secret.start < start + len(piece.text)
        ]
        if len(parts) > 1:
            yield secret, parts


def stream_secrets(body: bytes) -> Iterator[tuple[str, Secret]]:
    """(JSON path of the first piece, secret) for each secret a stream splits across deltas."""
    events, blocks = _stream_blocks(body)
    for pieces in blocks.values():
        for secret, parts in _split_secrets(pieces):
            first = pieces[parts[0][0]]
            yield f"events[{first.event}].delta.{first.field}", secret


def redact_stream(body: bytes) -> tuple[bytes, list[Secret]]:
    """Replace secrets split across deltas: the placeholder goes where the secret starts, the rest of it is
    cut from the following deltas. Only the events changed are written anew."""
    events, blocks = _stream_blocks(body)
    edits: dict[int, dict[int, list[tuple[int, int, str]]]] = {}
    found: list[Secret] = []
    for block, pieces in blocks.items():
        for secret, parts in _split_secrets(pieces):
            found.append(secret)
            for order, (number, start, end) in enumerate(parts):
                edits.setdefault(block, {}).setdefault(number, []).append(
                    (start, end, secret.placeholder if order == 0 else "")
                )
    if not found:
        return body, []
    text = body.decode("utf-8", "surrogateescape")
    out, cursor = [], 0
    changed: dict[int, str] = {}
    for block, numbered in edits.items():
        for number, cuts in numbered.items():
            piece = blocks[block][number]
            value = piece.text
            for start, end, replacement in sorted(cuts, reverse=True):
                value = value[:start] + replacement + value[end:]
            payload = json.loads(json.dumps(events[piece.event].parsed))
            payload["delta"][piece.field] = value
            changed[piece.event] = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    for number in sorted(changed):
        old = events[number].data or ""
        at = text.find(old, cursor)
        if at < 0:
            continue  # a data field split over several lines: left for `scan` to report
        out += [text[cursor:at], changed[number]]
        cursor = at + len(old)
    out.append(text[cursor:])
    return "".join(out).encode("utf-8", "surrogateescape"), found


# --- scan ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredSecret:
    """One credential-shaped string stored in a recording: where it is, its kind and a masked preview
    (a `secrets.Secret` located in the db; not a protocol `Finding`)."""

    cassette: str
    key: str
    ordinal: int
    method: str
    path: str
    side: str
    """request or response (body), request_headers or response_headers, or path (the query)."""
    json_path: str
    kind: str
    preview: str

    @property
    def recording(self) -> str:
        return f"{self.cassette} {short_key(self.key, self.ordinal)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "cassette": self.cassette,
            "key": self.key,
            "short_key": short_key(self.key, self.ordinal),
            "ordinal": self.ordinal,
            "method": self.method,
            "path": self.path,
            "side": self.side,
            "json_path": self.json_path,
            "kind": self.kind,
            "preview": self.preview,
        }


def scan(catalog: Catalog, cassette: str | None = None) -> list[StoredSecret]:
    """Every credential-shaped string in the stored bodies, headers and paths (one cassette, or all)."""
    if cassette is not None:
        catalog.cassette_info(cassette)  # an unknown name is NotFound, not "clean"
    found = [finding for recording in catalog.iter_details(cassette) for finding in scan_recording(recording)]
    found += scan_unstored(catalog, cassette)
    found += scan_replaced(catalog, cassette)
    if cassette is None:  # every table: request chunks no recording uses still hold what they held
        for identifier, data in catalog.unused_chunks():
            for secret in find(data.decode("utf-8", "surrogateescape")):
                found.append(
                    StoredSecret(
                        "(no cassette)",
                        identifier.hex(),
                        0,
                        "-",
                        "-",
                        "unused chunk",
                        "(raw)",
                        secret.kind,
                        secret.preview,
                    )
                )
    return found


REPLACED_SIDE = "replaced answer"
"""Where a finding in an answer a record run replaced, kept until `compact` (m012), is."""


def scan_replaced(catalog: Catalog, cassette: str | None = None) -> Iterator[StoredSecret]:
    """Credential-shaped strings in the replaced answers the db keeps for git's history."""
    for _, name, key, ordinal, body in catalog.replaced_answers(cassette):
        for where, secret in _replaced_secrets(body):
            yield StoredSecret(printable_line(name)[:200], printable_line(key)[:200], ordinal, "-", "-",
                               REPLACED_SIDE, where, secret.kind, secret.preview)


def _replaced_secrets(body: bytes) -> Iterator[tuple[str, Secret]]:
    """`_body_secrets` of a replaced answer, stored without its headers: read as the events it carries when
    it is Bedrock's binary event stream (a frame starts with its 4-byte length, so with a zero byte)."""
    if body[:1] == b"\x00":
        try:
            body = eventstream.to_sse(body)[0]
        except Exception:  # not an event stream: read as it is
            pass
    yield from _body_secrets(body)


def _body_secrets(body: bytes) -> Iterator[tuple[str, Secret]]:
    """(where, secret) of each credential-shaped string in a body: located by JSON path in the text, and
    those split across a stream's events."""
    text = body.decode("utf-8", "surrogateescape")
    secrets = list(find(text))
    if secrets:
        strings = list(_strings_of(body))
        for secret in secrets:
            yield _locate(secret, strings, text), secret
    yield from stream_secrets(body)


NOTE_SIDE = "unstored-answer note"
"""Where a finding in a note of an unstored answer is: claude-vcr writes none there, a db from elsewhere may."""


def scan_unstored(catalog: Catalog, cassette: str | None = None) -> Iterator[StoredSecret]:
    """Credential-shaped strings in the notes of unstored answers, every value as stored."""
    for row in catalog.unstored_rows(cassette):
        name, key = (printable_line(str(value))[:200] for value in row[:2])
        for secret in _note_secrets(row):
            yield StoredSecret(name, key, 0, "-", "-", NOTE_SIDE, "(note)", secret.kind, secret.preview)


def _note_secrets(row: tuple[Any, ...]) -> list[Secret]:
    return list(find(" ".join(str(value) for value in row)))


def scan_recording(recording: Recording) -> Iterator[StoredSecret]:
    def found(side: str, where: str, kind: str, preview: str) -> StoredSecret:
        r = recording
        return StoredSecret(r.cassette, r.key, r.ordinal, r.method, r.path, side, where, kind, preview)

    response_body = recording.response_body
    if eventstream.is_framed(recording.response_headers):
        response_body = eventstream.to_sse(response_body)[0]  # Bedrock's payloads are base64: read decoded
    for side, body in (("request", recording.request_body), ("response", response_body)):
        for where, secret in _body_secrets(body):
            yield found(side, where, secret.kind, secret.preview)
    for side, headers in (
        ("request_headers", recording.request_headers),
        ("response_headers", recording.response_headers),
    ):
        for name, value in headers:
            if is_secret(name, value):
                yield found(side, name, "credential-header", f"…({len(value)} chars)")
    if redact_target(recording.path) != recording.path:
        path = recording.path.partition("?")[0]
        where = "query" if redact_path(path) == path else "path"  # a key in a path segment, or in the query
        yield found(
            "path",
            where,
            "credential-parameter" if where == "query" else "credential-in-path",
            f"(in the {where})",
        )


def _strings_of(body: bytes) -> Iterator[tuple[str, str]]:
    """(JSON path, string) of every string in a JSON body or in each event of an SSE body."""
    stripped = body.lstrip()
    if stripped[:1] in (b"{", b"["):
        try:
            yield from _walk(json.loads(body), "$")
            return
        except (ValueError, UnicodeDecodeError):
            pass
    from .sse import parse_sse

    try:
        events = parse_sse(body)
    except (ValueError, UnicodeDecodeError):
        return
    for index, event in enumerate(events):
        if event.parsed is not None:
            yield from _walk(event.parsed, f"events[{index}]")


def _walk(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, child in value.items():
            yield from _walk(child, f"{path}.{key}" if key.isidentifier() else f"{path}[{json.dumps(key)}]")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _walk(child, f"{path}[{index}]")


def _locate(secret: Secret, strings: list[tuple[str, str]], text: str = "") -> str:
    """The JSON path of the string holding a finding (found in the raw text, perhaps JSON-escaped): the
    string holding the same occurrence of it, counted in document order, so a key in `messages` is not
    labelled with an earlier string (`system`) that holds the same value."""
    candidates = {secret.value}
    try:
        candidates.add(json.loads(f'"{secret.value}"'))
    except ValueError:
        pass
    before = text.count(text[secret.start : secret.end], 0, secret.start) if text else 0
    first = None
    for path, value in strings:
        held = max(value.count(candidate) for candidate in candidates)
        if held and first is None:
            first = path
        if held > before:
            return path
        before -= held
    return first or "(raw body)"


# --- redact -------------------------------------------------------------------------------------------------


@dataclass
class RedactReport:
    """What `redact_db` changed."""

    recordings: int = 0
    """Recordings rewritten."""
    secrets: Counter[str] = field(default_factory=Counter)
    """Body findings replaced, by kind."""
    headers: int = 0
    """Credential headers dropped (stored by an older version, or imported)."""
    paths: int = 0
    """Stored paths whose query lost a credential value."""
    cassettes: list[str] = field(default_factory=list)
    """Cassettes whose keys were recomputed."""
    collisions: int = 0
    """Keys that two recordings now share (they replay in recording order)."""
    notes: int = 0
    """Notes of unstored answers dropped for holding a credential-shaped string (claude-vcr writes none)."""
    replaced: int = 0
    """Replaced answers kept for git's history (m012) dropped for holding a credential-shaped string."""

    def to_json(self) -> dict[str, Any]:
        return {
            "recordings": self.recordings,
            "secrets": dict(sorted(self.secrets.items())),
            "headers": self.headers,
            "paths": self.paths,
            "cassettes": self.cassettes,
            "collisions": self.collisions,
            "notes": self.notes,
            "replaced_answers": self.replaced,
        }


def redact_db(store: Store, cassette: str | None = None) -> RedactReport:
    """Replace every finding in the db (one cassette, or all) in one transaction; rekey what changed."""
    from .errors import NotFound
    from .rekey import rekey

    catalog = store.catalog
    if cassette is not None and catalog.cassette_rules(cassette) is None:
        raise NotFound(f"no cassette named {cassette!r}")
    report = RedactReport()
    store.secure_delete()  # freed pages are zeroed, so the old bytes do not linger in the file
    with store.transaction():
        changed: list[str] = []
        for recording in list(catalog.iter_details(cassette)):
            if _redact_recording(recording, report):
                store.rewrite(recording)
                report.recordings += 1
                if recording.cassette not in changed:
                    changed.append(recording.cassette)
        for row in catalog.unstored_rows(cassette):  # a note is only a hint: one holding a secret goes whole
            if _note_secrets(row):
                report.notes += store.forget_unstored(row[0], [row[1]])
        holding = [row_id for row_id, *_, body in catalog.replaced_answers(cassette) if any(_replaced_secrets(body))]
        report.replaced += store.drop_replaced(holding)  # history only: one holding a secret goes whole
        if changed or cassette is None:  # a whole-db redact also drops chunks nothing uses (scan reads them)
            store.drop_unused_chunks()
            for name in changed:
                report.collisions += sum(len(result.collisions) for result in rekey(store, name))
        report.cassettes = changed
    return report


def _redact_recording(recording: Recording, report: RedactReport) -> bool:
    changed = False
    screened = screen(recording, redact=True)
    if screened:
        report.secrets.update(screened.kinds)
        changed = True
    for side in ("request_headers", "response_headers"):
        headers = getattr(recording, side)
        kept = [(name, value) for name, value in headers if not is_secret(name, value)]
        if len(kept) != len(headers):
            report.headers += len(headers) - len(kept)
            setattr(recording, side, kept)
            changed = True
    path = redact_target(recording.path)
    if path != recording.path:
        recording.path = path
        recording.raw_hash = None
        report.paths += 1
        changed = True
    return changed
