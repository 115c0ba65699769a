"""Every byte a db holds, zstd frames decompressed: what a secret-free check searches."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import zstandard
from claude_vcr.compression import decompressor as dictionary_decompressor

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def every_value(db: Path) -> bytes:
    """All cells of all tables joined, each zstd frame (whole or streamed) decompressed."""
    decompressor = dictionary_decompressor()  # the db's frames are made with the shipped dictionary
    out: list[bytes] = []
    conn = sqlite3.connect(db)
    try:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                for cell in row:
                    if isinstance(cell, bytes):
                        out.append(cell)
                        try:
                            out.append(decompressor.decompressobj().decompress(cell))
                        except zstandard.ZstdError:
                            # a cell that is a zstd frame must open, or the scan would pass reading nothing
                            assert not cell.startswith(ZSTD_MAGIC), f"an undecodable zstd frame in {table}"
                    elif cell is not None:
                        out.append(str(cell).encode())
    finally:
        conn.close()
    return b"\n".join(out)
