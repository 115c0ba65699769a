"""The record-run policy the proxy and every import share: ordinals, replacing a key once, rules on first save."""

from __future__ import annotations

from claude_vcr.matching import KEY_SCHEME, Rules
from claude_vcr.record_run import CassetteRun
from claude_vcr.records import StoredRules

DEFAULT = Rules(presets=("claude-code",))


def test_identical_requests_are_numbered_in_arrival_order_per_key():
    run = CassetteRun.start(None, DEFAULT)
    assert [run.ordinal("a"), run.ordinal("a"), run.ordinal("b"), run.ordinal("a")] == [0, 1, 0, 2]


def test_a_given_ordinal_is_kept_and_the_count_goes_on_after_it():
    run = CassetteRun.start(None, DEFAULT)
    assert run.ordinal("a", 3) == 3
    assert run.ordinal("a") == 4
    assert run.ordinal("a", 1) == 1  # an export's own repeat, out of order
    assert run.ordinal("a") == 5


def test_a_key_replaces_its_older_recordings_once_per_run():
    run = CassetteRun.start(None, DEFAULT)
    assert [run.replaces("a"), run.replaces("a"), run.replaces("b")] == [True, False, True]


def test_a_new_cassette_is_keyed_with_the_defaults_and_stores_them_on_its_first_save_only():
    run = CassetteRun.start(None, DEFAULT)
    assert run.rules == DEFAULT and not run.rules_stored
    assert run.rules_to_store() == StoredRules(DEFAULT.to_json(), KEY_SCHEME)
    assert run.rules_to_store() is None


def test_a_cassette_without_rules_gets_the_defaults_too():
    run = CassetteRun.start(StoredRules(None, "v1"), DEFAULT)
    assert run.rules == DEFAULT and run.rules_to_store() is not None


def test_a_cassette_keeps_the_rules_it_was_recorded_with():
    recorded = Rules(ignore=("metadata", "temperature"))
    run = CassetteRun.start(StoredRules(recorded.to_json(), KEY_SCHEME), DEFAULT)
    assert run.rules == recorded and run.rules_stored
    assert run.rules_to_store() is None


def test_stored_rules_become_rules_in_one_place():
    recorded = Rules(ignore=("metadata", "temperature"))
    assert StoredRules(recorded.to_json(), KEY_SCHEME).rules() == recorded
    assert StoredRules(None, "").rules() == Rules()
    assert StoredRules(None, "").rules(DEFAULT) == DEFAULT


def test_an_import_runs_the_same_policy_against_the_store(tmp_path):
    from claude_vcr.interchange.recorder import ImportRun
    from claude_vcr.records import Recording
    from claude_vcr.store import Store

    body = b'{"model": "claude-opus-5-5", "messages": [{"role": "user", "content": "hi"}]}'

    def imported(run: ImportRun) -> Recording:
        keyed = run.key("c", "POST", "/v1/messages", body)
        return Recording(
            cassette="c",
            key=keyed.key,
            key_scheme=KEY_SCHEME,
            method="POST",
            path="/v1/messages",
            status=200,
            request_headers=[],
            request_body=body,
            response_headers=[],
            response_body=b"{}",
            ordinal=run.claim("c", keyed.key),
        )

    with Store(tmp_path / "vcr.db") as store:
        first = ImportRun(store, ("claude-code",))
        for _ in range(2):
            first.save(imported(first))
        assert store.catalog.cassette_rules("c") == StoredRules(DEFAULT.to_json(), KEY_SCHEME)
        assert [ordinal for _, _, ordinal in store.catalog.keys("c")] == [0, 1]
        second = ImportRun(store)  # a later run replaces the key's recordings, under the rules stored first
        second.save(imported(second))
        assert second.report.replaced_keys == 1 and [o for _, _, o in store.catalog.keys("c")] == [0]
        assert store.catalog.cassette_rules("c") == StoredRules(DEFAULT.to_json(), KEY_SCHEME)
