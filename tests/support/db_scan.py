"""Every byte a db holds, zstd frames decompressed: what a secret-free check searches."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import zstandard


def every_value(db: Path) -> bytes:
    """All cells of all tables joined, each zstd frame (whole or streamed) decompressed."""
    decompressor = zstandard.ZstdDecompressor()
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
                            pass
                    elif cell is not None:
                        out.append(str(cell).encode())
    finally:
        conn.close()
    return b"\n".join(out)
