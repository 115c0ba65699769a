"""Large request bodies are keyed in a child process (`proxy/offload.py`), so keying megabytes of JSON never holds
the interpreter lock the event loop needs. Keys made there must be the keys made in-process: recordings made
before keep matching, under every preset."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import multiprocessing
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from claude_vcr.catalog import Catalog
from claude_vcr.compression import decompressor, pack_chunks
from claude_vcr.excerpts import prompt_excerpt
from claude_vcr.matching import MAX_JSON_DEPTH, Replacement, Rules, key_request
from claude_vcr.proxy.offload import IN_PROCESS_BYTES, Offload
from claude_vcr.store import Store

from tests.support.cassettes import recording
from tests.support.client import MESSAGES, body, post
from tests.support.samples import relocated, sample
from tests.support.secret_corpus import fake_secrets
from tests.test_redact import stored_text

RULES = {
    "default": Rules(),
    "ignore and replace": Rules(
        ignore=("metadata", "system", "messages[*].content[0].cache_control"),
        replace=(Replacement(r"\d{4}-\d{2}-\d{2}", "<DATE>"), Replacement("block [0-9]+", "<BLOCK>")),
    ),
    **{
        f"claude-code v{version}": Rules(presets=("claude-code",), versions=(("claude-code", version),))
        for version in (1, 2, 3)
    },
}


def large(base: dict, blocks: int = 3000) -> dict:
    """A request past the keying threshold: the sample with a long last user turn of text blocks."""
    grown = json.loads(json.dumps(base))
    extra = [{"type": "text", "text": f"block {i}: 2026-12-07 lorem ipsum dolor"} for i in range(blocks)]
    grown["messages"].append({"role": "user", "content": extra})
    return grown


def bodies() -> list[tuple[str, bytes]]:
    found = [
        (name, json.dumps(large(sample(name))).encode())
        for name in ("text-turn", "tool-turn-1", "tool-turn-2")
    ]
    moved = relocated(large(sample("tool-turn-2")), "/srv/ci/shop", "/root")
    found.append(("tool-turn-2 elsewhere", json.dumps(moved).encode()))
    found.append(("plain messages", json.dumps(large(body("hi", stream=True))).encode()))
    found.append(("not JSON", b"x" * (IN_PROCESS_BYTES + 1)))
    return found


@pytest.fixture(scope="module")
def keyed_in_child() -> dict[tuple[str, str], object]:
    """Every (body, rules) keyed through one real worker process, as the proxy does."""

    async def run() -> dict[tuple[str, str], object]:
        offload = Offload()
        try:
            found = {}
            for name, data in bodies():
                assert len(data) > IN_PROCESS_BYTES
                for rules_name, rules in RULES.items():
                    found[(name, rules_name)] = await offload.key("POST", MESSAGES, "beta=true", data, rules)
            assert offload.started
            return found
        finally:
            await offload.close()

    return asyncio.run(run())


@pytest.mark.parametrize("rules_name", list(RULES))
def test_a_key_made_in_the_child_process_is_the_in_process_key(keyed_in_child, rules_name):
    for name, data in bodies():
        mine = keyed_in_child[(name, rules_name)]
        theirs = key_request("POST", MESSAGES, "beta=true", data, RULES[rules_name])
        assert mine.key == theirs.key, name
        assert (mine.fingerprints, mine.model, mine.wants_stream) == (
            theirs.fingerprints,
            theirs.model,
            theirs.wants_stream,
        ), name
        assert mine.normalised == theirs.normalised, name  # worked out again here when a miss asks for it


def test_the_presets_do_blur_the_large_requests(keyed_in_child):
    """The comparison above is not vacuous: the rules change the keys, and moving the request does not
    change the claude-code keys."""
    keys = {rules: keyed_in_child[("tool-turn-2", rules)].key for rules in RULES}
    assert len(set(keys.values())) == len(RULES)
    for version in (1, 2, 3):
        rules = f"claude-code v{version}"
        assert keyed_in_child[("tool-turn-2 elsewhere", rules)].key == keys[rules]
    assert keyed_in_child[("tool-turn-2 elsewhere", "default")].key != keys["default"]


def test_no_worker_process_means_reading_in_a_thread(caplog):
    """Where no child process can start (here: a Python that does not exist), large bodies are still keyed."""
    context = multiprocessing.get_context("spawn")
    data = json.dumps(large(sample("text-turn"))).encode()

    async def run():
        offload = Offload(context=context)
        try:
            return await offload.key("POST", MESSAGES, "", data, RULES["claude-code v3"])
        finally:
            await offload.close()

    executable = multiprocessing.spawn.get_executable()
    context.set_executable("/nonexistent/python3")
    try:
        keyed = asyncio.run(run())
    finally:
        context.set_executable(executable)
    assert keyed.key == key_request("POST", MESSAGES, "", data, RULES["claude-code v3"]).key
    assert "read in a thread" in caplog.text


def test_a_large_recorded_request_stores_the_in_process_key_and_replays(proxy, upstream, db_path):
    data = json.dumps(large(sample("tool-turn-2"), blocks=20_000)).encode()
    assert len(data) > 1024 * 1024
    recorder = proxy(mode="record", cassette="big")
    status, headers, _ = post(recorder.url + MESSAGES, data)
    expected = key_request("POST", MESSAGES, "", data, Rules())
    assert expected.wants_stream  # a stream says `recording` until its end, saved
    assert status == 200 and headers["x-vcr-outcome"] == "recording"
    assert recorder.running.proxy.offload.started
    recorder.stop()
    assert multiprocessing.active_children() == []  # the worker stopped with the server
    with Catalog.open(db_path) as catalog:
        stored = catalog.recording("big", expected.key)
    assert stored is not None and stored.fingerprints == expected.fingerprints
    assert stored.model == expected.model
    with Catalog.open(db_path) as catalog:
        (row,) = catalog.recordings("big")
    assert row.prompt_excerpt == prompt_excerpt(data) and row.prompt_excerpt.startswith("block 0: ")
    replayer = proxy(mode="replay", cassette="big")
    status, headers, _ = post(replayer.url + MESSAGES, data)
    assert status == 200 and headers["x-vcr-outcome"] == "hit" and headers["x-vcr-key"] == expected.key


def test_a_large_body_nested_too_deep_is_a_400_from_the_child(proxy, upstream, db_path):
    padding = "x" * (IN_PROCESS_BYTES + 10)
    deep = "[" * (MAX_JSON_DEPTH + 5) + "]" * (MAX_JSON_DEPTH + 5)
    data = f'{{"model":"claude-opus-5-5","max_tokens":8,"messages":[],"pad":"{padding}","metadata":{{"x":{deep}}}}}'
    recorder = proxy(mode="record")
    status, _, answer = post(recorder.url + MESSAGES, data.encode())
    assert status == 400 and b"nested deeper" in answer
    assert upstream.calls == []


def test_a_secret_in_a_large_request_is_found_in_the_child_and_stored_as_a_placeholder(
    proxy, upstream, db_path, caplog
):
    caplog.set_level(logging.INFO)
    secret = dict(fake_secrets())["anthropic-key"]
    grown = large(sample("text-turn"), blocks=5000)
    grown["messages"][-1]["content"][2500]["text"] = f"my key is {secret}"
    data = json.dumps(grown).encode()
    recorder = proxy(mode="record", redact=True)
    status, _, _ = post(recorder.url + MESSAGES, data)
    assert status == 200
    assert recorder.running.proxy.offload.started
    recorder.stop()
    assert any("stored with placeholders" in r.getMessage() for r in caplog.records)
    assert secret not in stored_text(db_path) and "block 4999" in stored_text(db_path)
    replayer = proxy(mode="replay")
    status, headers, _ = post(replayer.url + MESSAGES, data)
    assert status == 200 and headers["x-vcr-outcome"] == "hit"


def test_a_script_without_a_main_guard_runs_once(tmp_path, upstream):
    """A spawned child re-runs the parent's main script unless told there is none: the worker is started
    without it, so a user's script that sets up the proxy at its top level is not run twice."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import asyncio, json, urllib.request
            from claude_vcr.config import ProxyConfig
            from claude_vcr.proxy import running

            print("the script ran", flush=True)
            BLOCKS = [{{"type": "text", "text": f"block {{i}}"}} for i in range(20_000)]
            DATA = json.dumps({{"model": "m", "max_tokens": 8, "messages": [{{"role": "user", "content": BLOCKS}}]}})

            def post(url):
                request = urllib.request.Request(url + "/v1/messages", data=DATA.encode(), method="POST")
                request.add_header("content-type", "application/json")
                with urllib.request.urlopen(request, timeout=60) as response:
                    return response.headers["x-vcr-outcome"]

            async def main():
                config = ProxyConfig(db={str(tmp_path / "vcr.db")!r}, upstream={upstream.url!r}, port=0, mode="record")
                async with running(config) as proxy:
                    print("outcome", await asyncio.to_thread(post, proxy.url), proxy.proxy.offload.started, flush=True)

            asyncio.run(main())
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("the script ran") == 1, done.stdout
    assert "outcome recorded True" in done.stdout and "Traceback" not in done.stderr


def test_chunks_packed_in_the_worker_are_the_chunks_the_store_makes(tmp_path):
    data = json.dumps(large(sample("tool-turn-2"), blocks=8000)).encode()
    packed = pack_chunks(data)
    assert packed is not None and len(packed.ids) > 20 and packed.ends[-1] == len(data)
    stored = {}
    for name, chunks in (("on the store thread", None), ("in the worker", packed)):
        db = tmp_path / f"{len(stored)}.db"
        with Store(db) as store:
            saved = store.save(dataclasses.replace(recording(1), request_body=data), chunks=chunks)
        with Catalog.open(db) as catalog:
            assert catalog.detail(saved.id).request_body == data  # rebuilt from its chunks, hash checked
        conn = sqlite3.connect(db)
        unpack = decompressor()
        stored[name] = {key: unpack.decompress(blob) for key, blob in conn.execute("SELECT id, data FROM chunks")}
        conn.close()
    assert stored["in the worker"] == stored["on the store thread"]
    assert len(stored["in the worker"]) == len(packed.ids)
