"""How bodies are packed for the db, shared by the store and the read-only catalog.

Requests of one session repeat themselves: Claude Code re-sends the same ~40 KB of tools and system prompt
and a growing history in every turn. A request body is cut into content-defined chunks (boundaries chosen
by the bytes around them, so an insertion early in a body moves no later boundary), each stored once under
its id; the request keeps only the list of chunk ids. The exact bytes are the chunks joined back.

Responses are single zstd frames; large ones are compressed while they stream in (`ResponseSpool`). Long
metadata JSON is a zstd frame too. The one query here, `fetch_chunks`, is shared so that the catalog (which
must not import the store's sqlite-utils) reads chunked requests the same way.
"""

from __future__ import annotations

import hashlib
import json
import re
import zlib
from typing import Any

import zstandard

CHUNK_ID_BYTES = 8
MIN_CHUNK = 1024
MAX_CHUNK = 16 * 1024
BOUNDARY_MASK = 0x3
"""A candidate boundary is taken when the crc of the bytes before it has these bits clear: 1 in 4."""
BOUNDARY_WINDOW = 32
_CANDIDATE = re.compile(rb"[}\]],|\\n|\n")
"""Where a JSON element ends, or a line does (escaped in JSON strings, or raw in other text)."""


def split_chunks(body: bytes) -> list[bytes]:
    """Cut a body at content-defined boundaries, 1-16 KB apart; joining the chunks gives the body back."""
    chunks: list[bytes] = []
    start = 0
    for match in _CANDIDATE.finditer(body):
        end = match.end()
        size = end - start
        if size < MIN_CHUNK:
            continue
        while size > MAX_CHUNK:  # a long stretch without candidates: cut it at the maximum
            chunks.append(body[start : start + MAX_CHUNK])
            start += MAX_CHUNK
            size = end - start
        if size >= MIN_CHUNK and zlib.crc32(body[end - BOUNDARY_WINDOW : end]) & BOUNDARY_MASK == 0:
            chunks.append(body[start:end])
            start = end
    while len(body) - start > MAX_CHUNK:
        chunks.append(body[start : start + MAX_CHUNK])
        start += MAX_CHUNK
    if start < len(body) or not chunks:
        chunks.append(body[start:])
    return chunks


def chunk_id(chunk: bytes) -> bytes:
    """A chunk's id: 64 bits of its sha256. Two different chunks share an id with odds of about n^2 / 2^65
    (one in 37 million for a million chunks); the store compares a reused chunk's bytes before relying on it,
    and checks a rebuilt body against the request's full sha256 when reading."""
    return hashlib.sha256(chunk).digest()[:CHUNK_ID_BYTES]


def pack_ids(ids: list[bytes]) -> bytes:
    return b"".join(ids)


def unpack_ids(packed: bytes) -> list[bytes]:
    return [packed[i : i + CHUNK_ID_BYTES] for i in range(0, len(packed), CHUNK_ID_BYTES)]


def decompress_frame(decompressor: Any, frame: bytes | None) -> bytes:
    """A whole zstd frame back, also one written as a stream (no content size in its header)."""
    if not frame:
        return b""
    return decompressor.decompressobj().decompress(frame)


CHUNKED_CODEC = "chunks"
WHOLE_CODEC = "zstd"
CHUNKING_MIN_BYTES = 4096
"""Smaller bodies are stored whole: a list of chunk ids would not pay for itself."""
JSON_COMPRESS_MIN = 256
_QUERY_BATCH = 500


class MissingChunk(ValueError):
    """A request refers to a chunk the db does not have (a damaged or half-copied db)."""


def fetch_chunks(conn: Any, ids: list[bytes], schema: str = "main") -> dict[bytes, bytes]:
    """Stored (compressed) chunks by id. The one query shared by the store and the read-only catalog."""
    found: dict[bytes, bytes] = {}
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), _QUERY_BATCH):
        batch = unique[start : start + _QUERY_BATCH]
        marks = ",".join("?" * len(batch))
        found.update(
            conn.execute(f"SELECT id, data FROM {schema}.chunks WHERE id IN ({marks})", batch).fetchall()
        )
    return found


def decode_request(conn: Any, codec: str | None, blob: bytes | None, decompressor: Any) -> bytes:
    """A request body back from its stored form: one zstd frame, or chunk ids to join."""
    if not blob:
        return b""
    if codec != CHUNKED_CODEC:
        return decompressor.decompress(blob)
    ids = unpack_ids(blob)
    found = fetch_chunks(conn, ids)
    missing = [i.hex() for i in ids if i not in found]
    if missing:
        raise MissingChunk(f"request body chunk {missing[0]} is missing from the db ({len(missing)} missing)")
    return b"".join(decompressor.decompress(found[i]) for i in ids)


def encode_json(value: Any, compressor: Any) -> str | bytes:
    """Metadata JSON (headers, arrival timings, fingerprints): text when short, a zstd frame when long."""
    text = json.dumps(value, separators=(",", ":"))
    if len(text) < JSON_COMPRESS_MIN:
        return text
    return compressor.compress(text.encode())


def decode_json(stored: str | bytes | None, decompressor: Any) -> Any:
    if stored is None:
        return None
    if isinstance(stored, bytes):
        stored = decompressor.decompress(stored).decode()
    return json.loads(stored)


LARGE_BODY = 4 * 1024 * 1024
"""Responses above this are compressed as they stream in and replayed by streaming decompression, so the
proxy holds their compressed form only (a tenth of the size for SSE), never the whole raw body."""
TAIL_BYTES = 8192
STORE_LIMIT = 256 * 1024 * 1024
"""The most of one response a record run keeps to store: past it (an endless or huge upstream stream) the
client still gets every byte, and nothing is stored (a cut recording would replay as a broken answer)."""


class ResponseSpool:
    """A response being recorded: small bodies kept as they are, large ones compressed as chunks arrive."""

    def __init__(self, threshold: int = LARGE_BODY, level: int = 3, limit: int | None = None) -> None:
        self.threshold = threshold
        self.level = level
        self.limit = STORE_LIMIT if limit is None else limit
        self.dropped = False
        """Past `limit`: nothing is kept (memory stays bounded), and the response is not stored."""
        self.size = 0
        self.tail = b""
        """The last bytes seen, enough to tell how a stream ended."""
        self._parts: list[bytes] = []
        self._compressor: Any = None
        self._frame: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.size += len(data)
        self.tail = (self.tail + data)[-TAIL_BYTES:]
        if self.dropped:
            return
        if self.size > self.limit:
            self.dropped = True
            self._parts, self._frame, self._compressor = [], [], None
            return
        if self._compressor is not None:
            self._frame.append(self._compressor.compress(data))
            return
        self._parts.append(data)
        if self.size > self.threshold:
            self._compressor = zstandard.ZstdCompressor(
                level=self.level, write_content_size=False
            ).compressobj()
            self._frame = [self._compressor.compress(part) for part in self._parts]
            self._parts = []

    @property
    def large(self) -> bool:
        return self._compressor is not None

    def body(self) -> bytes:
        """The whole body of a small response (empty for a large one: use `frame`)."""
        return b"".join(self._parts)

    def frame(self) -> bytes | None:
        """The finished zstd frame of a large response, or None for a small one."""
        if self._compressor is None:
            return None
        self._frame.append(self._compressor.flush())
        self._compressor = zstandard.ZstdCompressor(
            level=self.level
        ).compressobj()  # finished: no more writes
        frame = b"".join(self._frame)
        self._frame = [frame]
        return frame
