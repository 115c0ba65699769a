"""The Agent SDK's release matrix: sessions recorded through `query()` of three `claude-agent-sdk` releases
(August to December 2026, each with the Claude Code it bundles) replay strict under the claude-code preset with
every later release, from another directory, HOME and date, and no request reaches the upstream."""

from __future__ import annotations

import json

import pytest
from claude_vcr import claude_code
from claude_vcr.catalog import Catalog

from tests.support.agent_sdk_matrix import RELEASES, bundled_cli, later, run_query
from tests.support.claude_code_matrix import REPLAYED, collisions, replay_sessions

pytestmark = pytest.mark.claude_code

PAIRS = [(old, new) for old in RELEASES for new in later(old)]


@pytest.mark.parametrize("version", list(RELEASES))
def test_each_release_drives_the_claude_code_it_bundles(agent_sdk_recordings, version):
    python, recorded = agent_sdk_recordings(version)
    assert bundled_cli(python) == RELEASES[version]
    catalog = Catalog.open(recorded.db)
    try:
        seen = {
            (claude_code.version(dict(r.request_headers), body), "cc_entrypoint=sdk-py" in r.request_body.decode())
            for r in catalog.iter_details()
            if claude_code.is_claude_code(body := json.loads(r.request_body))
        }
    finally:
        catalog.close()
    assert seen == {(RELEASES[version], True)}


@pytest.mark.parametrize("old, new", PAIRS, ids=[f"{o}->{n}" for o, n in PAIRS])
def test_a_query_recorded_with_one_sdk_release_replays_strict_with_a_later_one(
    agent_sdk_recordings, loop_thread, tmp_path, old, new
):
    _, recorded = agent_sdk_recordings(old)
    python, _ = agent_sdk_recordings(new)
    outputs = replay_sessions(
        loop_thread, recorded.db, python, tmp_path, run=run_query, date="2027-03-14", sessions=REPLAYED
    )
    assert outputs == {s.name: recorded.outputs[s.name] for s in REPLAYED}


@pytest.mark.parametrize("version", list(RELEASES))
def test_no_two_sdk_requests_of_different_purposes_or_conversations_share_a_key(agent_sdk_recordings, version):
    found = collisions(agent_sdk_recordings(version)[1].db)
    assert found.keys >= 8
    assert len(found.purposes) >= 2, found.purposes  # the title side request beside the main loop's
    assert not found.shared
