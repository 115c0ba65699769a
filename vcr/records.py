"""A recording as the db holds it: the row types both sides of the db use, and the one place where a
recording's fields meet the `recordings` table's columns, on the way in (`encode`) and out (`decode`).

A new column is a schema step in `claude_vcr.migrations`, a field of `Recording`, and a line in each of
`encode` and `decode` below; the read side (`catalog`) and the write side (`store`) pick it up from here.
"""

from __future__ import annotations

import datetime
import io
import json
import re
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, BinaryIO, NamedTuple

import zstandard

from . import untrusted
from .compression import (
    BODY_CEILING,
    CHUNKED_CODEC,
    LARGE_BODY,
    REQUEST_CEILING,
    InflateLimit,
    MissingChunk,
    decode_json,
    decode_request,
    decompress_frame,
    decompressor,
    encode_json,
)
from .errors import DatabaseError
from .excerpts import Excerpt, prompt_excerpt
from .headers import Headers
from .matching import Rules, raw_hash, short_key

Timings = list[tuple[int, float]]
"""(size in bytes, milliseconds since the request was sent) of each piece of a response as it arrived."""
Identity = tuple[str, str, int]
"""(cassette name, key, ordinal): what a recording is, across copies of a db."""


def timestamp(moment: datetime.datetime) -> str:
    """A `created_at`: ISO 8601 in UTC with milliseconds, so timestamps sort as text."""
    moment = moment.astimezone(datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def utc_now() -> str:
    return timestamp(datetime.datetime.now(datetime.timezone.utc))


class RecordingRow(NamedTuple):
    """A recording without headers and bodies: what `list` shows (a tuple: lists are long)."""

    id: int
    cassette: str
    key: str
    ordinal: int
    method: str
    path: str
    model: str | None
    stream: bool
    status: int
    request_size: int
    response_size: int
    stored_size: int
    created_at: str
    prompt_excerpt: str | None = None
    """The first words of the last user message (`excerpts.prompt_excerpt`), stored on save."""

    @property
    def short(self) -> str:
        return short_key(self.key, self.ordinal)

    @property
    def identity(self) -> Identity:
        return (self.cassette, self.key, self.ordinal)

    def where(self) -> dict[str, Any]:
        """Which recording this is, as every `--json` output starts."""
        return {
            "cassette": self.cassette,
            "key": self.key,
            "short_key": self.short,
            "ordinal": self.ordinal,
            "method": self.method,
            "path": self.path,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.where(),
            "model": self.model,
            "stream": self.stream,
            "status": self.status,
            "request_size": self.request_size,
            "response_size": self.response_size,
            "stored_size": self.stored_size,
            "created_at": self.created_at,
            "prompt_excerpt": self.prompt_excerpt,
        }


def row_columns(cassette: str = "c.name", table: str = "r") -> str:
    """The SELECT list of a `RecordingRow`, in field order; `cassette` is how the query gets the name."""
    return ", ".join(cassette if name == "cassette" else f"{table}.{name}" for name in RecordingRow._fields)


def decode_row(values: Any) -> RecordingRow:
    """A `RecordingRow` from the columns `row_columns` selects."""
    return RecordingRow(*values[:7], bool(values[7]), *values[8:14])


@dataclass
class Recording:
    """One stored exchange: the request as sent, the response bytes exactly as received."""

    cassette: str
    key: str
    key_scheme: str
    method: str
    path: str
    status: int
    request_headers: Headers
    request_body: bytes
    response_headers: Headers
    response_body: bytes
    timings: Timings = field(default_factory=list)
    model: str | None = None
    stream: bool = False
    ordinal: int = 0
    created_at: str = field(default_factory=utc_now)
    duration_ms: float | None = None
    ttfb_ms: float | None = None
    stored_size: int | None = None
    fingerprints: dict[str, str] | None = None
    """Hashes of the normalised request's parts (see `matching.fingerprint`), for miss diagnosis."""
    raw_hash: str | None = None
    """`matching.raw_hash` of the request; worked out on save when not given."""
    response_frame: bytes | None = None
    """A large response (over `compression.LARGE_BODY`) read for replay stays a zstd frame: `response_body`
    is empty and `response_reader()` decompresses it as it is read."""
    response_length: int | None = None
    """The raw size of a response kept as a frame."""
    meta: dict[str, Any] | None = None
    """Where an imported recording came from (seed key, dump file), else None."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Columns this version does not name (an export of a later schema step), carried as they are."""
    id: int | None = None

    def response_reader(self) -> BinaryIO:
        """The response bytes as a stream: no more than a read's worth decompressed at a time, and never
        more than the row's recorded size (a frame that inflates further is a damaged or hostile db)."""
        if self.response_frame is None:
            return io.BytesIO(self.response_body)
        return _Bounded(decompressor().stream_reader(self.response_frame), min(self.response_length or 0, BODY_CEILING))  # type: ignore[return-value]

    def response_source(self) -> bytes | BinaryIO:
        """The response to read events from: its bytes, or for one kept as a frame (read with
        `large_as_frame`) a `response_reader()`, so a long stream is never held whole."""
        return self.response_body if self.response_frame is None else self.response_reader()

    @property
    def response_bytes(self) -> int:
        return len(self.response_body) if self.response_frame is None else self.response_length or 0

    @property
    def row(self) -> RecordingRow:
        return RecordingRow(
            self.id or 0,
            self.cassette,
            self.key,
            self.ordinal,
            self.method,
            self.path,
            self.model,
            self.stream,
            self.status,
            len(self.request_body),
            self.response_bytes,
            self.stored_size or 0,
            self.created_at,
            prompt_excerpt(self.request_body),
        )


class FrameOverrun(zstandard.ZstdError):
    """A stored frame that inflates past its row's recorded size: replay cuts the answer off there."""


class _Bounded:
    """A frame's stream reader that refuses to go past `limit` bytes."""

    def __init__(self, reader: Any, limit: int) -> None:
        self._reader = reader
        self._left = limit

    def read(self, size: int = -1) -> bytes:
        want = self._left + 1 if size is None or size < 0 else min(size, self._left + 1)
        data = self._reader.read(want) if want > 0 else b""
        self._left -= len(data)
        if self._left < 0:
            raise FrameOverrun("a stored response inflates past its recorded size")
        return data

    def close(self) -> None:
        self._reader.close()


HEADERS_LIMIT = 1024 * 1024
"""Stored headers are a few KB; a bomb in their JSON is refused at 1 MB."""
FINGERPRINTS_LIMIT = 1024 * 1024
"""A recording's fingerprints (a short hash per part of its request) are a few KB: a miss reads every
candidate's, so a bomb there is refused at 1 MB instead of costing gigabytes per miss."""


def stated_size(value: Any, ceiling: int = BODY_CEILING) -> int:
    """The inflation limit a row's recorded size sets for its body: that size, refused outright past the
    hard ceiling (so a row claiming 4 GiB is never inflated at all)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return ceiling  # an older or odd row: the ceiling alone bounds it
    if value > ceiling:
        raise InflateLimit(f"a stored body's recorded size of {value:,} bytes is past the limit of {ceiling:,}")
    return value


def _headers(stored: Any, decompressor: Any) -> Headers:
    return untrusted.headers(decode_json(stored, decompressor, HEADERS_LIMIT))


_PLACED = frozenset({"id", "cassette_id", "cassette_name", "key", "ordinal", "request_codec", "request_body"})
"""Columns that say where a row is or how its request is packed, never carried in `extra`."""


def encode(
    recording: Recording, compressor: Any, table_columns: Collection[str], excerpt: Excerpt | None = None
) -> dict[str, Any]:
    """The `recordings` row of a recording but `cassette_id` and the request body, which the store packs
    into chunks (`request_codec`, `request_body`) inside its transaction; `extra` fills the columns of
    `table_columns` this version does not name. `excerpt`: the request's, when already worked out."""
    columns: dict[str, Any] = {
        "key": recording.key,
        "ordinal": recording.ordinal,
        "key_scheme": recording.key_scheme,
        "method": recording.method,
        "path": recording.path,
        "model": recording.model,
        "stream": int(recording.stream),
        "status": recording.status,
        "request_headers": encode_json(recording.request_headers, compressor),
        "response_headers": encode_json(recording.response_headers, compressor),
        "response_body": recording.response_frame
        if recording.response_frame is not None
        else compressor.compress(recording.response_body),
        "timings": encode_json([[size, round(ms, 1)] for size, ms in recording.timings], compressor),
        "created_at": recording.created_at,
        "duration_ms": recording.duration_ms,
        "ttfb_ms": recording.ttfb_ms,
        "request_size": len(recording.request_body),
        "response_size": recording.response_bytes,
        "stored_size": recording.stored_size,
        "fingerprints": None
        if recording.fingerprints is None
        else encode_json(recording.fingerprints, compressor),
        "prompt_excerpt": (excerpt or Excerpt(prompt_excerpt(recording.request_body))).text,
        "raw_hash": recording.raw_hash or raw_hash(recording.method, recording.path, recording.request_body),
        "meta": None
        if recording.meta is None
        else json.dumps(recording.meta, sort_keys=True, ensure_ascii=False, separators=(",", ":")),
    }
    columns.update(
        {
            name: value
            for name, value in recording.extra.items()
            if name in table_columns and name not in _PLACED
        }
    )
    return columns


def request_body(
    conn: sqlite3.Connection,
    decompressor: Any,
    codec: str | None,
    blob: bytes | None,
    target: tuple[str, str],
    expected_hash: str | None,
    limit: int = REQUEST_CEILING,
) -> bytes:
    """A stored request body; one rebuilt from chunks is checked against the request's full hash (`target`
    is its method and path), so a damaged or colliding chunk is reported instead of replayed."""
    try:
        body = decode_request(conn, codec, blob, decompressor, limit)
    except MissingChunk as error:
        raise DatabaseError(str(error)) from error
    if codec == CHUNKED_CODEC and expected_hash and raw_hash(*target, body) != expected_hash:
        raise DatabaseError("a request body does not match its hash (damaged chunks)")
    return body


_NAMED = frozenset(
    {*_PLACED, *Recording.__dataclass_fields__, "request_size", "response_size", "prompt_excerpt"}
)


def decode(
    row: sqlite3.Row,
    cassette: str,
    conn: sqlite3.Connection,
    decompressor: Any,
    *,
    large_as_frame: bool = False,
    request: bool = True,
) -> Recording:
    """A recording from its `recordings` row (all columns); with `large_as_frame`, a large response stays
    compressed (replay streams it), else every body comes back whole. Without `request` the request's headers
    and body are left empty, neither rebuilt from chunks nor hash-checked: replay sends only the response,
    and the check belongs to verify, lint and the read side."""
    response_limit = stated_size(row["response_size"])
    framed = large_as_frame and response_limit > LARGE_BODY
    return Recording(
        id=row["id"],
        cassette=cassette,
        key=row["key"],
        ordinal=row["ordinal"],
        key_scheme=row["key_scheme"],
        method=row["method"],
        path=row["path"],
        model=row["model"],
        stream=bool(row["stream"]),
        status=untrusted.status(row["status"]),
        request_headers=_headers(row["request_headers"], decompressor) if request else [],
        request_body=request_body(
            conn,
            decompressor,
            row["request_codec"],
            row["request_body"],
            (row["method"], row["path"]),
            row["raw_hash"],
            stated_size(row["request_size"], REQUEST_CEILING),
        )
        if request
        else b"",
        response_headers=_headers(row["response_headers"], decompressor),
        response_body=b"" if framed else decompress_frame(decompressor, row["response_body"], response_limit),
        response_frame=row["response_body"] if framed else None,
        response_length=row["response_size"],
        timings=[(size, ms) for size, ms in decode_json(row["timings"], decompressor)],
        created_at=row["created_at"],
        duration_ms=row["duration_ms"],
        ttfb_ms=row["ttfb_ms"],
        stored_size=row["stored_size"],
        fingerprints=decode_json(row["fingerprints"], decompressor, FINGERPRINTS_LIMIT),
        raw_hash=row["raw_hash"],
        meta=json.loads(row["meta"]) if row["meta"] else None,
        extra={name: row[name] for name in row.keys() if name not in _NAMED},
    )


@dataclass(frozen=True)
class StoredRules:
    """What a cassette row keeps of how its keys were made: the rules as JSON (None until its first
    recording stores them) and the key scheme."""

    rules_json: str | None
    key_scheme: str

    def rules(self, default: Rules | None = None) -> Rules:
        """The rules a cassette's requests are keyed with: those stored with it, else `default`."""
        if self.rules_json:
            return Rules.from_json(self.rules_json)
        return default if default is not None else Rules()


UNSTORED_COLUMNS = "cassette, key, status, error_type, noted_at"
"""The `unstored_answers` columns, in `UnstoredAnswer` field order."""
_ERROR_TYPE = re.compile(r"[a-z_]{1,64}")
_NOTED_AT = re.compile(r"\d{4}-\d{2}-\d{2}T[0-9:.]{1,20}Z")


@dataclass(frozen=True)
class UnstoredAnswer:
    """A record run's note of an answer it passed through unstored (`storable`): which request, the status
    and error type, and when; never a body or a header. A later strict miss of the key reads it."""

    cassette: str
    key: str
    status: int
    error_type: str | None
    noted_at: str

    @classmethod
    def now(cls, cassette: str, key: str, status: int, error_type: str | None) -> UnstoredAnswer:
        """A note of an answer met now; an error type as the upstream wrote it is kept only in the API's form."""
        kind = error_type if isinstance(error_type, str) and _ERROR_TYPE.fullmatch(error_type) else None
        return cls(cassette, key, status, kind, utc_now())

    @classmethod
    def decode(cls, row: Any) -> UnstoredAnswer:
        """A note as read from a db, whose values are someone else's data: a status outside 100-599 is
        refused, an error type or date claude-vcr would not write is left out or refused."""
        cassette, key, status, error_type, noted_at = row
        if not isinstance(noted_at, str) or not _NOTED_AT.fullmatch(noted_at):
            raise untrusted.StoredValueError(f"stored note date {untrusted.shown(noted_at)} is not a date; refused")
        if not isinstance(key, str) or not isinstance(cassette, str):
            raise untrusted.StoredValueError(f"stored note key {untrusted.shown(key)} is not text; refused")
        kind = error_type if isinstance(error_type, str) and _ERROR_TYPE.fullmatch(error_type) else None
        return cls(cassette, key, untrusted.status(status), kind, noted_at)

    def row(self) -> tuple[str, str, int, str | None, str]:
        return (self.cassette, self.key, self.status, self.error_type, self.noted_at)

    def to_json(self) -> dict[str, Any]:
        """As an export carries it (the cassette is the directory's)."""
        return {"key": self.key, "status": self.status, "error_type": self.error_type, "noted_at": self.noted_at}


REPLACED_COLUMNS = "cassette_id, key, ordinal, response_body"
"""What `replaced_answers` keeps of a recording a record run replaced (m012): its place and its stored answer."""
