"""mitmproxy dumps without mitmproxy (flows written by hand, in the format `mitmdump -w` writes) and a real
`mitmdump` run in reverse-proxy mode in front of a loopback upstream."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import REPO
from tests.support.client import TEST_API_KEY, params
from tests.support.loopback import free_port, wait_listening

INSTALL_HINT = (
    "python3 -m venv .cache/mitm-venv && .cache/mitm-venv/bin/pip install mitmproxy "
    "(or set VCR_MITMDUMP to a mitmdump executable)"
)


# --- flows written by hand -------------------------------------------------------------------------------


def tnetstring(value: Any) -> bytes:
    """mitmproxy's typed netstring encoding (`;` for text, `,` for bytes), enough to write flows."""
    if value is None:
        tag, data = b"~", b""
    elif isinstance(value, bool):
        tag, data = b"!", b"true" if value else b"false"
    elif isinstance(value, int):
        tag, data = b"#", str(value).encode()
    elif isinstance(value, float):
        tag, data = b"^", repr(value).encode()
    elif isinstance(value, bytes):
        tag, data = b",", value
    elif isinstance(value, str):
        tag, data = b";", value.encode()
    elif isinstance(value, (list, tuple)):
        tag, data = b"]", b"".join(tnetstring(item) for item in value)
    elif isinstance(value, dict):
        tag, data = b"}", b"".join(tnetstring(k) + tnetstring(v) for k, v in value.items())
    else:
        raise TypeError(type(value))
    return str(len(data)).encode() + b":" + data + tag


def flow_state(content: bytes | None = b'{"a":1}', **request_overrides: Any) -> dict[str, Any]:
    """The HTTP fields of a version-21 flow, as mitmdump writes them (connection details left out)."""
    request = {
        "authority": b"",
        "content": content,
        "headers": [[b"Host", b"api.anthropic.com"], [b"content-type", b"application/json"]],
        "host": "api.anthropic.com",
        "http_version": b"HTTP/1.1",
        "method": b"POST",
        "path": b"/v1/messages",
        "port": 443,
        "scheme": b"https",
        "timestamp_end": 1700000000.5,
        "timestamp_start": 1700000000.25,
        "trailers": None,
    }
    request.update(request_overrides)
    response = {
        "content": b'{"id":"msg_1"}',
        "headers": [[b"content-type", b"application/json"]],
        "http_version": b"HTTP/1.1",
        "reason": b"OK",
        "status_code": 200,
        "timestamp_end": 1700000001.0,
        "timestamp_start": 1700000000.75,
        "trailers": None,
    }
    return {
        "version": 21,
        "type": "http",
        "id": "5b4fcd6e-0000-4000-8000-000000000001",
        "error": None,
        "request": request,
        "response": response,
        "websocket": None,
        "timestamp_created": 1700000000.0,
    }


def synthetic_flow(index: int, response_bytes: int = 20_000, *, started: float = 1_760_000_000.0) -> bytes:
    """One HTTP flow in the format `mitmdump -w` writes (version 21): a streamed Messages exchange."""
    body = json.dumps(params(f"synthetic question {index}", stream=True)).encode()
    filler = "y" * max(0, response_bytes - 400)
    events = [
        {
            "type": "message_start",
            "message": {"id": f"msg_{index}", "content": [], "model": "claude-opus-5-5"},
        },
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": filler}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_stop"},
    ]
    sse = b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)
    at = started + index
    state = {
        "version": 21,
        "type": "http",
        "id": f"00000000-0000-0000-0000-{index:012d}",
        "error": None,
        "timestamp_created": at,
        "request": {
            "host": "api.anthropic.com",
            "port": 443,
            "method": b"POST",
            "scheme": b"https",
            "authority": b"",
            "path": b"/v1/messages",
            "http_version": b"HTTP/1.1",
            "headers": [
                [b"x-api-key", TEST_API_KEY.encode()],
                [b"content-type", b"application/json"],
                [b"anthropic-version", b"2023-06-01"],
            ],
            "content": body,
            "trailers": None,
            "timestamp_start": at,
            "timestamp_end": at + 0.01,
        },
        "response": {
            "http_version": b"HTTP/1.1",
            "status_code": 200,
            "reason": b"OK",
            "headers": [[b"content-type", b"text/event-stream"], [b"request-id", f"req_{index}".encode()]],
            "content": sse,
            "trailers": None,
            "timestamp_start": at + 0.2,
            "timestamp_end": at + 1.5,
        },
        "websocket": None,
    }
    return tnetstring(state)


def write_synthetic_dump(path: Path, flows: int, response_bytes: int = 20_000) -> int:
    """A dump of `flows` distinct exchanges, written flow by flow; returns its size in bytes."""
    with path.open("wb") as out:
        for index in range(flows):
            out.write(synthetic_flow(index, response_bytes))
    return path.stat().st_size


# --- a real mitmdump ---------------------------------------------------------------------------------


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def find_mitmdump() -> str | None:
    """VCR_MITMDUMP, then the repo's test venv, then PATH: mitmproxy is a test-only tool kept apart."""
    explicit = os.environ.get("VCR_MITMDUMP")
    if explicit:
        return explicit
    venv = REPO / ".cache" / "mitm-venv" / "bin" / "mitmdump"
    if venv.exists():
        return str(venv)
    return shutil.which("mitmdump")


def require_mitmdump() -> str:
    """Fails in CI, where a missing mitmdump is a setup bug; skips on a developer machine without it."""
    exe = find_mitmdump()
    problem = None
    if exe is None:
        problem = "mitmdump not found"
    elif not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
        problem = f"mitmdump {exe!r} (from VCR_MITMDUMP or .cache/mitm-venv) is not an executable file"
    if problem is None:
        assert exe is not None
        return exe
    message = f"{problem}; install it with: {INSTALL_HINT}"
    if _ci() or os.environ.get("VCR_MITMDUMP"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@dataclass
class Mitmdump:
    """One running `mitmdump -w` in reverse-proxy mode, with its log for failure messages."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    dump: Path
    log: Path

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def wait_ready(self, deadline: float) -> None:
        if wait_listening(self.port, deadline, alive=lambda: self.process.poll() is None):
            return
        if self.process.poll() is not None:
            pytest.fail(f"mitmdump ({self.name}) exited early:\n{self.log_tail()}", pytrace=False)
        pytest.fail(f"mitmdump ({self.name}) did not listen within the deadline:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGINT is mitmdump's clean shutdown: the dump file is complete and closed when it exits."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
                pytest.fail(f"mitmdump ({self.name}) ignored SIGINT:\n{self.log_tail()}")


def start_mitmdump(exe: str, name: str, upstream_port: int, workdir: Path, options: list[str]) -> Mitmdump:
    port = free_port()
    dump = workdir / f"{name}.mitm"
    log = workdir / f"{name}.log"
    cmd = [
        exe,
        "--mode",
        f"reverse:http://127.0.0.1:{upstream_port}",
        "--listen-host",
        "127.0.0.1",
        "--listen-port",
        str(port),
        "-w",
        str(dump),
        "--set",
        f"confdir={workdir / f'confdir-{name}'}",  # its CA here, not in ~/.mitmproxy; one each: two mitmdumps
        # started together both write a new CA, and one read the other's half-written key and exited
        *options,
    ]
    with log.open("wb") as log_file:
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)
    return Mitmdump(name, process, port, dump, log)
