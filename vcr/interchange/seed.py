"""The seed tool's cassette directories, both ways: what `vcr_manager.py` and its proxy read and write.

    DIR/<cassette>/index.json                      {"version", "cassette", "recordings": {<hash>: {...}}}
    DIR/<cassette>/recordings/<hash>.request.json  the request body (JSON)
    DIR/<cassette>/recordings/<hash>.response.bin  the response bytes, exactly
    DIR/<cassette>/recordings/<hash>.meta.json     url, method, headers, status, recorded_at, duration

Export writes that layout with our key as <hash> (`<key>-<N>` for the Nth repeat of a request) and adds a
`vcr` object to index.json and to each meta.json holding everything else the db has (header lists, chunk
timings, key scheme, rules, ordinal, fingerprints, meta), so db -> directory -> db is lossless. Import reads our
exports back exactly, and directories the seed's own tools wrote (these three files, or the single
`<hash>.json` with base64 content of the seed's proxy): keys are recomputed with our scheme under the
cassette's rules, the seed's cache key is kept in the recording's meta, and secrets in its headers are
dropped as recording drops them.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .. import __version__
from ..catalog import Catalog
from ..errors import FormatError, InvalidInput, NotFound
from ..headers import for_storage
from ..names import validate_cassette_name
from ..records import Recording, UnstoredAnswer, timestamp
from ..secrets import redact_target
from ..untrusted import StoredValueError
from .files import is_directory, is_file, make_directory, plain_name, read_file, stored_key, write_file

if TYPE_CHECKING:
    from ..interchange.recorder import ImportReport, ImportRun
    from ..store import Store

FORMAT = 1
"""Version of the `vcr` objects this module writes; a newer one is refused on import."""
SEED_INDEX_VERSION = "1.0"
SUFFIXES = (".request.json", ".response.bin", ".meta.json")
_STEM = re.compile(r"^[0-9a-f]{64}(-[0-9]+)?$")
"""The stems an export writes: `<key>` or `<key>-<ordinal>`."""


@dataclass
class ExportReport:
    cassettes: int
    recordings: int
    directory: Path


def _seed_time(created_at: str) -> str:
    """Our UTC `...Z` stamp in a form `datetime.fromisoformat` reads on every Python (3.10 has no `Z`)."""
    return created_at[:-1] + "+00:00" if created_at.endswith("Z") else created_at


def _our_time(recorded_at: Any) -> str | None:
    """A seed `recorded_at` (local time without zone, as `datetime.now().isoformat()` wrote it) in UTC."""
    if not isinstance(recorded_at, str):
        return None
    try:
        moment = datetime.datetime.fromisoformat(recorded_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    return timestamp(moment)


def _write_json(path: Path, value: Any) -> None:
    """As the seed writes its files (indent 2, UTF-8 kept), plus a final newline; never through a link."""
    write_file(path, (json.dumps(value, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def _portable(value: Any) -> Any:
    """A column value as JSON: bytes as {"base64": ...}, everything else as it is."""
    return {"base64": base64.b64encode(value).decode("ascii")} if isinstance(value, bytes) else value


def _restored(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"base64"}:
        return base64.b64decode(value["base64"])
    return value


def _stem(detail: Recording) -> str:
    s = detail.row
    return s.key if s.ordinal == 0 else f"{s.key}-{s.ordinal}"


def _is_json_object(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body), dict)
    except (ValueError, UnicodeDecodeError):
        return False


def export_directory(
    catalog: Catalog, directory: str | Path, cassettes: list[str] | None = None, *, replace: bool = False
) -> ExportReport:
    """Write cassettes (all, or those named) to `directory` in the seed's layout, one subdirectory each.

    A cassette directory that already holds files is refused unless `replace`, which first removes the
    layout's own files there (index.json and recordings/*.request.json, .response.bin, .meta.json, .json).
    """
    directory = Path(directory)
    names = cassettes if cassettes else catalog.cassette_names()
    where = getattr(catalog, "path", None) or "the db"
    infos = [catalog.cassette_info(name) for name in names]  # unknown names fail before anything is written
    for info in infos:  # a db from git is untrusted: its names become paths
        plain_name(info.name, "cassette name", where)
        for row in catalog.recordings(info.name):
            stored_key(row.key, f"{where}, cassette {info.name}")
    for info in infos:
        target = directory / info.name
        if is_directory(target) and any(target.iterdir()):
            if not replace:
                raise InvalidInput(f"{target} already exists and is not empty; use --replace to overwrite it")
            _remove_layout(target)
    directory.mkdir(parents=True, exist_ok=True)
    written = 0
    for info in infos:
        target = directory / info.name
        recordings_dir = target / "recordings"
        make_directory(recordings_dir, directory)
        index: dict[str, Any] = {}
        for detail in catalog.iter_details(info.name):
            stem = _stem(detail)
            index[stem] = _write_recording(recordings_dir, stem, detail)
            written += 1
        _write_json(
            target / "index.json",
            {
                "version": SEED_INDEX_VERSION,
                "cassette": info.name,
                "recordings": index,
                "vcr": {
                    "format": FORMAT,
                    "exported_by": f"claude-vcr {__version__}",
                    "key_scheme": info.key_scheme,
                    "rules_json": info.rules_json,
                    "created_at": info.created_at,
                    "unstored_answers": [note.to_json() for note in catalog.unstored_answers(info.name)],
                },
            },
        )
    return ExportReport(len(infos), written, directory)


def _remove_layout(target: Path) -> None:
    """Only files an export writes: index.json, if it is ours, and in recordings/ the files named as an
    export names them (`<64 hex digits>[-N].request.json`, `.response.bin`, `.meta.json`). Anything else the
    user keeps there stays; a directory without an index.json of ours is refused."""
    index_file = target / "index.json"
    index = _read_json(index_file) if is_file(index_file) else None
    if not isinstance(index, dict) or not isinstance(index.get("vcr"), dict):
        raise InvalidInput(
            f"{target} holds files claude-vcr did not export (no index.json of ours); --replace removes only "
            "what an export wrote: pick another directory or empty this one"
        )
    recordings_dir = target / "recordings"
    if is_directory(recordings_dir):
        for path in recordings_dir.iterdir():
            stem = next((path.name[: -len(s)] for s in SUFFIXES if path.name.endswith(s)), None)
            if stem is not None and _STEM.match(stem) and not path.is_dir():
                path.unlink()  # a link is removed itself, never what it points at
    index_file.unlink()


def _lexists(path: Path) -> bool:
    try:
        path.lstat()
    except FileNotFoundError:
        return False
    return True


def _write_recording(recordings_dir: Path, stem: str, detail: Recording) -> dict[str, Any]:
    """The three files of one recording; returns its index entry."""
    s = detail.row
    exact_request = _is_json_object(detail.request_body)
    write_file(recordings_dir / f"{stem}.request.json", detail.request_body if exact_request else b"{}\n")
    write_file(recordings_dir / f"{stem}.response.bin", detail.response_body)
    recorded_at = _seed_time(s.created_at)
    vcr: dict[str, Any] = {
        "format": FORMAT,
        "cassette": s.cassette,
        "key": s.key,
        "ordinal": s.ordinal,
        "key_scheme": detail.key_scheme,
        "method": s.method,
        "path": s.path,
        "model": s.model,
        "stream": s.stream,
        "status": s.status,
        "created_at": s.created_at,
        "duration_ms": detail.duration_ms,
        "ttfb_ms": detail.ttfb_ms,
        "request_headers": [list(h) for h in detail.request_headers],
        "response_headers": [list(h) for h in detail.response_headers],
        "chunks": [list(c) for c in detail.timings],  # the layout's name for the arrival timings
        "summary": detail.fingerprints,  # the layout's name for the fingerprints
        "meta": detail.meta,
        "request_size": s.request_size,
        "response_size": s.response_size,
    }
    if detail.extra:
        vcr["columns"] = {name: _portable(value) for name, value in sorted(detail.extra.items())}
    if not exact_request:
        vcr["request_body_base64"] = base64.b64encode(detail.request_body).decode("ascii")
    _write_json(
        recordings_dir / f"{stem}.meta.json",
        {
            "cache_key": stem,
            "url": s.path,
            "method": s.method,
            "request_headers": dict(detail.request_headers),
            "response_headers": dict(detail.response_headers),
            "status_code": s.status,
            "recorded_at": recorded_at,
            "duration": (detail.duration_ms or 0) / 1000,
            "vcr": vcr,
        },
    )
    return {
        "cache_key": stem,
        "model": s.model,
        "recorded_at": recorded_at,
        "request_size": s.request_size,
        "response_size": s.response_size,
        "stream": s.stream,
        "status_code": s.status,
    }


# --- import ------------------------------------------------------------------------------------------


def cassette_directories(directory: str | Path) -> list[Path]:
    """`directory` itself if it is one cassette (has index.json), else its subdirectories that are."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InvalidInput(f"{directory} is not a directory")
    if is_file(directory / "index.json"):
        return [directory]
    found = sorted(p for p in directory.iterdir() if is_directory(p) and is_file(p / "index.json"))
    if not found:
        raise FormatError(
            f"{directory} holds no cassettes: expected <cassette>/index.json (the seed's layout) in it"
        )
    return found


def _read_json(path: Path) -> Any:
    try:
        return json.loads(read_file(path))
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise FormatError(f"cannot read {path}: {error}") from error


def import_directory(
    store: Store, directory: str | Path, cassettes: list[str] | None = None, presets: tuple[str, ...] = ()
) -> ImportReport:
    """Import the cassettes of a seed-layout directory (all, or those named) in one transaction.

    A failure anywhere leaves the db as it was. Each key read replaces that key's older recordings in the
    cassette, as a record run would.
    """
    from ..interchange.recorder import ImportRun

    dirs = cassette_directories(directory)
    if cassettes:
        by_name = {d.name: d for d in dirs}
        missing = [name for name in cassettes if name not in by_name]
        if missing:
            raise NotFound(
                f"no cassette {', '.join(map(repr, missing))} in {directory}; it has: {', '.join(by_name)}"
            )
        dirs = [by_name[name] for name in cassettes]
    run = ImportRun(store, presets)
    with store.transaction():
        for cassette_dir in dirs:
            _import_cassette(run, cassette_dir)
    return run.report


def _import_cassette(run: ImportRun, cassette_dir: Path) -> None:
    name = validate_cassette_name(cassette_dir.name)
    index = _read_json(cassette_dir / "index.json")
    if not isinstance(index, dict) or not isinstance(index.get("recordings", {}), dict):
        raise FormatError(f"{cassette_dir / 'index.json'} is not a cassette index (no 'recordings' object)")
    ours = index.get("vcr")
    if isinstance(ours, dict):
        _check_format(ours, cassette_dir / "index.json")
        run.store.ensure_cassette(
            name,
            key_scheme=ours.get("key_scheme") or "",
            rules_json=ours.get("rules_json"),
            created_at=ours.get("created_at"),
        )
    entries = list(_entries(cassette_dir, index.get("recordings") or {}))
    # The seed keeps one recording per key: numbering repeats in recording order mirrors a record run.
    entries.sort(key=lambda entry: (entry.sort_time, entry.stem))
    for entry in entries:
        if entry.skip:
            run.report.skipped[entry.skip] += 1
            continue
        if isinstance(entry.meta.get("vcr"), dict):
            try:
                _import_ours(run, name, entry)
            except (KeyError, ValueError, TypeError) as error:
                raise FormatError(f"{entry.path}: not a recording claude-vcr exported ({error!r})") from error
        else:
            _import_seed(run, name, entry)
    if isinstance(ours, dict):
        _import_notes(run, name, ours.get("unstored_answers"))


def _import_notes(run: ImportRun, cassette: str, notes: Any) -> None:
    """An export's notes of unstored answers, after the cassette's recordings (a note older than a recording
    of its key is not kept, as in the db it came from); a malformed one is counted and left out."""
    for item in notes if isinstance(notes, list) else []:
        try:
            note = UnstoredAnswer.decode(
                (cassette, stored_key(item["key"], "note"), item["status"], item.get("error_type"), item["noted_at"])
            )
        except (KeyError, TypeError, FormatError, StoredValueError):
            run.report.skipped["malformed note of an unstored answer"] += 1
            continue
        run.store.note_unstored(note)


def _check_format(block: dict[str, Any], where: Path) -> None:
    version = block.get("format")
    if not isinstance(version, int) or version > FORMAT:
        raise FormatError(
            f"{where} was written by a newer claude-vcr (format {version!r}); upgrade to import it"
        )


@dataclass
class _Entry:
    """One index entry with its files read (or the reason it is skipped)."""

    stem: str
    info: dict[str, Any]
    meta: dict[str, Any]
    request_body: bytes
    response_body: bytes
    response_headers: list[tuple[str, str]] | None
    path: Path
    """The file the entry's metadata came from, for messages."""
    skip: str | None = None

    @property
    def sort_time(self) -> str:
        vcr = self.meta.get("vcr")
        if isinstance(vcr, dict) and isinstance(vcr.get("created_at"), str):
            return vcr["created_at"]
        return _our_time(self.meta.get("recorded_at") or self.info.get("recorded_at")) or ""


def _entries(cassette_dir: Path, index: dict[str, Any]) -> Iterator[_Entry]:
    recordings_dir = cassette_dir / "recordings"
    if _lexists(recordings_dir) and not is_directory(recordings_dir):
        raise FormatError(f"{recordings_dir} is not a directory (a link?); imports stay inside {cassette_dir}")
    for stem, info in index.items():
        if not isinstance(info, dict):
            info = {}
        plain_name(stem, "recording name", cassette_dir / "index.json")
        single = recordings_dir / f"{stem}.json"
        response_file = recordings_dir / f"{stem}.response.bin"
        if not is_file(response_file) and is_file(single):
            yield _single_file_entry(stem, info, single)
            continue
        meta_file = recordings_dir / f"{stem}.meta.json"
        meta = _read_json(meta_file) if is_file(meta_file) else {}
        if not isinstance(meta, dict):
            raise FormatError(f"{meta_file} is not a JSON object")
        if not is_file(response_file):
            yield _Entry(stem, info, meta, b"", b"", None, meta_file, skip="no response file")
            continue
        response_body = read_file(response_file)
        request_file = recordings_dir / f"{stem}.request.json"
        vcr = meta.get("vcr")
        if isinstance(vcr, dict) and "request_body_base64" in vcr:
            request_body = base64.b64decode(vcr["request_body_base64"])
        elif is_file(request_file):
            request_body = read_file(request_file)
        else:
            yield _Entry(stem, info, meta, b"", response_body, None, meta_file, skip="no request file")
            continue
        headers = meta.get("response_headers")
        yield _Entry(stem, info, meta, request_body, response_body, _header_list(headers), meta_file)


def _single_file_entry(stem: str, info: dict[str, Any], path: Path) -> _Entry:
    """The seed proxy's own format: one `<hash>.json` with meta, request and base64 response content."""
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("response"), dict):
        raise FormatError(f"{path} is not a seed recording (no 'response' object)")
    response = data["response"]
    meta = dict(data.get("meta") or {})
    meta.setdefault("status_code", response.get("status_code"))
    try:
        body = base64.b64decode(response.get("content") or "", validate=True)
    except ValueError as error:
        raise FormatError(f"{path}: response content is not base64 ({error})") from error
    request = data.get("request")
    request_body = json.dumps(request, ensure_ascii=False).encode() if request is not None else b""
    return _Entry(stem, info, meta, request_body, body, _header_list(response.get("headers")), path)


def _header_list(headers: Any) -> list[tuple[str, str]] | None:
    """Seed files keep headers as a dict; ours as [name, value] pairs (order and repeats kept)."""
    if isinstance(headers, dict):
        return [(str(k), str(v)) for k, v in headers.items()]
    if isinstance(headers, list):
        return [(str(pair[0]), str(pair[1])) for pair in headers if isinstance(pair, list) and len(pair) == 2]
    return None


def _import_ours(run: ImportRun, cassette: str, entry: _Entry) -> None:
    """A recording claude-vcr exported: every column restored as it was."""
    vcr = entry.meta["vcr"]
    _check_format(vcr, entry.path)
    stored_key(vcr.get("key"), entry.path)  # it names files when this cassette is exported again
    ordinal = run.claim(cassette, vcr["key"], int(vcr.get("ordinal", 0)))
    recording = Recording(
        cassette=cassette,
        key=vcr["key"],
        key_scheme=vcr.get("key_scheme", ""),
        method=vcr["method"],
        path=redact_target(vcr["path"]),
        status=int(vcr["status"]),
        request_headers=for_storage(_header_list(vcr.get("request_headers")) or []),
        request_body=entry.request_body,
        response_headers=for_storage(_header_list(vcr.get("response_headers")) or []),
        response_body=entry.response_body,
        timings=[(int(size), float(ms)) for size, ms in vcr.get("chunks") or []],
        model=vcr.get("model"),
        stream=bool(vcr.get("stream")),
        ordinal=ordinal,
        created_at=vcr["created_at"],
        duration_ms=vcr.get("duration_ms"),
        ttfb_ms=vcr.get("ttfb_ms"),
        fingerprints=vcr.get("summary"),
        meta=vcr.get("meta"),
        extra={name: _restored(value) for name, value in (vcr.get("columns") or {}).items()},
    )
    run.save(recording, keyed_here=False)


def _import_seed(run: ImportRun, cassette: str, entry: _Entry) -> None:
    """A recording the seed's tool wrote: our key recomputed, theirs kept in meta."""
    meta, info = entry.meta, entry.info
    method = str(meta.get("method") or "POST").upper()
    url = meta.get("url")
    target = "/v1/messages"
    if isinstance(url, str) and url:
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    status = meta.get("status_code", info.get("status_code", 200))
    headers = entry.response_headers
    keyed = None
    if headers is None:  # the seed's meta.json may lack them: say what the bytes are
        keyed = run.key(cassette, method, redact_target(target), entry.request_body)
        kind = "text/event-stream; charset=utf-8" if keyed.wants_stream else "application/json"
        headers = [("content-type", kind)]
    duration = meta.get("duration")
    recorded_at = meta.get("recorded_at") or info.get("recorded_at")
    provenance: dict[str, Any] = {"imported_from": "seed", "seed_key": meta.get("cache_key") or entry.stem}
    if isinstance(url, str):
        provenance["seed_url"] = url
    if isinstance(recorded_at, str):
        provenance["seed_recorded_at"] = recorded_at
    if isinstance(meta.get("imported_from"), str):
        provenance["seed_imported_from"] = meta["imported_from"]
    run.record(
        cassette,
        method,
        target,
        (_header_list(meta.get("request_headers")) or [], entry.request_body),
        (int(status) if isinstance(status, int) else 200, headers, entry.response_body),
        meta=provenance,
        created_at=_our_time(recorded_at),
        duration_ms=duration * 1000 if isinstance(duration, (int, float)) and duration > 0 else None,
        keyed=keyed,
    )
