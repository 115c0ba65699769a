"""Replay throughput for a Bedrock event stream next to the same answer as first-party SSE.

`python3 tests/benchmarks/bench_providers.py` prints a markdown section (run.py puts it in BENCHMARKS.md).
Both answers carry the same ~29 KB of Anthropic events; each is recorded once through claude-vcr from a
static server (Bedrock's signed with throwaway keys, never checked), then replayed strict under wrk.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from aiohttp import web  # noqa: E402

from tests.benchmarks.bench_proxy import (  # noqa: E402
    CONNECTIONS,
    DURATION,
    TARGET,
    post_once,
    process,
    sample_request,
    sse_reply,
    wrk,
)
from tests.support.loopback import LoopThread, free_port, serving  # noqa: E402
from vcr import eventstream  # noqa: E402

BEDROCK_TARGET = "/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/invoke-with-response-stream"
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "AKIABENCHMARK000000",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",
    "AWS_REGION": "us-east-1",
}


class Static:
    """Every request answered with the same bytes and content type."""

    def __init__(self, body: bytes, content_type: str) -> None:
        self.body, self.content_type = body, content_type

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=self.body, headers={"content-type": self.content_type})


def bedrock_reply(sse: bytes) -> bytes:
    """The same events as Bedrock frames them."""
    events = [json.loads(line[6:]) for line in sse.decode().splitlines() if line.startswith("data: ")]
    return eventstream.from_events(events)


def bedrock_request(body: bytes) -> bytes:
    """Claude Code's request as it goes to Bedrock: the model in the path, anthropic_version in the body."""
    data = json.loads(body)
    data.pop("model", None)
    data.pop("stream", None)
    data["anthropic_version"] = "bedrock-2023-05-31"
    return json.dumps(data).encode()


def measure(
    name: str,
    reply: bytes,
    content_type: str,
    body: bytes,
    headers: dict,
    target: str,
    extra: list[str],
    work: Path,
) -> dict:
    with LoopThread("static") as loop, serving(loop, Static(reply, content_type)) as static:
        db = work / f"{name}.db"
        body_file = work / f"{name}.json"
        body_file.write_bytes(body)
        port = free_port()
        serve = [sys.executable, "-m", "claude_vcr", "serve", "--db", str(db), "--port", str(port), *extra]
        with process([*serve, "--mode", "record", "--upstream", static.url], port, env=FAKE_AWS, cwd=REPO):
            assert post_once(f"http://127.0.0.1:{port}", body, headers, target) == reply
    env = {name: "" for name in FAKE_AWS}  # strict replay needs no credentials
    with process([*serve, "--mode", "replay", "--upstream", "http://127.0.0.1:9"], port, env=env, cwd=REPO):
        assert post_once(f"http://127.0.0.1:{port}", body, headers, target) == reply
        return wrk(f"http://127.0.0.1:{port}", body_file, headers, target=target)


def run() -> str:
    body, headers = sample_request()
    sse = sse_reply()
    frames = bedrock_reply(sse)
    work = Path(tempfile.mkdtemp(prefix="vcr-bench-providers-"))
    try:
        first = measure("anthropic", sse, "text/event-stream; charset=utf-8", body, headers, TARGET, [], work)
        bedrock_headers = {
            k: v for k, v in headers.items() if not k.lower().startswith(("x-api-key", "anthropic-"))
        }
        bedrock = measure(
            "bedrock",
            frames,
            eventstream.CONTENT_TYPE,
            bedrock_request(body),
            bedrock_headers,
            BEDROCK_TARGET,
            ["--upstream-format", "bedrock"],
            work,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines = [
        f"### Replay by provider: a {len(body) // 1000} KB Claude Code request, {CONNECTIONS} connections, wrk {DURATION} s each",
        "",
        "| answer | bytes | req/s | p50 ms | p99 ms | vs first-party |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| first-party SSE (`/v1/messages`) | {len(sse):,} | {first['rps']:,.0f} | {first['p50']:.2f} | {first['p99']:.2f} | 100% |",
        f"| Bedrock event stream (`invoke-with-response-stream`) | {len(frames):,} | {bedrock['rps']:,.0f} | "
        f"{bedrock['p50']:.2f} | {bedrock['p99']:.2f} | {bedrock['rps'] / first['rps']:.0%} |",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    threading.excepthook = lambda args: None
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    print(run())
