"""The official SDK's own stream fixtures: our validators call an error exactly what the SDK itself rejects."""

from __future__ import annotations

from pathlib import Path

import anthropic
import httpx2 as httpx  # the HTTP client the installed SDK is built on
import pytest

from vcr.protocol import validate_stream

FIXTURES = Path(__file__).parent / "data" / "sdk-streaming-fixtures"
NAMES = sorted(path.name for path in FIXTURES.glob("*.txt"))
REQUEST = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "stream": True,
    "messages": [{"role": "user", "content": "search the web and run code"}],
}


def as_sent(name: str) -> bytes:
    """The fixture as the SDK's tests feed it (each line plus a newline), its last event closed as the API
    closes every event (the files end without the blank line)."""
    text = (FIXTURES / name).read_text()
    return b"".join(line.encode() + b"\n" for line in text.splitlines()) + b"\n"


NEGATIVE = {
    "out_of_order_response.txt": "the SDK's tests expect RuntimeError 'Unexpected content block index: 1'"
}
"""Fixtures the SDK's own tests use as broken streams, whatever today's SDK does with them."""


def sdk_verdict(body: bytes) -> str | None:
    """None when the SDK's MessageStream (GA or beta) folds the stream to a final message, else its error."""
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})
    )
    client = anthropic.Anthropic(
        api_key="test", base_url="http://127.0.0.1:9", http_client=httpx.Client(transport=transport)
    )
    arguments = {key: value for key, value in REQUEST.items() if key != "stream"}
    rejections = []
    for stream_of in (client.messages.stream, client.beta.messages.stream):
        try:
            with stream_of(**arguments) as stream:
                stream.get_final_message()
        except Exception as error:  # the SDK's own rejection, whatever its type
            rejections.append(f"{type(error).__name__}: {error}")
        else:
            return None
    return "; ".join(rejections)


def test_all_27_fixtures_are_vendored() -> None:
    assert len(NAMES) == 27
    assert {line.split()[0] for line in (FIXTURES / "SOURCES").read_text().splitlines()} == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_validators_agree_with_the_sdk(name: str) -> None:
    body = as_sent(name)
    rejected = NEGATIVE.get(name) or sdk_verdict(body)
    errors = [f"{f.rule}: {f.message}" for f in validate_stream(body, REQUEST) if f.severity == "error"]
    if rejected is None:
        assert errors == [], f"the SDK accepts {name}, the validators call it an error"
    else:
        assert errors, f"the SDK rejects {name} ({rejected}), the validators see no error"
