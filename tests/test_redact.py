"""Secrets through the real proxy, `scan`, `redact`, `serve --redact` and the pre-commit hook: credential
headers under other names and `?key=` reach the upstream but never the db, an export, a miss file or the log;
bodies with secrets warn (naming the recording only), scan finds them, redact replaces them in one transaction
and the cassette still replays the original request; a real git repository refuses a commit of such a db."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import zstandard
from claude_vcr.catalog import Catalog
from claude_vcr.compression import decompressor as body_decompressor
from claude_vcr.redact import scan, scan_recording
from claude_vcr.store import Store

from tests.support.cassettes import recording, rows
from tests.support.cli import cli
from tests.support.client import TEST_API_KEY
from tests.support.secret_corpus import env_file, fake_secrets

CORPUS = dict(fake_secrets())  # one secret per kind
ANTHROPIC = CORPUS["anthropic-key"]
AWS = CORPUS["aws-access-key"]


def post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("content-type", "application/json")
    request.add_header("anthropic-version", "2023-06-01")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def ask(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-haiku-4-5",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": text}],
        **extra,
    }


def stored_text(db: Path) -> str:
    """Everything the db file holds, decompressed: every column of every row, every request chunk."""
    decompressor = body_decompressor()  # with the shipped dictionary, as the store writes
    pieces: list[str] = []
    conn = sqlite3.connect(db)
    try:
        for table in ("recordings", "chunks", "cassettes"):
            for row in conn.execute(f"SELECT * FROM {table}"):
                for value in row:
                    if isinstance(value, bytes):
                        try:
                            value = decompressor.decompress(value, max_output_size=1 << 26)
                        except zstandard.ZstdError:
                            pass
                        value = value.decode("utf-8", "replace")
                    pieces.append(str(value))
    finally:
        conn.close()
    return "\n".join(pieces) + db.read_bytes().decode("latin-1")


def everything_shared(db: Path, tmp_path: Path) -> str:
    """What leaves the machine: the db itself, its export and its git textconv dump."""
    out = tmp_path / "shared-export"
    assert cli("export", out, "--replace", "--db", db).exit_code == 0
    exported = "\n".join(p.read_text("utf-8", "replace") for p in out.rglob("*") if p.is_file())
    return stored_text(db) + exported + cli("dump", "--db", db).output


CREDENTIAL_HEADERS = {
    "X-Authorization": "Bearer opaque-one-1111",
    "X-Forwarded-Authorization": "opaque-two-2222",
    "Authentication": "opaque-three-3333",
    "X-Anthropic-Key": "opaque-four-4444",
    "X-Session-Key": "opaque-five-5555",
    "X-Access-Key": "opaque-six-6666",
    "cf-aig-authorization": "Bearer opaque-seven-7777",
    "Ocp-Apim-Subscription-Key": "opaque-eight-8888",
    "X-Custom-Header": ANTHROPIC,  # a credential shape under an innocent name
    "X-Other": f"Bearer {AWS}",
}


def test_credential_headers_reach_the_upstream_and_nothing_else(proxy, upstream, db_path, tmp_path):
    recorder = proxy(mode="record")
    status, _, _ = post(
        recorder.url + "/v1/messages", ask("hello"), {"x-api-key": TEST_API_KEY, **CREDENTIAL_HEADERS}
    )
    assert status == 200
    sent = upstream.calls[-1].headers
    for name, value in CREDENTIAL_HEADERS.items():
        assert sent.get(name) == value  # forwarded: the upstream needs them
    recorder.stop()
    shared = everything_shared(db_path, tmp_path)
    for value in [*CREDENTIAL_HEADERS.values(), TEST_API_KEY]:
        assert value not in shared
    assert "anthropic-version" in shared.lower()  # the allow-listed header is kept


def test_a_query_credential_is_stored_as_a_placeholder_and_replays_for_any_key(
    proxy, upstream, db_path, tmp_path, caplog
):
    caplog.set_level(logging.INFO)
    recorder = proxy(mode="record")
    status, recorded, _ = post(recorder.url + "/v1/messages?key=mine-0123456789&beta=true", ask("hi"))
    assert status == 200
    assert upstream.calls[-1].path.endswith("key=mine-0123456789&beta=true")
    recorder.stop()
    assert [row["path"] for row in rows(db_path)] == ["/v1/messages?key=REDACTED&beta=true"]
    replayer = proxy(mode="replay")
    status, replayed, headers = post(replayer.url + "/v1/messages?key=colleague-987654&beta=true", ask("hi"))
    assert status == 200 and headers["x-vcr-outcome"] == "hit" and replayed == recorded
    replayer.stop()
    assert "mine-0123456789" not in everything_shared(db_path, tmp_path)
    assert "mine-0123456789" not in caplog.text and "colleague-987654" not in caplog.text


def test_a_secret_in_a_body_warns_naming_the_recording_never_the_secret(proxy, db_path, caplog):
    caplog.set_level(logging.INFO)
    recorder = proxy(mode="record")
    status, _, headers = post(recorder.url + "/v1/messages", ask(f"my key is {ANTHROPIC}"))
    post(recorder.url + "/v1/messages", ask("nothing secret here"))
    recorder.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert headers["x-vcr-key"][:12] in warnings[0] and "anthropic-key" in warnings[0]
    assert "claude-vcr scan" in warnings[0]
    assert ANTHROPIC not in caplog.text and ANTHROPIC[8:30] not in caplog.text


def _record_secrets(proxy, db_path: Path) -> dict[str, tuple[dict, bytes]]:
    """Three requests: a key in a prompt, a .env file in a tool_result, and a clean one; plus another cassette."""
    env_text, _ = env_file()
    requests = {
        "prompt": ask(f"please check {ANTHROPIC} and {AWS}"),
        "env": {
            "model": "claude-haiku-4-5",
            "max_tokens": 50,
            "messages": [
                {"role": "user", "content": "read .env"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": env_text}],
                },
            ],
        },
        "clean": ask("what is two plus two"),
        "large": ask(f"{'padding words ' * 800} and the key {ANTHROPIC} in a chunked body"),
    }
    recorder = proxy(mode="record")
    answers = {}
    for name, body in requests.items():
        status, answer, _ = post(recorder.url + "/v1/messages", body)
        assert status == 200
        answers[name] = (body, answer)
    post(recorder.url + "/c/other/v1/messages", ask("another cassette, clean"))
    recorder.stop()
    return answers


def test_scan_finds_each_secret_with_a_masked_preview_and_exits_1(proxy, db_path):
    _record_secrets(proxy, db_path)
    result = cli("scan", "--db", db_path)
    assert result.exit_code == 1
    assert ANTHROPIC not in result.output and AWS not in result.output
    for kind in ("anthropic-key", "aws-access-key", "env-assignment"):
        assert kind in result.output
    as_json = json.loads(cli("scan", "--json", "--db", db_path).output)
    paths = {(f["side"], f["json_path"], f["kind"]) for f in as_json}
    assert ("request", "$.messages[0].content", "anthropic-key") in paths
    assert ("request", "$.messages[2].content[0].content", "env-assignment") in paths
    assert (
        "response",
        "$.content[0].text",
        "env-assignment",
    ) in paths  # the scripted API echoes the tool output
    assert all(ANTHROPIC not in f["preview"] for f in as_json)
    clean = cli("scan", "--cassette", "other", "--db", db_path)
    assert clean.exit_code == 0 and "No credential-shaped strings" in clean.output
    assert cli("scan", "--cassette", "nope", "--db", db_path).exit_code == 1


def test_redact_replaces_every_secret_and_the_cassette_still_replays(proxy, db_path, tmp_path):
    answers = _record_secrets(proxy, db_path)
    with Catalog.open(db_path) as catalog:
        other_before = [r for r in rows(db_path) if r["cassette"] == "other"]
        clean_before = [r for r in rows(db_path) if r["cassette"] == "default" and r["request_size"] < 150]
        assert len(scan(catalog)) >= 6
    result = cli("redact", "--yes", "--db", db_path)
    assert result.exit_code == 0, result.output
    assert "Redacted 3 recording(s)" in result.output and ANTHROPIC not in result.output
    assert cli("scan", "--db", db_path).exit_code == 0
    shared = everything_shared(db_path, tmp_path)
    env_values = env_file()[1]
    for secret in [ANTHROPIC, AWS, *env_values]:
        assert secret not in shared
    assert "REDACTED:anthropic-key:" in shared
    assert [r for r in rows(db_path) if r["cassette"] == "other"] == other_before  # nothing else changed
    assert [
        r for r in rows(db_path) if r["cassette"] == "default" and r["request_size"] < 150
    ] == clean_before
    replayer = proxy(mode="replay")
    for name, (body, _answer) in answers.items():  # the original requests, secrets and all
        status, replayed, headers = post(replayer.url + "/v1/messages", body)
        assert status == 200 and headers["x-vcr-outcome"] == "hit", (name, replayed)
        assert ANTHROPIC not in replayed.decode()
    replayer.stop()
    again = cli("redact", "--yes", "--db", db_path)
    assert again.exit_code == 0 and "Nothing to redact" in again.output


def test_the_same_secret_gets_the_same_placeholder_in_request_and_response(proxy, db_path):
    _record_secrets(proxy, db_path)
    assert cli("redact", "--yes", "--db", db_path).exit_code == 0
    with Catalog.open(db_path) as catalog:
        env_recordings = [r for r in catalog.iter_details("default") if b"tool_result" in r.request_body]
        (env_recording,) = env_recordings
        request_placeholders = {p for p in env_recording.request_body.decode().split('"') if "REDACTED:" in p}
        response = env_recording.response_body.decode()
    db_password = next(p for p in "".join(request_placeholders).split("\\n") if p.startswith("DB_PASSWORD="))
    assert db_password.split("=", 1)[1] in response


def test_redact_without_yes_asks_first(proxy, db_path):
    _record_secrets(proxy, db_path)
    before = rows(db_path)
    refused = cli("redact", "--db", db_path, input="n\n")
    assert refused.exit_code == 1 and "Replace" in refused.output
    assert rows(db_path) == before


def test_redact_also_drops_credential_headers_and_query_values_an_old_version_stored(db_path):
    old = recording(1)
    old.request_headers += [("X-Session-Key", "old-session-value-1"), ("x-trace", "fine")]
    old.path = "/v1/messages?api_key=legacy-0000"
    with Store(db_path) as store:
        store.save(old)
    assert cli("scan", "--db", db_path).exit_code == 1
    result = cli("redact", "--yes", "--db", db_path)
    assert "1 credential header(s) dropped" in result.output and "1 query value(s) replaced" in result.output
    (row,) = rows(db_path)
    assert row["path"] == "/v1/messages?api_key=REDACTED"
    assert "old-session-value-1" not in stored_text(db_path) and "legacy-0000" not in stored_text(db_path)
    assert "x-trace" in stored_text(db_path)


def test_serve_redact_stores_placeholders_and_replays_the_original(proxy, db_path, caplog):
    caplog.set_level(logging.INFO)
    recorder = proxy(mode="record", redact=True)
    body = ask(f"my key is {ANTHROPIC}")
    status, recorded, _ = post(recorder.url + "/v1/messages", body)
    recorder.stop()
    assert status == 200 and ANTHROPIC not in stored_text(db_path)
    assert any("stored with placeholders" in r.getMessage() for r in caplog.records)
    assert cli("scan", "--db", db_path).exit_code == 0
    replayer = proxy(mode="replay")
    status, _, headers = post(replayer.url + "/v1/messages", body)
    assert status == 200 and headers["x-vcr-outcome"] == "hit"


def test_a_saved_miss_holds_no_secret(proxy, db_path, tmp_path):
    misses = tmp_path / "misses"
    replayer = proxy(mode="replay", save_misses=misses)
    status, _, _ = post(
        replayer.url + "/v1/messages?key=query-secret-42",
        ask(f"key {ANTHROPIC}"),
        {"X-Session-Key": "sess-1234"},
    )
    assert status == 400
    (saved,) = misses.iterdir()
    text = saved.read_text()
    assert ANTHROPIC not in text and "query-secret-42" not in text and "sess-1234" not in text
    assert "REDACTED:anthropic-key:" in text


def test_an_import_warns_for_each_recording_with_a_secret(proxy, db_path, tmp_path):
    _record_secrets(proxy, db_path)
    out = tmp_path / "out"
    assert cli("export", out, "--db", db_path).exit_code == 0
    result = cli("import", out, "--db", tmp_path / "other.db")
    assert result.exit_code == 0
    warnings = [line for line in result.output.splitlines() if line.startswith("warning: recording default ")]
    assert len(warnings) == 3 and ANTHROPIC not in result.output


# --- the pre-commit hook, in a real git repository ---------------------------------------------------


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@e",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@e",
    }
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=check, env=env)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_the_pre_commit_hook_blocks_a_db_with_findings(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    db = repo / "tests" / "vcr.db"
    leaky = recording(1)
    leaky.request_body = json.dumps(ask(f"key {ANTHROPIC}")).encode()
    with Store(db) as store:
        store.save(leaky)
    command = f"{sys.executable} -m claude_vcr"
    setup = cli("git-setup", "--pre-commit", "--command", command, "--db", db)
    assert setup.exit_code == 0 and "pre-commit hook" in setup.output
    git(repo, "add", "-A")
    blocked = git(repo, "commit", "-q", "-m", "leak", check=False)
    assert blocked.returncode != 0
    assert "credential-shaped" in blocked.stderr and "--no-verify" in blocked.stderr
    assert ANTHROPIC not in blocked.stdout + blocked.stderr
    assert cli("redact", "--yes", "--db", db).exit_code == 0
    git(repo, "add", "-A")
    assert git(repo, "commit", "-q", "-m", "clean", check=False).returncode == 0
    with Store(db) as store:
        store.save(leaky)
    git(repo, "add", "-A")
    assert git(repo, "commit", "-q", "-m", "knowingly", "--no-verify", check=False).returncode == 0
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\necho mine\n")
    again = cli("git-setup", "--pre-commit", "--command", command, "--db", db)
    assert again.exit_code == 1 and "not claude-vcr's" in again.output
    assert hook.read_text() == "#!/bin/sh\necho mine\n"


def test_verify_never_resends_a_credential_a_db_holds():
    from claude_vcr.verify import request_headers

    old = recording(1)
    old.request_headers += [("X-Session-Key", "stored-by-an-old-version"), ("x-other", f"Bearer {AWS}")]
    sent = dict(request_headers(old, "the-verify-key"))
    assert "X-Session-Key" not in sent and "x-other" not in sent and sent["x-api-key"] == "the-verify-key"


def test_a_mitmproxy_dump_import_drops_credentials_and_warns(tmp_path):
    from tests.support.mitm import flow_state, tnetstring

    body = json.dumps(ask(f"key {ANTHROPIC}")).encode()
    state = flow_state(
        body,
        path=b"/v1/messages?api_key=dump-secret-99",
        headers=[[b"content-type", b"application/json"], [b"X-Session-Key", b"dump-session-1"]],
    )
    dump = tmp_path / "capture.mitm"
    dump.write_bytes(tnetstring(state))
    db = tmp_path / "dump.db"
    result = cli("import", dump, "--cassette", "captured", "--db", db)
    assert result.exit_code == 0, result.output
    assert "warning: recording captured " in result.output and ANTHROPIC not in result.output
    text = stored_text(db)
    assert "dump-secret-99" not in text and "dump-session-1" not in text
    assert [row["path"] for row in rows(db)] == ["/v1/messages?api_key=REDACTED"]


def test_serve_redact_screens_a_large_response_too(proxy, db_path):
    """Over 4 MB a response goes to disk compressed as it streams; --redact still replaces what it holds."""
    padding = "lorem ipsum dolor sit amet " * 200_000  # about 5.4 MB, echoed back by the scripted API
    body = {
        "model": "claude-haiku-4-5",
        "max_tokens": 50,
        "messages": [
            {"role": "user", "content": "read it"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": f"{padding} {AWS} end"}
                ],
            },
        ],
    }
    recorder = proxy(mode="record", redact=True)
    status, answer, _ = post(recorder.url + "/v1/messages", body)
    recorder.stop()
    assert status == 200 and AWS in answer.decode() and len(answer) > 5_000_000  # the client got it as sent
    assert AWS not in stored_text(db_path)
    with Catalog.open(db_path) as catalog:
        (stored,) = catalog.iter_details()
    assert b"REDACTED:aws-access-key:" in stored.response_body and stored.response_body.endswith(answer[-20:])


def test_a_secret_a_stream_splits_across_deltas_is_found_and_redacted(db_path):
    from claude_vcr.conformance.library import message, usage
    from claude_vcr.sse import accumulate, parse_sse

    said = f"Your .env holds {ANTHROPIC} as the key."
    cuts = [0, 20, 40, 70, len(said)]  # the key spans three deltas, as a model's tokens would cut it
    pieces = [said[cuts[i] : cuts[i + 1]] for i in range(len(cuts) - 1)]
    assert not any(ANTHROPIC in piece for piece in pieces)
    events = [
        {"type": "message_start", "message": message("split", usage(10, 1))},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        *(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}
            for p in pieces
        ),
        {"type": "content_block_stop", "index": 0},
        {"type": "message_stop"},
    ]
    leaky = recording(1, stream=True)
    leaky.request_body = json.dumps(ask(f"the key is {ANTHROPIC}", stream=True)).encode()
    leaky.response_body = b"".join(
        f"event: {e['type']}\ndata: {json.dumps(e, separators=(',', ':'))}\n\n".encode() for e in events
    )
    with Store(db_path) as store:
        store.save(leaky)
    found = json.loads(cli("scan", "--json", "--db", db_path).output)
    response = [f for f in found if f["side"] == "response"]
    assert [(f["kind"], f["json_path"]) for f in response] == [("anthropic-key", "events[2].delta.text")]
    assert cli("redact", "--yes", "--db", db_path).exit_code == 0
    assert cli("scan", "--db", db_path).exit_code == 0
    with Catalog.open(db_path) as catalog:
        (stored,) = catalog.iter_details()
    assert ANTHROPIC[10:] not in stored.response_body.decode()
    text = accumulate(parse_sse(stored.response_body))["content"][0]["text"]
    placeholder = secrets_placeholder(ANTHROPIC)
    assert text == said.replace(ANTHROPIC, placeholder)
    assert placeholder in stored.request_body.decode()  # the same placeholder on both sides


def secrets_placeholder(secret: str) -> str:
    from claude_vcr.secrets import find

    (found,) = find(secret)
    return found.placeholder


def test_redact_leaves_no_copy_of_the_old_bytes_in_the_file(db_path):
    """SQLite keeps deleted content in free pages and free space; redact zeroes it (`secure_delete`)."""
    leaky = recording(1)
    leaky.request_body = json.dumps(ask(f"key {ANTHROPIC} " + "filler " * 2000)).encode()  # chunked
    small = recording(2)
    small.request_body = json.dumps(ask(f"and {AWS}")).encode()
    with Store(db_path) as store:
        store.save(leaky)
        store.save(small)
    conn = sqlite3.connect(db_path)
    old_blobs = [
        row[0] for row in conn.execute("SELECT request_body FROM recordings WHERE request_codec = 'zstd'")
    ]
    old_blobs += [row[0] for row in conn.execute("SELECT data FROM chunks")]
    conn.close()
    assert old_blobs and all(blob in db_path.read_bytes() for blob in old_blobs)
    assert cli("redact", "--yes", "--db", db_path).exit_code == 0
    conn = sqlite3.connect(db_path)
    live = {row[0] for row in conn.execute("SELECT data FROM chunks")}  # chunks without a secret stay in use
    conn.close()
    after = db_path.read_bytes()
    assert [blob for blob in old_blobs if blob in after and blob not in live] == []


def test_redact_is_one_transaction(db_path, monkeypatch):
    for index, secret in enumerate([ANTHROPIC, AWS, CORPUS["github-token"]]):
        leaky = recording(index)
        leaky.request_body = json.dumps(ask(f"key {secret}")).encode()
        with Store(db_path) as store:
            store.save(leaky)
    before = rows(db_path)
    calls = []
    real = Store.rewrite

    def failing(self, recording):
        calls.append(recording.id)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(self, recording)

    monkeypatch.setattr(Store, "rewrite", failing)
    result = cli("redact", "--yes", "--db", db_path)
    assert result.exit_code == 1 and "disk full" in result.output and len(calls) == 2
    assert rows(db_path) == before


def test_scan_labels_each_occurrence_with_the_string_that_holds_it():
    secret = (
        "sk-" + "ant-api03-" + "Qx7" * 31
    )  # not from the corpus: its shared random source stays as other tests expect
    body = {
        "model": "claude-haiku-4-5",
        "system": f"the project's key is {secret}",
        "messages": [{"role": "user", "content": [{"type": "text", "text": f"use {secret} for this"}]}],
    }
    item = dataclasses.replace(recording(1), request_body=json.dumps(body).encode())
    assert [f.json_path for f in scan_recording(item) if f.side == "request"] == [
        "$.system",
        "$.messages[0].content[0].text",
    ]
