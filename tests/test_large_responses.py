"""A large recorded response is screened for secrets and compressed in the worker process, not in a thread of
the proxy's (issue 23): what is stored is byte for byte what screening and saving in the process store."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest
from claude_vcr.catalog import Catalog
from claude_vcr.compression import ResponseSpool
from claude_vcr.proxy.offload import IN_PROCESS_BYTES, Offload
from claude_vcr.records import Recording
from claude_vcr.redact import screen
from claude_vcr.store import Store

from tests.support.cassettes import recording
from tests.support.client import MESSAGES, body, post
from tests.support.secret_corpus import fake_secrets

FIXTURES = Path(__file__).parent / "data" / "sdk-streaming-fixtures"
SECRET = dict(fake_secrets())["anthropic-key"]


def grown(name: str, size: int, secrets: str) -> bytes:
    """A real SDK stream fixture, its text deltas repeated until the body is about `size` bytes; `secrets`:
    "none", "whole" (one inside a delta) or "split" (one cut across two deltas) plus one whole."""
    text = (FIXTURES / name).read_text()
    events = text.split("\n\n")
    deltas = [e for e in events if '"text_delta"' in e]
    assert deltas, name
    first = events.index(deltas[0])
    times = max(1, size // sum(len(d) + 2 for d in deltas))
    middle = (deltas * times)[: times * len(deltas)]

    def delta(piece: str) -> str:
        payload = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}
        return "event: content_block_delta\ndata: " + json.dumps(payload, separators=(",", ":"))

    at = len(middle) // 2
    if secrets in ("whole", "split"):
        middle.insert(at, delta(f" my key is {SECRET} ok"))
    if secrets == "split":
        middle[at + 1 : at + 1] = [delta(f" and {SECRET[:20]}"), delta(f"{SECRET[20:]} again")]
    return "\n\n".join(events[:first] + middle + events[first + len(deltas) :]).encode()


def recorded(response: bytes) -> Recording:
    """A streamed recording holding `response` as the proxy holds it: whole, or a frame past 4 MB."""
    spool = ResponseSpool()
    for start in range(0, len(response), 65536):
        spool.write(response[start : start + 65536])
    base = recording(1, stream=True)
    return dataclasses.replace(
        base,
        response_body=spool.body(),
        response_frame=spool.frame(),
        response_length=spool.size,
        response_headers=[("content-type", "text/event-stream; charset=utf-8")],
    )


CASES = [
    ("basic_response.txt", 200_000, "none"),
    ("basic_response.txt", 200_000, "whole"),
    ("basic_response.txt", 1_500_000, "split"),
    ("extra_fields_response.txt", 5_000_000, "split"),  # past 4 MB: kept as a frame while it streams in
]


@pytest.fixture(scope="module")
def offload():
    found = Offload()
    yield found
    asyncio.run(found.close())


@pytest.mark.parametrize("redact", [False, True], ids=["as sent", "--redact"])
@pytest.mark.parametrize(("name", "size", "secrets"), CASES, ids=[f"{c[1]}-{c[2]}" for c in CASES])
def test_a_response_screened_in_the_worker_is_stored_as_screened_in_process(
    tmp_path, offload, name, size, secrets, redact
):
    response = grown(name, size, secrets)
    assert len(response) > IN_PROCESS_BYTES
    stored = {}
    for where in ("in process", "in the worker"):
        item = recorded(response)
        scan = None
        if where == "in the worker":
            scan = asyncio.run(offload.scan_response(item, redact))
            assert scan is not None
        screened = screen(item, redact=redact, response=scan)
        db = tmp_path / f"{where}.db"
        with Store(db) as store:
            saved = store.save(item)
        conn = sqlite3.connect(db)
        row = conn.execute("SELECT response_body, response_size, stored_size FROM recordings").fetchone()
        conn.close()
        with Catalog.open(db) as catalog:
            body = catalog.detail(saved.id).response_body
        stored[where] = (row, dict(screened.kinds), screened.redacted, body)
    assert stored["in the worker"] == stored["in process"]
    row, kinds, redacted, body = stored["in the worker"]
    expected = {"none": 0, "whole": 1, "split": 2}[secrets]
    assert sum(kinds.values()) == expected and redacted == (redact and expected > 0)
    assert (SECRET.encode() in body) == (expected > 0 and not redact)
    assert (SECRET[20:].encode() in body) == (expected > 0 and not redact)  # the split one's second half too
    if not redact or not expected:
        assert body == response


def test_a_small_response_is_screened_where_it_is(offload):
    item = recording(1, stream=True)
    assert asyncio.run(offload.scan_response(item, True)) is None


def test_a_large_answer_recorded_through_the_proxy_is_screened_in_the_worker_and_replays(proxy, db_path):
    recorder = proxy(mode="record", redact=True)
    request = json.dumps(body("HUGE:1 a long answer", stream=True)).encode()
    status, headers, answer = post(recorder.url + MESSAGES, request)
    assert status == 200 and headers["x-vcr-outcome"] == "recording"
    assert len(answer) > IN_PROCESS_BYTES and b"message_stop" in answer
    assert recorder.running.proxy.offload.started  # the request is small: only the answer went there
    recorder.stop()
    replayer = proxy(mode="replay")
    status, headers, replayed = post(replayer.url + MESSAGES, request)
    assert status == 200 and headers["x-vcr-outcome"] == "hit"
    assert replayed == answer
