"""How bodies are packed for the db: pure functions, no SQL.

Requests of one session repeat themselves: Claude Code re-sends the same ~40 KB of tools and system prompt
and a growing history in every turn. A request body is cut into content-defined chunks (boundaries chosen
by the bytes around them, so an insertion early in a body moves no later boundary), each stored once under
its hash; the request keeps only the list of chunk ids. The exact bytes are the chunks joined back.

Responses are single zstd frames, optionally against a dictionary trained from the db's own responses;
a frame records the id of its dictionary, so reading needs nothing else.
"""

from __future__ import annotations

import hashlib
import re
import zlib

import zstandard

CHUNK_ID_BYTES = 16
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
    """A chunk's id: 128 bits of its sha256 (collisions are not a concern at cassette sizes)."""
    return hashlib.sha256(chunk).digest()[:CHUNK_ID_BYTES]


def pack_ids(ids: list[bytes]) -> bytes:
    return b"".join(ids)


def unpack_ids(packed: bytes) -> list[bytes]:
    return [packed[i : i + CHUNK_ID_BYTES] for i in range(0, len(packed), CHUNK_ID_BYTES)]


def frame_dictionary_id(frame: bytes) -> int:
    """The dictionary a zstd frame was written with (0 for none)."""
    return zstandard.get_frame_parameters(frame).dict_id


def train_dictionary(samples: list[bytes], size: int = 16 * 1024) -> zstandard.ZstdCompressionDict | None:
    """A zstd dictionary from a db's own responses, or None when there is too little to learn from."""
    samples = [s for s in samples if s]
    if len(samples) < 8 or sum(map(len, samples)) < 4 * size:
        return None
    try:
        return zstandard.train_dictionary(size, samples, level=19)
    except zstandard.ZstdError:
        return None
