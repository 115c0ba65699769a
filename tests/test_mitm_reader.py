"""The mitmproxy dump reader, checked against real `mitmdump -w` captures so format drift is caught."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import subprocess
import sys
import time
import tracemalloc
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zstandard
from aiohttp import web
from claude_vcr.interchange.mitm import (
    ContentDecodingError,
    MitmFlow,
    MitmFormatError,
    decode_content,
    read_flows,
)

from tests.support.loopback import LoopThread, serving
from tests.support.mitm import flow_state, require_mitmdump, start_mitmdump, tnetstring

API_KEY = "sk-ant-test-mitm-0123456789"
STREAM_THRESHOLD = "16k"
"""mitmdump streams (and so does not store) bodies larger than this in the 'streaming' capture."""


# --- a small upstream speaking just enough of the Messages API ----------------------------------------


def _sse_events(events: int, pad: int) -> list[bytes]:
    """Anthropic-shaped SSE events; `pad` bytes of text each make a stream large enough to be streamed."""
    out = [b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_sse"}}\n\n']
    for i in range(events):
        delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"{i}"}}
        if pad:
            delta["delta"]["text"] += "x" * pad
        out.append(f"event: content_block_delta\ndata: {json.dumps(delta)}\n\n".encode())
    out.append(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    return out


MODELS = {"data": [{"id": "claude-test-1", "type": "model"}], "has_more": False}
ENCODED_PAYLOAD = {"id": "msg_encoded", "content": [{"type": "text", "text": "compressed " * 20}]}
ENCODERS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


async def _messages(request: web.Request) -> web.StreamResponse:
    body = await request.json()
    if not body.get("stream"):
        reply = {"id": "msg_json", "type": "message", "model": body.get("model"), "echo": body["messages"]}
        return web.json_response(reply, headers={"request-id": "req_json"})
    response = web.StreamResponse(headers={"content-type": "text/event-stream", "request-id": "req_sse"})
    await response.prepare(request)
    for event in _sse_events(body.get("events", 3), body.get("pad", 0)):
        await response.write(event)
        await asyncio.sleep(0)  # one event per write, as the API streams them
    await response.write_eof()
    return response


async def _models(request: web.Request) -> web.Response:
    return web.json_response(MODELS)


async def _encoded(request: web.Request) -> web.Response:
    coding = request.match_info["coding"]
    data = ENCODERS[coding](json.dumps(ENCODED_PAYLOAD).encode())
    return web.Response(body=data, headers={"content-encoding": coding, "content-type": "application/json"})


async def _upload(request: web.Request) -> web.Response:
    return web.json_response({"received": len(await request.read())})


async def _drop(request: web.Request) -> web.Response:
    assert request.transport is not None
    request.transport.close()  # no response at all: mitmproxy records an error flow
    return web.Response()


class MessagesUpstream:
    """The upstream the mitmdumps stand in front of, served on the loop thread (the clients are synchronous)."""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", _messages)
        app.router.add_get("/v1/models", _models)
        app.router.add_get("/v1/encoded/{coding}", _encoded)
        app.router.add_post("/v1/upload", _upload)
        app.router.add_get("/v1/drop", _drop)
        return app


# --- the capture: the same requests through two differently configured mitmdumps ----------------------

SMALL_SSE = {"events": 4, "pad": 0}
LARGE_SSE = {"events": 40, "pad": 1000}  # about 40 kB, above STREAM_THRESHOLD
UPLOAD = bytes(range(256)) * 128  # 32 KiB request body, above STREAM_THRESHOLD


@dataclass(frozen=True)
class Sent:
    """One request sent through a mitmdump and what the client got back, to compare with the dump."""

    method: str
    path: str
    body: bytes | None
    status: int
    received: bytes


def _requests() -> list[tuple[str, str, bytes | None]]:
    def message(**extra: Any) -> bytes:
        body = {"model": "claude-test-1", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
        return json.dumps({**body, **extra}).encode()

    return [
        ("POST", "/v1/messages?beta=true", message()),
        ("POST", "/v1/messages", message(stream=True, **SMALL_SSE)),
        ("POST", "/v1/messages", message(stream=True, **LARGE_SSE)),
        ("GET", "/v1/models", None),
        ("GET", "/v1/encoded/gzip", None),
        ("GET", "/v1/encoded/deflate", None),
        ("GET", "/v1/encoded/zstd", None),
        ("POST", "/v1/upload", UPLOAD),
        ("GET", "/v1/drop", None),
    ]


def _send(port: int, method: str, path: str, body: bytes | None) -> Sent:
    """urllib with proxies disabled, so a proxy in the environment can never take the request off-host."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method)
    request.add_header("x-api-key", API_KEY)
    request.add_header("anthropic-version", "2023-06-01")
    if body is not None:
        request.add_header("content-type", "application/json")
    try:
        with opener.open(request, timeout=30) as response:
            return Sent(method, path, body, response.status, response.read())
    except urllib.error.HTTPError as exc:
        return Sent(method, path, body, exc.code, exc.read())


@dataclass(frozen=True)
class Capture:
    """A finished dump file and the requests that produced it, in order."""

    dump: Path
    sent: list[Sent]
    upstream_port: int
    mitmdump: str

    def flows(self) -> list[MitmFlow]:
        with self.dump.open("rb") as f:
            return list(read_flows(f))


@pytest.fixture(scope="module")
def captures(loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Capture]]:
    """'plain' has no streaming options (bodies kept); 'streaming' streams bodies above 16 kB (not kept)."""
    exe = require_mitmdump()
    workdir = tmp_path_factory.mktemp("mitm")
    configs = {"plain": [], "streaming": ["--set", f"stream_large_bodies={STREAM_THRESHOLD}"]}
    with serving(loop_thread, MessagesUpstream()) as upstream:
        dumps = {name: start_mitmdump(exe, name, upstream.port, workdir, opts) for name, opts in configs.items()}
        try:
            deadline = time.monotonic() + 60
            for dump in dumps.values():
                dump.wait_ready(deadline)
            sent = {name: [_send(d.port, *req) for req in _requests()] for name, d in dumps.items()}
            for dump in dumps.values():
                dump.stop()
            yield {name: Capture(d.dump, sent[name], upstream.port, exe) for name, d in dumps.items()}
        finally:
            for dump in dumps.values():
                if dump.process.poll() is None:
                    dump.process.kill()
                    dump.process.wait(10)


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in headers if key.lower() == name.lower()), None)


def by_path(flows: list[MitmFlow]) -> dict[str, list[MitmFlow]]:
    out: dict[str, list[MitmFlow]] = {}
    for flow in flows:
        assert flow.request is not None
        out.setdefault(flow.request.path, []).append(flow)
    return out


# --- real dumps --------------------------------------------------------------------------------------


def test_every_request_becomes_one_flow_in_order(captures: dict[str, Capture]) -> None:
    for capture in captures.values():
        flows = capture.flows()
        assert [(f.request.method, f.request.path) for f in flows if f.request] == [
            (s.method, s.path) for s in capture.sent
        ]
        assert all(f.type == "http" and isinstance(f.version, int) and f.version >= 10 for f in flows)
        assert len({f.id for f in flows}) == len(flows)
        assert flows[0].offset == 0 and all(
            a.offset < b.offset for a, b in zip(flows, flows[1:], strict=False)
        )


def test_json_message_request_and_response(captures: dict[str, Capture]) -> None:
    capture = captures["plain"]
    flow = capture.flows()[0]
    sent = capture.sent[0]
    request, response = flow.request, flow.response
    assert request is not None and response is not None
    assert (request.method, request.scheme, request.host, request.port) == (
        "POST",
        "http",
        "127.0.0.1",
        capture.upstream_port,
    )
    assert request.path == "/v1/messages?beta=true"
    assert request.url == f"http://127.0.0.1:{capture.upstream_port}/v1/messages?beta=true"
    assert request.http_version == "HTTP/1.1"
    assert header(request.headers, "x-api-key") == API_KEY
    assert header(request.headers, "anthropic-version") == "2023-06-01"
    assert header(request.headers, "content-type") == "application/json"
    assert request.content == sent.body
    assert (response.status_code, response.reason) == (200, "OK")
    assert header(response.headers, "request-id") == "req_json"
    assert response.content == sent.received
    assert json.loads(decode_content(response.headers, response.content))["echo"] == [
        {"role": "user", "content": "hi"}
    ]
    assert flow.error is None
    assert request.timestamp_start is not None and response.timestamp_end is not None
    assert request.timestamp_start <= (request.timestamp_end or 0) <= response.timestamp_end


def test_get_has_empty_body_not_none(captures: dict[str, Capture]) -> None:
    flow = by_path(captures["plain"].flows())["/v1/models"][0]
    assert flow.request is not None and flow.response is not None
    assert flow.request.method == "GET" and flow.request.content == b""
    assert json.loads(decode_content(flow.response.headers, flow.response.content or b"")) == MODELS


def test_sse_bodies_are_kept_without_streaming_options(captures: dict[str, Capture]) -> None:
    capture = captures["plain"]
    sse = by_path(capture.flows())["/v1/messages"]
    sent = [s for s in capture.sent if s.path == "/v1/messages"]
    for flow, expected, shape in zip(sse, sent, (SMALL_SSE, LARGE_SSE), strict=True):
        assert flow.response is not None
        assert header(flow.response.headers, "content-type") == "text/event-stream"
        assert flow.response.content == expected.received == b"".join(_sse_events(**shape))
        assert flow.response.content.count(b"event: content_block_delta") == shape["events"]
    upload = by_path(capture.flows())["/v1/upload"][0]
    assert upload.request is not None and upload.request.content == UPLOAD


def test_streamed_bodies_are_reported_as_none(captures: dict[str, Capture]) -> None:
    capture = captures["streaming"]
    flows = by_path(capture.flows())
    small, large = flows["/v1/messages"]
    assert small.response is not None and small.response.content == b"".join(_sse_events(**SMALL_SSE))
    assert large.response is not None and large.response.status_code == 200
    assert large.response.content is None, "a body streamed past stream_large_bodies is not stored"
    sent_large = [s for s in capture.sent if s.path == "/v1/messages"][1]
    assert sent_large.received == b"".join(_sse_events(**LARGE_SSE)), "the client still got it all"
    upload = flows["/v1/upload"][0]
    assert upload.request is not None and upload.request.content is None
    assert upload.response is not None and json.loads(upload.response.content or b"") == {
        "received": len(UPLOAD)
    }


@pytest.mark.parametrize("coding", sorted(ENCODERS))
def test_encoded_bodies_are_stored_as_sent_and_decode(captures: dict[str, Capture], coding: str) -> None:
    flow = by_path(captures["plain"].flows())[f"/v1/encoded/{coding}"][0]
    assert flow.response is not None and flow.response.content is not None
    assert header(flow.response.headers, "content-encoding") == coding
    with pytest.raises(ValueError):
        json.loads(flow.response.content)
    assert json.loads(decode_content(flow.response.headers, flow.response.content)) == ENCODED_PAYLOAD


def test_upstream_failure_is_an_error_flow_without_response(captures: dict[str, Capture]) -> None:
    for capture in captures.values():
        flow = by_path(capture.flows())["/v1/drop"][0]
        assert flow.response is None
        assert flow.error, "mitmproxy's error message is kept"
        assert capture.sent[-1].status == 502


MITMPROXY_VIEW = r"""
import base64, json, sys
from mitmproxy.io import FlowReader

def hs(headers):
    return [[k.decode("latin-1"), v.decode("latin-1")] for k, v in headers.fields]

def body(content):
    return None if content is None else base64.b64encode(content).decode()

out = []
with open(sys.argv[1], "rb") as f:
    for fl in FlowReader(f).stream():
        r, s = fl.request, fl.response
        out.append({
            "id": fl.id, "type": fl.type, "error": fl.error.msg if fl.error else None,
            "request": [r.method, r.scheme, r.host, r.port, r.authority, r.path, r.http_version,
                        hs(r.headers), body(r.raw_content), r.timestamp_start, r.timestamp_end],
            "response": None if s is None else [s.status_code, s.reason, s.http_version, hs(s.headers),
                                                body(s.raw_content), s.timestamp_start, s.timestamp_end],
        })
json.dump(out, sys.stdout)
"""


def _as_view(flow: MitmFlow) -> dict[str, Any]:
    import base64

    def body(content: bytes | None) -> str | None:
        return None if content is None else base64.b64encode(content).decode()

    r, s = flow.request, flow.response
    assert r is not None
    return {
        "id": flow.id,
        "type": flow.type,
        "error": flow.error,
        "request": [
            r.method,
            r.scheme,
            r.host,
            r.port,
            r.authority,
            r.path,
            r.http_version,
            [list(h) for h in r.headers],
            body(r.content),
            r.timestamp_start,
            r.timestamp_end,
        ],
        "response": None
        if s is None
        else [
            s.status_code,
            s.reason,
            s.http_version,
            [list(h) for h in s.headers],
            body(s.content),
            s.timestamp_start,
            s.timestamp_end,
        ],
    }


def test_agrees_with_mitmproxys_own_loader(captures: dict[str, Capture]) -> None:
    """mitmproxy is only ever run in its own interpreter (the mitmdump script's shebang), never imported here."""
    exe = captures["plain"].mitmdump
    with open(exe, "rb") as f:
        first_line = f.readline()
    if not first_line.startswith(b"#!"):
        pytest.skip(f"{exe} is not a script, so its Python interpreter is unknown")
    interpreter = first_line[2:].decode().strip().split()
    for capture in captures.values():
        result = subprocess.run(
            [*interpreter, "-c", MITMPROXY_VIEW, str(capture.dump)], capture_output=True, timeout=60
        )
        assert result.returncode == 0, result.stderr.decode(errors="replace")
        assert [_as_view(f) for f in capture.flows()] == json.loads(result.stdout)


@pytest.mark.parametrize(
    "where", ["inside first prefix", "inside first flow", "inside second prefix", "mid", "last"]
)
def test_truncated_dump_names_flows_read_and_offset(captures: dict[str, Capture], where: str) -> None:
    data = captures["plain"].dump.read_bytes()
    flows = captures["plain"].flows()
    ends = [f.offset for f in flows[1:]] + [len(data)]
    cut = {
        "inside first prefix": 2,
        "inside first flow": ends[0] // 2,
        "inside second prefix": ends[0] + 2,
        "mid": (ends[3] + ends[4]) // 2,
        "last": len(data) - 1,
    }[where]
    complete = sum(1 for end in ends if end <= cut)
    got: list[MitmFlow] = []
    with pytest.raises(MitmFormatError) as info:
        for flow in read_flows(io.BytesIO(data[:cut])):
            got.append(flow)
    assert len(got) == complete == info.value.flows_read
    assert [f.id for f in got] == [f.id for f in flows[:complete]]
    message = str(info.value)
    assert "truncated" in message
    assert f"{complete} flow{'' if complete == 1 else 's'} read before the problem" in message
    assert f"byte offset {ends[complete - 1] if complete else 0}" in message


def test_cut_at_a_flow_boundary_is_a_shorter_valid_dump(captures: dict[str, Capture]) -> None:
    data = captures["plain"].dump.read_bytes()
    flows = captures["plain"].flows()
    assert [f.id for f in read_flows(io.BytesIO(data[: flows[3].offset]))] == [f.id for f in flows[:3]]


def test_reading_is_lazy_and_stops_at_trailing_garbage(captures: dict[str, Capture], tmp_path: Path) -> None:
    data = captures["plain"].dump.read_bytes()
    flows = captures["plain"].flows()
    path = tmp_path / "garbage-tail.mitm"
    path.write_bytes(data[: flows[2].offset] + b'{"not": "a flow"}')
    with path.open("rb") as f:
        reader = read_flows(f)
        first = next(reader)
        assert first.id == flows[0].id
        assert f.tell() == flows[1].offset, "nothing past the first flow was read"
        assert next(reader).id == flows[1].id
        with pytest.raises(MitmFormatError, match=r"JSON.*byte offset \d+; 2 flows read") as info:
            next(reader)
    assert str(info.value).startswith(f"{path}: ")
    assert info.value.offset == flows[2].offset


# --- synthetic dumps: format variants, corrupt data, memory ---------------------------------------


def read_bytes(data: bytes) -> list[MitmFlow]:
    return list(read_flows(io.BytesIO(data)))


def test_synthetic_flow_round_trips() -> None:
    [flow] = read_bytes(tnetstring(flow_state()))
    assert flow.request is not None and flow.response is not None
    assert flow.request.url == "https://api.anthropic.com/v1/messages"
    assert flow.request.headers == [("Host", "api.anthropic.com"), ("content-type", "application/json")]
    assert flow.response.content == b'{"id":"msg_1"}'
    assert (flow.version, flow.timestamp_created, flow.error, flow.is_websocket) == (
        21,
        1700000000.0,
        None,
        False,
    )


def test_older_and_looser_encodings_are_accepted() -> None:
    """Text where current files have bytes, missing fields, byte dict keys (pre-1.0) and non-UTF-8 values."""
    state = flow_state(method="GET", path="/v1/models", scheme="http", host=b"example.test", content=None)
    state["request"]["headers"] = [["Accept", "*/*"], [b"X-Latin", "caf\u00e9".encode("latin-1")]]
    for missing in ("authority", "port", "trailers", "http_version", "timestamp_end"):
        del state["request"][missing]
    del state["timestamp_created"]
    state["version"] = 9
    state["error"] = {"msg": "Connection killed.", "timestamp": 1.0}
    state["response"] = None
    [flow] = read_bytes(tnetstring(state))
    request = flow.request
    assert request is not None and flow.response is None
    assert (request.method, request.path, request.scheme, request.host, request.port) == (
        "GET",
        "/v1/models",
        "http",
        "example.test",
        80,
    )
    assert (request.authority, request.http_version, request.trailers, request.content) == (
        "",
        "HTTP/1.1",
        None,
        None,
    )
    assert request.headers == [("Accept", "*/*"), ("X-Latin", "caf\u00e9")]
    assert (flow.version, flow.error, flow.timestamp_created) == (9, "Connection killed.", None)

    legacy = tnetstring({b"version": [0, 18], b"type": b"http", b"id": b"old", b"request": {b"method": b"GET"}})
    [old] = read_bytes(legacy)
    assert (old.version, old.id, old.request and old.request.method) == ((0, 18), "old", "GET")


def test_non_http_flows_are_yielded_without_request() -> None:
    tcp = {"version": 21, "type": "tcp", "id": "t1", "error": None, "messages": [[True, b"hi", 1.0]]}
    flows = read_bytes(tnetstring(tcp) + tnetstring(flow_state()))
    assert [(f.type, f.request is None) for f in flows] == [("tcp", True), ("http", False)]


def test_many_flows_read_in_constant_memory(tmp_path: Path) -> None:
    body = os.urandom(64 * 1024)
    one = tnetstring(flow_state(content=body))
    path = tmp_path / "many.mitm"
    count = 400  # about 26 MB
    with path.open("wb") as f:
        for _ in range(count):
            f.write(one)
    tracemalloc.start()
    try:
        seen = 0
        with path.open("rb") as f:
            for flow in read_flows(f):
                assert flow.request is not None and flow.request.content == body
                seen += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == count
    assert peak < 1024 * 1024, f"peak {peak} bytes while reading {path.stat().st_size} bytes"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"type": "message"}\n', r"found b'\{' \(a JSON file\?\).*byte offset 0; 0 flows read"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 32, r"\(a PNG file\?\)"),
        (b"hello world", r"expected the decimal length that starts a flow, found b'h'"),
        (b"12 apples", r"expected ':' after the length prefix 12"),
        (b"1234567890123:", r"longer than 12 digits"),
        (b"5:hello,", r"flow 1 is a tnetstring bytes, expected a dict"),
        (b"3:abc?", r"unknown tnetstring type tag '\?' ending flow 1.*byte offset 5"),
        (b"99:", r"truncated: flow 1 declares 99 bytes and a type tag but the file ends after 0"),
        (b"7", r"truncated: the file ends inside the length prefix of flow 1"),
    ],
)
def test_files_that_are_not_dumps(data: bytes, expected: str) -> None:
    with pytest.raises(MitmFormatError, match=expected):
        read_bytes(data)


def test_empty_file_has_no_flows(tmp_path: Path) -> None:
    path = tmp_path / "empty.mitm"
    path.write_bytes(b"")
    with path.open("rb") as f:
        assert list(read_flows(f)) == []


def _nested_list(depth: int) -> bytes:
    value = b"0:]"
    for _ in range(depth):
        value = b"%d:%s]" % (len(value), value)
    return value


def raw_dict(body: bytes) -> bytes:
    return b"%d:%s}" % (len(body), body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (tnetstring({"version": 21, "type": "http", "id": "x"}), r"flow 2: HTTP flow has no request"),
        (tnetstring({"type": "http", "request": [1]}), r"request is not a dict"),
        (tnetstring({"type": "http", "request": {"port": "443"}}), r"request.port is '443', expected an integer"),
        (
            tnetstring({"type": "http", "request": {}, "response": {"reason": b"OK"}}),
            r"response.status_code is None",
        ),
        (tnetstring({"type": "http", "request": {"headers": [[b"a"]]}}), r"request.headers has an entry"),
        (tnetstring({"request": {"method": 5}}), r"request.method is int"),
        (tnetstring({"request": None})[:-1] + b"]", r"flow 2 is a tnetstring list, expected a dict"),
        (raw_dict(b"4:type;4:http?"), r"unknown tnetstring type tag '\?'"),
        (raw_dict(b"1:a;"), r"dict key 'a' has no value"),
        (raw_dict(b"1:a;2:x1#"), r"invalid integer literal"),
        (raw_dict(b"1:a;3:abc^"), r"invalid float literal"),
        (raw_dict(b"1:a;3:yes!"), r"invalid boolean literal"),
        (raw_dict(b"1:a;1:x~"), r"null with a non-empty body"),
        (raw_dict(b"1:a;3:\xff\xfe\xfd;"), r"invalid UTF-8"),
        (raw_dict(b"1:a;9:abc,"), r"runs past the end of its enclosing value"),
        (raw_dict(b"1:a;x:1,"), r"expected a tnetstring length prefix"),
        (raw_dict(b"1:1#1:a;"), r"dict key must be text, found int"),
        (raw_dict(b"0:]1:a;"), r"dict key must be text, found a list"),
    ],
)
def test_corrupt_flows_raise_format_errors(body: bytes, expected: str) -> None:
    good = tnetstring(flow_state())
    with pytest.raises(MitmFormatError, match=expected) as info:
        read_bytes(good + body)
    assert info.value.flows_read == 1
    assert info.value.offset >= len(good)


def test_deep_nesting_is_refused_without_recursion_error() -> None:
    deep = _nested_list(3000)  # deeper than Python's default recursion limit
    body = b"1:a;" + deep
    data = b"%d:%s}" % (len(body), body)
    with pytest.raises(MitmFormatError, match="nested deeper than"):
        read_bytes(data)


def test_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.json"
    path.write_text('{"a": 1}')
    with path.open("rb") as f, pytest.raises(MitmFormatError) as info:
        list(read_flows(f))
    assert str(info.value).startswith(f"{path}: not a readable mitmproxy dump")
    assert (info.value.flows_read, info.value.offset) == (0, 0)


# --- decode_content ------------------------------------------------------------------------------------

PLAIN = b'{"type":"message","content":[{"type":"text","text":"hello"}]}' * 10


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("gzip", gzip.compress(PLAIN)),
        ("x-gzip", gzip.compress(PLAIN)),
        ("deflate", zlib.compress(PLAIN)),
        ("deflate", zlib.compress(PLAIN, wbits=-zlib.MAX_WBITS)),
        ("zstd", zstandard.ZstdCompressor().compress(PLAIN)),
        ("identity", PLAIN),
        ("GZIP", gzip.compress(PLAIN)),
        ("gzip, zstd", zstandard.ZstdCompressor().compress(gzip.compress(PLAIN))),
    ],
)
def test_decode_content(value: str, encoded: bytes) -> None:
    assert (
        decode_content([("Content-Type", "application/json"), ("Content-Encoding", value)], encoded) == PLAIN
    )


def test_decode_content_zstd_stream_without_content_size() -> None:
    compressor = zstandard.ZstdCompressor().compressobj()
    encoded = compressor.compress(PLAIN) + compressor.flush()
    assert decode_content([("content-encoding", "zstd")], encoded) == PLAIN


def test_decode_content_without_encoding_is_unchanged() -> None:
    assert decode_content([("content-type", "text/event-stream")], PLAIN) is PLAIN


def test_decode_content_of_empty_body_is_empty() -> None:
    assert decode_content([("content-encoding", "gzip")], b"") == b""


def test_text_stream_is_refused_clearly() -> None:
    with pytest.raises(TypeError, match="binary stream"):
        list(read_flows(io.StringIO("12:")))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "encoded", "expected"),
    [
        ("compress", PLAIN, "unsupported Content-Encoding 'compress'"),
        ("gzip", PLAIN, "body is not valid gzip data"),
        ("zstd", PLAIN, "body is not valid zstd data"),
        ("deflate", PLAIN, "body is not valid deflate data"),
    ],
)
def test_decode_content_errors(value: str, encoded: bytes, expected: str) -> None:
    with pytest.raises(ContentDecodingError, match=expected):
        decode_content([("Content-Encoding", value)], encoded)


def test_brotli_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "brotli", None)
    monkeypatch.setitem(sys.modules, "brotlicffi", None)
    with pytest.raises(ContentDecodingError, match=r"Content-Encoding: br.*pip install brotli"):
        decode_content([("Content-Encoding", "br")], b"\x0b\x02\x80hello\x03")


def test_brotli_when_installed() -> None:
    brotli = pytest.importorskip("brotli")
    assert decode_content([("Content-Encoding", "br")], brotli.compress(PLAIN)) == PLAIN
