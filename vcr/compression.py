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
import itertools
import json
import re
import zlib
from typing import Any, NamedTuple

import zstandard

from .errors import DatabaseError

COMPRESSION_LEVEL = 12
"""With the dictionary, level 12 gives ~10% smaller SSE answers than level 3, ~3.5 ms for a 25 KB answer on
the recording thread; level 19 gains 3% more at 12 ms. Bodies over LARGE_BODY stream in at level 3."""
CHUNK_LEVEL = 19
"""A request chunk is written once per db and is at most MAX_CHUNK (16 KB, ~8 ms at level 19); a Claude Code
session writes one to three new ones a turn, so the smallest form is worth its time."""


def dictionary() -> zstandard.ZstdCompressionDict:
    """The shipped zstd dictionary (vcr/zstd_dictionary.py), loaded once: every body frame may need it."""
    global _DICTIONARY
    if _DICTIONARY is None:
        import base64

        from .zstd_dictionary import DICTIONARY_BASE64, DICTIONARY_ID

        loaded = zstandard.ZstdCompressionDict(base64.b64decode("".join(DICTIONARY_BASE64)))
        if loaded.dict_id() != DICTIONARY_ID:
            raise ImportError(f"the shipped zstd dictionary is damaged (id {loaded.dict_id()}, not {DICTIONARY_ID})")
        _DICTIONARY = loaded
    return _DICTIONARY


_DICTIONARY: zstandard.ZstdCompressionDict | None = None


def compressor(level: int = COMPRESSION_LEVEL) -> zstandard.ZstdCompressor:
    """How bodies, chunks and long metadata are compressed: each frame alone, against the shared dictionary,
    so a frame holds mostly what is new in it (and git's delta of a commit is mostly new recordings)."""
    return zstandard.ZstdCompressor(level=level, dict_data=dictionary())


def decompressor() -> zstandard.ZstdDecompressor:
    """Reads every frame claude-vcr wrote: with the dictionary, and the older ones without (a frame whose
    dictionary id is 0 ignores the dictionary)."""
    return zstandard.ZstdDecompressor(dict_data=dictionary())


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


BODY_CEILING = 128 * 1024 * 1024
"""No stored body is inflated past this, whatever its row says: the proxy refuses uploads over 64 MB, and
a response this large is far past any the API sends. A db from elsewhere may hold a 32 KB frame that
inflates to 4 GiB; without a ceiling one replay or `show` of it would take gigabytes."""
JSON_CEILING = 32 * 1024 * 1024
"""Metadata JSON (headers, timings, fingerprints, meta) is never inflated or parsed past this."""
_INFLATE_PIECE = 1024 * 1024


class InflateLimit(DatabaseError, ValueError):
    """A stored blob inflates past what its row records or past the hard ceiling: a damaged or hostile db."""

    def __init__(self, message: str) -> None:
        super().__init__(f"{message}: a damaged db, or one made to exhaust memory; refused")


def inflate(decompressor: Any, frame: bytes | None, limit: int = BODY_CEILING, what: str = "a stored body") -> bytes:
    """A whole zstd frame back, also one written as a stream (no content size in its header), refused with
    `InflateLimit` past `limit` bytes: a declared size is checked before anything is allocated, an undeclared
    one is inflated a piece at a time, so a bomb costs at most `limit` bytes."""
    if not frame:
        return b""
    limit = max(0, min(limit, BODY_CEILING))
    declared = zstandard.frame_content_size(frame)  # ZstdError for a damaged header: the edge names the file
    if declared > limit:
        raise InflateLimit(f"{what} (a zstd frame) declares {declared:,} bytes, past its limit of {limit:,}")
    if declared >= 0:
        return decompressor.decompress(frame)  # the frame's own size: allocated once, exactly
    reader = decompressor.stream_reader(frame)
    out = bytearray()  # one growing buffer: a bomb costs `limit` bytes, not twice that
    while True:
        piece = reader.read(min(_INFLATE_PIECE, limit + 1 - len(out)))
        if not piece:
            return bytes(out)
        out += piece
        if len(out) > limit:
            raise InflateLimit(f"{what} inflates past its limit of {limit:,} bytes")


def frame_digest(decompressor: Any, frame: bytes | None, limit: int = BODY_CEILING) -> str:
    """The sha256 of a frame's inflated bytes, read a MB at a time (git's textconv never holds a body),
    refused past `limit` as `inflate` refuses."""
    digest = hashlib.sha256()
    if not frame:
        return digest.hexdigest()
    limit = max(0, min(limit, BODY_CEILING))
    if zstandard.frame_content_size(frame) > limit:
        raise InflateLimit(f"a stored response body declares more than its limit of {limit:,} bytes")
    reader = decompressor.stream_reader(frame)
    total = 0
    while piece := reader.read(_INFLATE_PIECE):
        total += len(piece)
        if total > limit:
            raise InflateLimit(f"a stored response body inflates past its limit of {limit:,} bytes")
        digest.update(piece)
    return digest.hexdigest()


def decompress_frame(decompressor: Any, frame: bytes | None, limit: int = BODY_CEILING) -> bytes:
    """A whole stored response frame back, bounded (see `inflate`)."""
    return inflate(decompressor, frame, limit, "a stored response body")


CHUNKED_CODEC = "chunks"
WHOLE_CODEC = "zstd"
CHUNKING_MIN_BYTES = 4096
"""Smaller bodies are stored whole: a list of chunk ids would not pay for itself."""
JSON_COMPRESS_MIN = 256
_QUERY_BATCH = 500


class PackedChunks(NamedTuple):
    """A request body cut into chunks, each with its id and compressed, before it is saved: for a large body
    the worker process does this (level-19 zstd on every chunk), and the store only writes what it lacks."""

    ends: list[int]
    """Where each chunk ends in the body."""
    ids: list[bytes]
    data: list[bytes]


def pack_chunks(body: bytes) -> PackedChunks | None:
    """The chunks `Store.save` would store for this body; None for a body stored whole."""
    if len(body) < CHUNKING_MIN_BYTES:
        return None
    chunks = split_chunks(body)
    packer = compressor(CHUNK_LEVEL)
    return PackedChunks(
        list(itertools.accumulate(map(len, chunks))),
        [chunk_id(chunk) for chunk in chunks],
        [packer.compress(chunk) for chunk in chunks],
    )


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


REQUEST_CEILING = 64 * 1024 * 1024
"""The proxy refuses request bodies over 64 MB, so no stored request inflates past this."""


def decode_request(
    conn: Any, codec: str | None, blob: bytes | None, decompressor: Any, limit: int = REQUEST_CEILING
) -> bytes:
    """A request body back from its stored form: one zstd frame, or chunk ids to join; never past `limit`
    bytes in all (a chunk inflates to at most `MAX_CHUNK`)."""
    if not blob:
        return b""
    limit = min(limit, REQUEST_CEILING)
    if codec != CHUNKED_CODEC:
        return inflate(decompressor, blob, limit, "a stored request body")
    ids = unpack_ids(blob)
    if len(ids) * MIN_CHUNK > limit + MAX_CHUNK:
        raise InflateLimit(f"a stored request body lists {len(ids):,} chunks, more than its limit of {limit:,} bytes holds")
    found = fetch_chunks(conn, ids)
    missing = [i.hex() for i in ids if i not in found]
    if missing:
        raise MissingChunk(f"request body chunk {missing[0]} is missing from the db ({len(missing)} missing)")
    parts: list[bytes] = []
    total = 0
    for i in ids:
        part = inflate(decompressor, found[i], MAX_CHUNK, "a stored request chunk")
        total += len(part)
        if total > limit:
            raise InflateLimit(f"a stored request body inflates past its limit of {limit:,} bytes")
        parts.append(part)
    return b"".join(parts)


def encode_json(value: Any, compressor: Any) -> str | bytes:
    """Metadata JSON (headers, arrival timings, fingerprints): text when short, a zstd frame when long."""
    text = json.dumps(value, separators=(",", ":"))
    if len(text) < JSON_COMPRESS_MIN:
        return text
    return compressor.compress(text.encode())


def decode_json(stored: str | bytes | None, decompressor: Any, limit: int = JSON_CEILING) -> Any:
    """Metadata JSON back, refused past `limit` bytes (a bomb in `fingerprints` would otherwise cost
    gigabytes on every strict miss)."""
    if stored is None:
        return None
    limit = min(limit, JSON_CEILING)
    if isinstance(stored, bytes):
        stored = inflate(decompressor, stored, limit, "stored metadata JSON").decode()
    elif len(stored) > limit:
        raise InflateLimit(f"stored metadata JSON of {len(stored):,} characters is past its limit of {limit:,}")
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
