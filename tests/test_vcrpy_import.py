"""vcrpy / pytest-recording cassettes import and replay: written by real vcrpy (in a fresh venv from
.cache/wheels) against the scripted upstream, imported with `claude-vcr import`, then replayed by a strict proxy
with the upstream down, each answer byte for byte what the client saw when vcrpy recorded it."""

from __future__ import annotations

import base64
import gzip
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.cli import cli
from tests.support.loopback import unreachable_url
from tests.support.venvs import Venv

RECORDER = r'''
import base64, gzip, json, sys, urllib.error, urllib.request
import vcr

base, cassette, serializer, decode = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "decode"
asks = json.loads(sys.argv[5])
recorder = vcr.VCR(serializer=serializer, record_mode="once", decode_compressed_response=decode)
seen = []
with recorder.use_cassette(cassette):
    for text, stream in asks:
        if text == "MODELS":
            request = urllib.request.Request(base + "/v1/models", headers={"x-api-key": "sk-ant-api03-vcrpy-key"})
            urllib.request.urlopen(request).read()
            continue
        body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": stream,
                           "messages": [{"role": "user", "content": text}]}).encode()
        request = urllib.request.Request(base + "/v1/messages", data=body, method="POST", headers={
            "content-type": "application/json", "x-api-key": "sk-ant-api03-vcrpy-key",
            "anthropic-version": "2023-06-01"})
        try:
            response = urllib.request.urlopen(request)
        except urllib.error.HTTPError as error:
            response = error
        data = response.read()
        if response.headers.get("content-encoding") == "gzip":
            data = gzip.decompress(data)
        seen.append({"text": text, "request": body.decode(), "status": response.status,
                     "answer": base64.b64encode(data).decode()})
print(json.dumps(seen))
'''

ASKS = [
    ["Hello as JSON", False],
    ["Hello as a stream", True],
    ["GZIP answer please", False],
    ["STATUS:404 no such model", False],
    ["STATUS:400 unsupported option", False],
    ["STATUS:429 slow down", False],
    ["MODELS", False],
]


@pytest.fixture(scope="module")
def vcrpy_env(tmp_path_factory) -> Venv:
    env = Venv(tmp_path_factory.mktemp("vcrpy-venv") / "venv")
    env.install("vcrpy")
    return env


def record(env: Venv, upstream_url: str, cassette: Path, serializer: str, decode: bool) -> list[dict]:
    done = env.run(
        env.python, "-c", RECORDER, upstream_url, str(cassette), serializer, "decode" if decode else "raw",
        json.dumps(ASKS),
    )
    return json.loads(done.stdout)


def replay(url: str, cassette: str, request_body: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"{url}/c/{cassette}/v1/messages", data=request_body.encode(), method="POST",
        headers={"content-type": "application/json", "x-api-key": "sk-ant-api03-other-key",
                 "anthropic-version": "2023-06-01"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.parametrize(
    ("serializer", "decode"), [("yaml", False), ("json", True)], ids=["yaml-gzip-binary", "json-decoded"]
)
def test_a_vcrpy_cassette_imports_and_replays_byte_for_byte(
    vcrpy_env, upstream, proxy, db_path, tmp_path, serializer, decode
):
    cassette_file = tmp_path / f"anthropic_{serializer}.{serializer}"
    seen = record(vcrpy_env, upstream.url, cassette_file, serializer, decode)
    text = cassette_file.read_text()
    if not decode:
        assert "!!binary" in text and "gzip" in text  # vcrpy kept the gzip bytes as sent
    assert "sk-ant-api03-vcrpy-key" in text  # vcrpy keeps the key; the import must not

    imported = cli("import", cassette_file, "--db", db_path)
    assert imported.exit_code == 0, imported.output
    name = f"anthropic_{serializer}"
    assert imported.output.splitlines()[0] == (
        f"Imported 5 recordings from 7 vcrpy interactions ({name}: 5)"
    ), imported.output
    assert "skipped 1: not the Anthropic Messages API" in imported.output
    assert "skipped 1: not stored: transient error 429 (--record-errors stores it)" in imported.output
    assert b"sk-ant-api03-vcrpy-key" not in db_path.read_bytes()

    upstream.stop()
    replaying = proxy(mode="replay", upstream=unreachable_url())
    for ask in seen:
        status, body = replay(replaying.url, name, ask["request"])
        if "429" in ask["text"]:
            assert status == 400 and b"claude-vcr: no recording for" in body  # a strict miss, not the outage
            continue
        assert (status, body) == (ask["status"], base64.b64decode(ask["answer"])), ask["text"]
    statuses = sorted(ask["status"] for ask in seen)
    assert statuses == [200, 200, 200, 400, 404, 429]


def test_record_errors_imports_the_transient_ones_too(vcrpy_env, upstream, db_path, tmp_path):
    cassette_file = tmp_path / "errors.yaml"
    record(vcrpy_env, upstream.url, cassette_file, "yaml", False)
    imported = cli("import", cassette_file, "--db", db_path, "--record-errors")
    assert imported.output.startswith("Imported 6 recordings from 7 vcrpy interactions"), imported.output


PYDANTIC_AI_FORM = """interactions:
- request:
    headers:
      content-type:
      - application/json
    method: POST
    parsed_body:
      max_tokens: 64
      messages:
      - content: Hello
        role: user
      model: claude-sonnet-4-5
    uri: https://api.anthropic.com/v1/messages?beta=true
  response:
    headers:
      content-encoding:
      - gzip
      content-type:
      - application/json
    parsed_body:
      content:
      - text: |-
          Hi there,
          two lines.
        type: text
      id: msg_01
      model: claude-sonnet-4-5
      role: assistant
      stop_reason: end_turn
      type: message
    status:
      code: 200
      message: OK
- request:
    body: ''
    headers: {}
    method: GET
    uri: https://example.com/elsewhere
  response:
    body:
      string: nope
    headers: {}
    status:
      code: 200
      message: OK
version: 1
"""


def test_pydantic_ais_parsed_body_form_replays_as_its_serializer_gives_it_back(proxy, db_path, tmp_path):
    """pydantic-ai's json_body_serializer keeps JSON bodies as YAML data (`parsed_body`) and hands vcrpy
    `json.dumps(parsed_body)` back: that is the answer its tests saw, so it is the one replayed."""
    path = tmp_path / "cassettes" / "test_models" / "test_hello[anthropic].yaml"
    path.parent.mkdir(parents=True)
    path.write_text(PYDANTIC_AI_FORM)
    imported = cli("import", tmp_path / "cassettes", "--db", db_path)
    assert imported.exit_code == 0, imported.output
    assert "(test_models.test_hello-anthropic: 1)" in imported.output.splitlines()[0], imported.output
    replaying = proxy(mode="replay", upstream=unreachable_url())
    request = {"max_tokens": 64, "messages": [{"content": "Hello", "role": "user"}], "model": "claude-sonnet-4-5"}
    answer = urllib.request.urlopen(urllib.request.Request(
        f"{replaying.url}/c/test_models.test_hello-anthropic/v1/messages?beta=true",
        data=json.dumps(request).encode(), method="POST", headers={"content-type": "application/json"},
    ), timeout=30)
    expected = {
        "content": [{"text": "Hi there,\ntwo lines.", "type": "text"}], "id": "msg_01", "model": "claude-sonnet-4-5",
        "role": "assistant", "stop_reason": "end_turn", "type": "message",
    }
    assert answer.read() == json.dumps(expected).encode()
    assert answer.headers.get("content-encoding") is None


def test_a_cassette_is_data_never_objects(db_path, tmp_path):
    """PyYAML's safe loader only: a python-object tag is refused with one line, nothing imported."""
    path = tmp_path / "evil.yaml"
    path.write_text("interactions:\n- !!python/object/apply:os.system ['echo pwned > pwned']\n")
    result = cli("import", path, "--db", db_path)
    assert result.exit_code == 1 and "not a vcrpy YAML cassette" in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()
    assert not db_path.exists()


def test_a_gzip_body_that_is_not_gzip_is_skipped_by_name(db_path, tmp_path):
    path = tmp_path / "broken.json"
    interaction = {
        "request": {"method": "POST", "uri": "https://api.anthropic.com/v1/messages", "headers": {},
                    "body": json.dumps({"model": "m", "messages": []})},
        "response": {"status": {"code": 200, "message": "OK"},
                     "headers": {"Content-Encoding": ["gzip"], "Content-Type": ["application/json"]},
                     "body": {"string": "not gzip at all"}},
    }
    path.write_text(json.dumps({"interactions": [interaction, interaction], "version": 1}))
    result = cli("import", path, "--db", db_path)
    assert result.exit_code == 0 and "skipped 2: body not decodable" in result.output, result.output
    assert gzip.compress(b"x")  # the coding the header names is a real one
