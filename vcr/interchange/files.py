"""Files of a directory someone else wrote: read and written without ever reaching outside it.

A shared cassette directory (or a db that arrived through git) is untrusted: its files may be symlinks to
`/etc/passwd` or `/proc/self/environ`, devices or fifos, huge, and the names in it or in the db (cassette
names, keys, stems) may hold `../`. Import reads only regular files that are not links, under a size cap;
every name that becomes a path is checked when it is read; export never follows a link it finds.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from ..errors import FormatError, InvalidInput

MAX_FILE_BYTES = 256 * 1024 * 1024
"""The largest file an import reads (a response body; the API's own request limit is 32 MB)."""

_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}")
_KEY = re.compile(r"[0-9a-f]{64}")
"""Both matched whole (`fullmatch`): `$` also matches before a trailing newline, so `base\n` passed."""


def plain_name(name: object, what: str, where: object) -> str:
    """A name that may become one path component: letters, digits, `_ . -`, no leading dot, no `..`."""
    if not isinstance(name, str) or not _PLAIN.fullmatch(name) or ".." in name:
        raise FormatError(
            f"{where}: {name!r} is not a valid {what} (it would name a path outside the directory)"
        )
    return name


def stored_key(key: object, where: object) -> str:
    """A recording key as we write them: 64 lowercase hex digits (it names files on export)."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise FormatError(f"{where}: {key!r} is not a recording key (64 hex digits)")
    return key


def _refuse_link(path: Path) -> os.stat_result | None:
    """The path's own stat, or None when it does not exist; a symlink is refused."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise FormatError(f"cannot read {path}: {error.strerror or error}") from error
    if stat.S_ISLNK(info.st_mode):
        raise FormatError(
            f"{path} is a symbolic link; claude-vcr never follows links in a cassette directory"
        )
    return info


def is_file(path: Path) -> bool:
    """Whether `path` is there; a link, device, fifo or socket there is refused rather than read."""
    info = _refuse_link(path)
    if info is None:
        return False
    if not stat.S_ISREG(info.st_mode):
        raise FormatError(f"{path} is not a regular file; imports read only regular files")
    return True


def is_directory(path: Path) -> bool:
    """Whether `path` is a real directory (a link to one is refused: it could lead anywhere)."""
    info = _refuse_link(path)
    return info is not None and stat.S_ISDIR(info.st_mode)


def read_file(path: Path, limit: int | None = None) -> bytes:
    """A regular file's bytes: never through a link, never a device or fifo, never more than `limit`
    (default `MAX_FILE_BYTES`)."""
    limit = MAX_FILE_BYTES if limit is None else limit
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as error:
        if os.path.islink(path):
            raise FormatError(
                f"{path} is a symbolic link; imports read only regular files inside the directory"
            ) from error
        raise FormatError(f"cannot read {path}: {error.strerror or error}") from error
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise FormatError(f"{path} is not a regular file; imports read only regular files")
        if info.st_size > limit:
            raise FormatError(f"{path} is {info.st_size:,} bytes, over the import limit of {limit:,} bytes")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise FormatError(f"{path} is over the import limit of {limit:,} bytes")
    return data


def inside(path: Path, root: Path) -> Path:
    """`path` itself, once it is checked to lie inside `root` (after resolving what exists of both)."""
    resolved_root = root.resolve()
    resolved = path.resolve()
    if resolved != resolved_root and resolved_root not in resolved.parents:
        raise InvalidInput(f"{path} would be outside {root}; nothing was written")
    return path


def make_directory(path: Path, root: Path) -> None:
    """Create `path` (and parents) inside `root`; an existing link on the way is refused."""
    inside(path, root)
    current = root
    for part in path.relative_to(root).parts:
        current = current / part
        info = _lstat(current)
        if info is None:
            current.mkdir()
        elif stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
            raise InvalidInput(f"{current} is not a directory (a link or a file); nothing was written there")


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except FileNotFoundError:
        return None


def write_file(path: Path, data: bytes) -> None:
    """Write a file, replacing a regular file of that name; a link or anything else there is refused."""
    info = _lstat(path)
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise InvalidInput(f"{path} exists and is not a regular file (a link?); nothing was written there")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
