"""Connection probes (`HEAD` on any path) are never stored and are answered locally in replay."""

from __future__ import annotations

import pytest

from tests.support.cassettes import rows
from tests.support.client import post
from tests.support.loopback import unreachable_url

PROBES = ["/", "/api/hello", "/v1/messages", "/c/probed/"]


@pytest.mark.parametrize("mode", ["auto", "record"])
def test_head_on_any_path_is_forwarded_when_online_and_never_stored(proxy, upstream, db_path, mode):
    server = proxy(mode=mode)
    for path in PROBES:
        post(server.url + path, b"", method="HEAD")  # the scripted upstream's own answer, passed through
    assert [(c.method, c.path) for c in upstream.calls] == [("HEAD", p.removeprefix("/c/probed")) for p in PROBES]
    server.stop()
    assert rows(db_path) == []


def test_head_on_any_path_is_answered_locally_in_strict_replay(proxy, upstream):
    upstream.stop()
    replay = proxy(mode="replay", upstream=unreachable_url())
    for path in PROBES:
        assert post(replay.url + path, b"", method="HEAD")[0] == 200
    assert upstream.calls == []
