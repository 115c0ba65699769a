"""Train the zstd dictionary claude-vcr ships (vcr/zstd_dictionary.py) from Claude-shaped samples.

    python3 train_dictionary.py --output /tmp/candidate.py    # a candidate, to measure
    python3 train_dictionary.py --replace                      # rewrite vcr/zstd_dictionary.py (see below)

The shipped dictionary must not change under existing dbs: their frames name it by id, and this version
reads only that one. Replacing it means keeping the old one readable too (a table of dictionaries by id in
compression.py), so `--replace` is for that change alone. The samples include the docs, so a later run
trains a different dictionary.

Why a dictionary: every stored body is its own zstd frame, so each pays again for what all of them share
(the SSE event framing, the Messages JSON scaffolding, Claude Code's message wrappers), and git, which
deltas whole files, cannot see through compressed bytes. A shared dictionary makes each frame carry mostly
what is new in it. It is trained once, here, and shipped: a dictionary trained per db would change as the
db grows, and every body compressed with the old one would have to change with it (a whole-file diff).

The samples are built from this repository's own texts (README, docs, the Python sources) and Claude
Code's real request bodies in tests/data/claude-code, cut into SSE answers and request chunks the way the
store cuts them; the benchmarks' generated prose is deliberately not among them.
"""

from __future__ import annotations

import base64
import json
import random
import textwrap
from pathlib import Path

import zstandard

REPO = Path(__file__).resolve().parent
OUTPUT = REPO / "vcr" / "zstd_dictionary.py"
SIZE = 16 * 1024
"""For the SSE and JSON scaffolding; measured within a few percent of a 110 KB one on SSE answers."""


def _event(payload: dict) -> bytes:
    return f"event: {payload['type']}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


def _sentences(rng: random.Random, corpus: list[str], count: int) -> list[str]:
    start = rng.randrange(max(1, len(corpus) - count))
    return corpus[start : start + count]


def sse_answer(rng: random.Random, corpus: list[str], code: list[str]) -> bytes:
    """An Anthropic stream: text deltas of a few words, sometimes a tool_use with input_json_delta."""
    message_id = "msg_01" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789") for _ in range(22))
    model = rng.choice(["claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-5-5"])
    start = {
        "type": "message_start",
        "message": {
            "id": message_id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": rng.randint(3, 40000), "cache_creation_input_tokens": rng.randint(0, 9000),
                      "cache_read_input_tokens": rng.randint(0, 40000), "output_tokens": rng.randint(1, 9)},
        },
    }
    parts = [_event(start), _event({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
             _event({"type": "ping"})]
    text = " ".join(_sentences(rng, corpus, rng.randint(3, 40)))
    position = 0
    while position < len(text):
        step = rng.randint(2, 40)
        parts.append(_event({"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": text[position : position + step]}}))
        position += step
    parts.append(_event({"type": "content_block_stop", "index": 0}))
    stop = "end_turn"
    if rng.random() < 0.5:
        stop = "tool_use"
        tool = rng.choice(["Bash", "Read", "Edit", "Write", "Grep", "Glob", "TodoWrite"])
        parts.append(_event({"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": "toolu_01" + "".join(rng.choice("abcdefghijkmnopqrstuvwxyz0123456789") for _ in range(22)),
            "name": tool, "input": {}}}))
        arguments = json.dumps({"command": rng.choice(code)[:120], "description": _sentences(rng, corpus, 1)[0][:80]})
        position = 0
        while position < len(arguments):
            step = rng.randint(1, 30)
            parts.append(_event({"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "input_json_delta", "partial_json": arguments[position : position + step]}}))
            position += step
        parts.append(_event({"type": "content_block_stop", "index": 1}))
    parts.append(_event({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                         "usage": {"output_tokens": rng.randint(5, 4000)}}))
    parts.append(_event({"type": "message_stop"}))
    return b"".join(parts)


def request_messages(rng: random.Random, corpus: list[str], code: list[str]) -> bytes:
    """The part of a Claude Code request that changes turn to turn: history with tool calls and results."""
    history = []
    for _ in range(rng.randint(1, 4)):
        tool_id = "toolu_01" + "".join(rng.choice("abcdefghijkmnopqrstuvwxyz0123456789") for _ in range(22))
        history.append({"role": "assistant", "content": [
            {"type": "text", "text": " ".join(_sentences(rng, corpus, rng.randint(1, 3)))},
            {"type": "tool_use", "id": tool_id, "name": rng.choice(["Bash", "Read", "Edit", "Grep"]),
             "input": {"command": rng.choice(code)[:100]}}]})
        output = "\n".join(_sentences(rng, code, rng.randint(5, 60)))
        history.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": tool_id, "content": output, "is_error": rng.random() < 0.1}]})
    return json.dumps(history).encode()[1:-1]


def samples() -> list[bytes]:
    rng = random.Random(20261207)
    prose = [(REPO / "README.md").read_text()] + [p.read_text() for p in sorted((REPO / "docs").glob("*.md"))]
    corpus = [s.strip() for text in prose for s in text.replace("\n", " ").split(". ") if len(s.strip()) > 20]
    code = [line for p in sorted((REPO / "vcr").rglob("*.py")) for line in p.read_text().splitlines() if line.strip()]
    requests = [json.loads(p.read_text())["body"] for p in sorted((REPO / "tests" / "data" / "claude-code").glob("*turn*.json"))]
    found = [sse_answer(rng, corpus, code) for _ in range(1500)]
    found += [request_messages(rng, corpus, code) for _ in range(1500)]
    for body in requests:  # the scaffolding of Claude Code's first user message (system reminders, env)
        found += [json.dumps(message).encode() for message in body["messages"]]
    return found


def claude_code_content() -> bytes:
    """Claude Code's system prompt and tool definitions as it sends them (compact JSON): the same in every
    request of every session of a release, so the largest share of what a team's db holds. Training picks
    what many samples share and would leave them out; they are appended to the dictionary's content whole."""
    latest = json.loads((REPO / "tests" / "data" / "claude-code" / "tool-turn-2.json").read_text())["body"]
    compact = {"separators": (",", ":"), "ensure_ascii": False}
    return (json.dumps(latest["system"], **compact) + json.dumps(latest["tools"], **compact)).encode()


def train() -> zstandard.ZstdCompressionDict:
    """A dictionary trained on the samples, its content extended with Claude Code's fixed text (a zstd
    dictionary's content runs to its end, so what is appended is usable and the id stays the trained one)."""
    trained = zstandard.train_dictionary(SIZE, samples(), k=1024, d=8, threads=1)
    return zstandard.ZstdCompressionDict(trained.as_bytes() + claude_code_content())


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--replace", action="store_true", help="overwrite the shipped dictionary")
    options = parser.parse_args()
    if options.output.resolve() == OUTPUT.resolve() and OUTPUT.exists() and not options.replace:
        raise SystemExit(f"{OUTPUT} exists and dbs depend on it; write a candidate with --output, or --replace")
    dictionary = train()
    encoded = base64.b64encode(dictionary.as_bytes()).decode()
    lines = textwrap.wrap(encoded, 100)
    options.output.write_text(
        '"""The zstd dictionary bodies are compressed with (written by `python3 train_dictionary.py`; see there\n'
        'why it is shipped, not trained per db). Never change it in place: a new one gets a new id and the old\n'
        'stays readable, because frames record the id of the dictionary they need."""\n\n'
        f"DICTIONARY_ID = {dictionary.dict_id()}\n"
        "DICTIONARY_BASE64 = (\n" + "".join(f'    "{line}"\n' for line in lines) + ")\n",
        encoding="utf-8",
    )
    print(f"{options.output}: dictionary {dictionary.dict_id()}, {len(dictionary.as_bytes()):,} bytes")


if __name__ == "__main__":
    main()
