"""Misses that point at the right recording: ranked by how alike the requests are, said with marked excerpts."""

from __future__ import annotations

import anthropic
import pytest
from claude_vcr.matching import Replacement, Rules, key_request, likeness, similarity

from tests.support.client import client, params
from tests.support.loopback import unreachable_url

RECORDED = ["convert me", "recorded question about llamas", "what is the capital of France?", "hello"]


def keyed(text: str):
    import json

    return key_request("POST", "/v1/messages", "", json.dumps(params(text)).encode())


DATES = Rules(replace=(Replacement(r"\d{4}-\d{2}-\d{2}", "<DATE>"),))
"""Rules with a regular expression of their own: the proxy applies them to stored requests in its worker."""


@pytest.mark.parametrize("rules", [None, DATES], ids=["default-rules", "replace-rules"])
def test_one_changed_word_is_closest_to_the_recording_with_that_word_changed(proxy, upstream, rules):
    """The issue's case: every recording differs from the request in its one message, so the share of parts in
    common ties them all (75%); how alike the differing text is decides, and the percentage says how much is the
    same. The same under stored rules with a `replace` pattern, worked out in the worker process then (with
    its deadline), and only then."""
    missed = keyed("recorded question about camels")
    assert len({similarity(missed.fingerprints, keyed(t).fingerprints) for t in RECORDED}) == 1  # the old tie

    recorder = proxy(mode="record", **({"rules": rules} if rules else {}))
    keys = {}
    for text in RECORDED:
        raw = client(recorder.url).messages.with_raw_response.create(**params(text))
        keys[text] = raw.headers["x-vcr-key"]
    recorder.stop()
    upstream.stop()

    replay = proxy(mode="replay", upstream=unreachable_url())
    with pytest.raises(anthropic.BadRequestError) as raised:
        client(replay.url).messages.create(**params("recorded question about camels"))
    message = raised.value.body["error"]["message"]
    closest = message.split("Closest recordings: ", 1)[1].split(". Request vs", 1)[0]
    first, *rest = closest.split(", ")
    assert first.startswith(keys["recorded question about llamas"][:12]), message
    percent = int(first.split("(")[1].split("%")[0])
    assert 90 <= percent < 100
    assert all(int(r.split("(")[1].split("%")[0]) < percent for r in rest)
    assert (
        'messages[0].content: "recorded question about «camels»" vs "recorded question about «llamas»"' in message
    )
    assert replay.running.proxy.offload.started is (rules is not None)


def test_likeness_reflects_how_much_differs():
    camels, llamas, convert = (keyed(t).normalised for t in ("recorded question about camels", RECORDED[1], RECORDED[0]))
    assert likeness(camels, camels) == 1.0
    assert 0.9 < likeness(camels, llamas) < 1.0
    assert likeness(camels, convert) < likeness(camels, llamas)
    longer = {**camels, "messages": [{"role": "user", "content": "recorded question about camels " * 40}]}
    assert likeness(camels, longer) < 0.2  # a forty-times longer message is mostly different
