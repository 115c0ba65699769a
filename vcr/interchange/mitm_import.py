"""Turn a mitmproxy dump (`mitmdump -w`) into recordings, as if the traffic had gone through `serve --mode record`.

The dump is read as a stream (one flow in memory at a time) inside one transaction, so memory stays flat
whatever the file size and a truncated or foreign file leaves the db as it was. Bodies are stored decoded
(mitmproxy keeps them as sent, gzip and all); headers go through the same filter as recording, so no
credential in a dump reaches the db.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from ..interchange.mitm import ContentDecodingError, MitmFlow, decode_content, read_flows
from ..interchange.recorder import ImportReport, ImportRun
from ..records import timestamp
from ..storable import by_status

if TYPE_CHECKING:
    from ..store import Store

API_PREFIX = "/v1/"
"""The Anthropic API's paths (messages, count_tokens, models, ...); telemetry and the rest need --all-paths."""

SKIP_NOT_HTTP = "not an HTTP flow"
SKIP_PATH = "not an API path (use --all-paths)"
SKIP_NO_RESPONSE = "no response (connection error)"
SKIP_NO_BODY = "body not kept by mitmproxy (stream_large_bodies)"
SKIP_STATUS = "transient error: 429, 5xx or a stream that broke off (use --record-errors)"
SKIP_UNDECODABLE = "body not decodable"


def _timestamp(seconds: float | None) -> str | None:
    """A flow's epoch seconds as our created_at: ISO 8601 UTC with milliseconds."""
    if seconds is None:
        return None
    return timestamp(datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc))


def import_dump(
    store: Store,
    stream: BinaryIO,
    cassette: str,
    *,
    all_paths: bool = False,
    record_errors: bool = False,
    presets: tuple[str, ...] = (),
    source: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import every usable HTTP flow of a dump into `cassette`; `progress(bytes_read)` is called per flow.

    Raises `MitmFormatError` (which counts the flows read) for a file that is not, or not wholly, a dump;
    then nothing is imported.
    """
    run = ImportRun(store, presets, record_errors=record_errors)
    with store.transaction():
        for flow in read_flows(stream):
            run.report.flows += 1
            reason = _import_flow(run, flow, cassette, all_paths, source)
            if reason:
                run.report.skipped[reason] += 1
            if progress is not None:
                progress(_position(stream, flow.offset))
    return run.report


def _import_flow(
    run: ImportRun, flow: MitmFlow, cassette: str, all_paths: bool, source: str | None
) -> str | None:
    """Store one flow; returns why it was skipped, or None."""
    request, response = flow.request, flow.response
    if flow.type != "http" or request is None or flow.is_websocket:
        return SKIP_NOT_HTTP
    target = request.path or "/"
    if not all_paths and not target.startswith(API_PREFIX):
        return SKIP_PATH
    if response is None:
        return SKIP_NO_RESPONSE
    if request.content is None or response.content is None:
        return SKIP_NO_BODY
    if not by_status(response.status_code, record_errors=run.record_errors).store:
        return SKIP_STATUS
    try:
        request_body = decode_content(request.headers, request.content)
        response_body = decode_content(response.headers, response.content)
    except ContentDecodingError:
        return SKIP_UNDECODABLE
    if not run.storable(response.status_code, response.headers, response_body).store:
        return SKIP_STATUS
    started = request.timestamp_start
    meta = {"imported_from": "mitm", "flow_id": flow.id}
    if source:
        meta["source"] = Path(source).name
    run.record(
        cassette,
        request.method.upper(),
        target,
        (request.headers, request_body),
        (response.status_code, response.headers, response_body),
        meta=meta,
        created_at=_timestamp(started or flow.timestamp_created),
        duration_ms=_elapsed(started, response.timestamp_end),
        ttfb_ms=_elapsed(started, response.timestamp_start),
    )
    return None


def _elapsed(start: float | None, end: float | None) -> float | None:
    if start is None or end is None or end < start:
        return None
    return round((end - start) * 1000, 3)


def _position(stream: BinaryIO, fallback: int) -> int:
    """How far into the file reading has got (the end of the flow just read), for a progress bar."""
    try:
        return stream.tell()
    except (OSError, ValueError):
        return fallback
