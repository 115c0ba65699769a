"""The pytest plugin on real suites: the official SDK (sync, async, streaming) through the marker, record
modes, misses that explain themselves, the end-of-run summary, the fixture, names and inertness."""

from __future__ import annotations

import sqlite3

import pytest
from claude_vcr.pytest_plugin import default_cassette_name  # noqa: E402
from claude_vcr.store import Store

from tests.support.cli import cli
from tests.support.client import TEST_API_KEY
from tests.support.inner_suites import FAST, SDK_SUITE, answers, clean_environment


@pytest.fixture
def inner(pytester, monkeypatch, upstream, tmp_path):
    """Run an inner suite against the scripted upstream, recording into this test's db."""
    clean_environment(monkeypatch)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    db = tmp_path / "cassettes.db"

    def run(*args, upstream_url=None, key=None):
        if key:
            monkeypatch.setenv("ANTHROPIC_API_KEY", key)
        else:
            monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
        return pytester.runpytest_subprocess(
            *FAST, "-s",
            f"--claude-vcr-db={db}", f"--claude-vcr-upstream={upstream_url or upstream.url}", *args,
            timeout=180,
        )

    run.db = db
    return run


def recordings(db) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT c.name, count(*) FROM recordings r JOIN cassettes c ON c.id = r.cassette_id GROUP BY c.name"
        )
        return dict(rows.fetchall())


def test_sdk_sync_async_and_streaming_record_once_then_replay_offline(pytester, inner, upstream):
    pytester.makepyfile(test_sdk=SDK_SUITE)
    recorded = inner("--claude-vcr-record-mode=once", key=TEST_API_KEY)
    recorded.assert_outcomes(passed=3)
    assert len(upstream.script.message_calls()) == 3
    assert recordings(inner.db) == {
        "test_sdk.test_sync": 1, "test_sdk.test_async": 1, "test_sdk.test_stream": 1
    }
    upstream.stop()
    replayed = inner()  # the default record mode is none: never contacts the upstream
    replayed.assert_outcomes(passed=3)
    assert answers(replayed.stdout.str()) == answers(recorded.stdout.str())
    assert len(answers(replayed.stdout.str())) == 3
    summary = replayed.stdout.str()
    assert "claude-vcr: 3 cassette(s)" in summary and "0 recorded, 3 replayed, 0 missed" in summary


MISS_SUITE = '''
import json, os, subprocess, sys

import anthropic
import pytest


@pytest.mark.claude_vcr
def test_sdk_sees_the_miss():
    anthropic.Anthropic(max_retries=0).messages.create(
        model="claude-opus-5-5", max_tokens=64, messages=[{"role": "user", "content": "never recorded"}]
    )


@pytest.mark.claude_vcr
def test_swallowed_in_a_subprocess():
    subprocess.run([sys.executable, "swallowing_client.py"], check=True)
'''


SWALLOWING_CLIENT = """
import json, os, urllib.request

body = json.dumps({"model": "m", "max_tokens": 1, "messages": []}).encode()
request = urllib.request.Request(
    os.environ["ANTHROPIC_BASE_URL"] + "/v1/messages", data=body, headers={"content-type": "application/json"}
)
try:
    urllib.request.urlopen(request)
except Exception as error:
    print("ignored", error)
"""


def test_a_miss_in_none_mode_fails_the_test_with_its_diagnosis_even_when_the_code_swallowed_it(
    pytester, inner, upstream
):
    pytester.makepyfile(test_miss=MISS_SUITE, swallowing_client=SWALLOWING_CLIENT)
    Store(inner.db).close()  # a db with nothing in it: without one, record mode none creates none
    result = inner()
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "no recording for POST /v1/messages in cassette 'test_miss.test_sdk_sees_the_miss'" in out
    assert "no recording for POST /v1/messages in cassette 'test_miss.test_swallowed_in_a_subprocess'" in out
    assert "record mode 'none' never contacts the upstream" in out
    assert "--claude-vcr-record-mode=once" in out
    assert upstream.calls == []
    assert "0 recorded, 0 replayed, 2 missed" in out


FIXTURE_SUITE = '''
import os

import anthropic
import pytest

ASK = {"model": "claude-opus-5-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hello"}]}


def test_unmarked_tests_see_no_proxy():
    assert "ANTHROPIC_BASE_URL" not in os.environ


def test_fixture(claude_vcr):
    assert os.environ["ANTHROPIC_BASE_URL"] == claude_vcr.base_url
    assert claude_vcr.base_url.endswith("/c/test_fixture.test_fixture")
    assert claude_vcr.cassette == "test_fixture.test_fixture"
    assert claude_vcr.db.name == "cassettes.db"
    anthropic.Anthropic(max_retries=0).messages.create(**ASK)
    anthropic.Anthropic(max_retries=0).messages.create(**ASK)
    print("OUTCOMES", claude_vcr.record_mode, claude_vcr.mode, [o.outcome for o in claude_vcr.outcomes])


def test_restored_afterwards():
    assert "ANTHROPIC_BASE_URL" not in os.environ


class TestShared:
    @pytest.mark.claude_vcr("shared")
    @pytest.mark.parametrize("n", [1, 2])
    def test_one(self, claude_vcr, n):
        assert claude_vcr.cassette == "shared"
        anthropic.Anthropic(max_retries=0).messages.create(**ASK)
'''


def test_the_fixture_reports_this_tests_outcomes_and_the_variable_is_restored(pytester, inner, upstream):
    pytester.makepyfile(test_fixture=FIXTURE_SUITE)
    first = inner("--claude-vcr-record-mode=new_episodes", key=TEST_API_KEY)
    first.assert_outcomes(passed=5)
    assert "OUTCOMES new_episodes auto ['recorded', 'recorded']" in first.stdout.str()
    assert recordings(inner.db) == {"test_fixture.test_fixture": 2, "shared": 1}
    again = inner()
    again.assert_outcomes(passed=5)
    assert "OUTCOMES none replay ['hit', 'hit']" in again.stdout.str()


ORPHAN_SUITE = '''
import os

import anthropic
import pytest

ASKS = os.environ.get("ASKS", "one,two").split(",")


@pytest.mark.claude_vcr
def test_asks():
    for text in ASKS:
        anthropic.Anthropic(max_retries=0).messages.create(
            model="claude-opus-5-5", max_tokens=64, messages=[{"role": "user", "content": text}]
        )
'''


def test_the_summary_names_recordings_the_run_never_used_and_the_command_deletes_them(
    pytester, inner, monkeypatch, upstream
):
    pytester.makepyfile(test_orphans=ORPHAN_SUITE)
    inner("--claude-vcr-record-mode=once", key=TEST_API_KEY).assert_outcomes(passed=1)
    monkeypatch.setenv("ASKS", "one")
    result = inner()
    result.assert_outcomes(passed=1)
    out = result.stdout.str()
    assert "test_orphans.test_asks" in out and "0 recorded, 1 replayed, 0 missed" in out
    assert "1 recording(s) in 1 cassette(s) were never used by this run" in out
    (command,) = [line.strip() for line in out.splitlines() if line.strip().startswith("claude-vcr delete")]
    args = command.split()[1:]
    deleted = cli(*args)
    assert deleted.exit_code == 0, deleted.output
    assert recordings(inner.db) == {"test_orphans.test_asks": 1}
    clean = inner()
    clean.assert_outcomes(passed=1)
    assert "never used" not in clean.stdout.str()
    partial = inner("-k", "nothing_matches or test_asks and not test_asks")
    assert "never used" not in partial.stdout.str()


@pytest.mark.parametrize(
    ("nodeid", "expected"),
    [
        ("tests/test_api.py::test_hello", "tests.test_api.test_hello"),
        ("tests/test_api.py::TestX::test_y[a-1]", "tests.test_api.TestX.test_y-a-1"),
        ("test_api.py::test_y[3.5-x]", "test_api.test_y-3.5-x"),
    ],
)
def test_cassette_names_read_like_the_test(nodeid, expected):
    assert default_cassette_name(nodeid) == expected


@pytest.mark.parametrize(
    "nodeid",
    [
        "tests/test_api.py::test_y[a/b]",
        "tests/test_api.py::test_y[a b]",
        "tests/test_api.py::test_y[..]",
        "../outside/test_x.py::test_z",
        "tests/test_api.py::test_y[" + "x" * 300 + "]",
        "tests/test_api.py::test_y[ünï]",
    ],
)
def test_every_cassette_name_is_valid_stable_and_distinct(nodeid):
    from claude_vcr.names import validate_cassette_name

    name = default_cassette_name(nodeid)
    assert validate_cassette_name(name) == name
    assert default_cassette_name(nodeid) == name
    assert default_cassette_name(nodeid + "x") != name


def test_the_plugin_is_inert_without_the_marker(pytester, monkeypatch):
    clean_environment(monkeypatch)
    pytester.makepyfile(test_plain="def test_plain():\n    import os\n    assert 'ANTHROPIC_BASE_URL' not in os.environ\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "plugins: claude-vcr" in result.stdout.str()  # loaded through its entry point
    assert "claude-vcr:" not in result.stdout.str()
    assert not (pytester.path / "vcr.db").exists()


def test_a_bad_record_mode_or_marker_keyword_is_one_clear_line(pytester, monkeypatch):
    clean_environment(monkeypatch)
    pytester.makepyfile(
        test_bad="import pytest\n\n@pytest.mark.claude_vcr\ndef test_bad():\n    pass\n",
        test_plain="def test_plain():\n    pass\n",
    )
    monkeypatch.setenv("VCR_RECORD_MODE", "sometimes")
    bad_mode = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert "claude-vcr record mode 'sometimes' (from VCR_RECORD_MODE)" in bad_mode.stdout.str()
    assert "Traceback" not in bad_mode.stdout.str() + bad_mode.stderr.str()
    monkeypatch.delenv("VCR_RECORD_MODE")
    bad_mode.assert_outcomes(passed=1, errors=1)  # the unmarked test never reads the setting
    pytester.makepyfile(test_bad="import pytest\n\n@pytest.mark.claude_vcr(colour='red')\ndef test_bad():\n    pass\n")
    bad_keyword = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert "unknown keyword(s) colour" in bad_keyword.stdout.str()
    bad_keyword.assert_outcomes(passed=1, errors=1)


KEYWORDS_SUITE = '''
import os

import anthropic
import pytest

TOKENS = int(os.environ.get("TOKENS", "64"))
TIMES = int(os.environ.get("TIMES", "1"))


def ask(claude_vcr):
    for _ in range(TIMES):
        anthropic.Anthropic(max_retries=0).messages.create(
            model="claude-opus-5-5", max_tokens=TOKENS, messages=[{"role": "user", "content": "same"}]
        )
    print("OUTCOMES", claude_vcr.cassette, [o.outcome for o in claude_vcr.outcomes])


@pytest.mark.claude_vcr(rules={"ignore": ["metadata", "max_tokens"]}, exhausted="repeat", pace="recorded")
def test_inline_rules(claude_vcr):
    ask(claude_vcr)


@pytest.mark.claude_vcr(rules="rules.toml")
def test_rules_file(claude_vcr):
    ask(claude_vcr)


@pytest.mark.claude_vcr
def test_plain(claude_vcr):
    ask(claude_vcr)
'''


def test_marker_keywords_rules_match_exhausted_and_pace_apply_to_that_test_only(
    pytester, inner, monkeypatch, upstream
):
    pytester.makepyfile(test_keywords=KEYWORDS_SUITE)
    pytester.path.joinpath("rules.toml").write_text('ignore = ["metadata", "max_tokens"]\n')
    inner("--claude-vcr-record-mode=once", key=TEST_API_KEY).assert_outcomes(passed=3)
    monkeypatch.setenv("TOKENS", "99")
    monkeypatch.setenv("TIMES", "2")
    result = inner()
    out = result.stdout.str()
    assert "OUTCOMES test_keywords.test_inline_rules ['hit', 'hit-repeat']" in out
    # the second identical request raises: a recording plays once
    assert "in cassette 'test_keywords.test_rules_file'" in out and "no recording for" in out
    # without the rules max_tokens counts: the diagnosis says where the request differs
    assert "'test_keywords.test_plain'" in out and "max_tokens: 99 vs 64" in out
    assert "0 recorded, 3 replayed, 2 missed" in out
    result.assert_outcomes(passed=1, failed=2)


UNSTORED_SUITE = '''
import sqlite3

import anthropic


def test_locked_db(claude_vcr):
    holder = sqlite3.connect(claude_vcr.db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another writer holds the db past the store's busy timeout
    message = anthropic.Anthropic(max_retries=0).messages.create(
        model="claude-opus-5-5", max_tokens=64, messages=[{"role": "user", "content": "kept?"}]
    )
    holder.execute("ROLLBACK")
    print("ANSWER", message.content[0].text)
'''


def test_a_recording_the_db_would_not_take_fails_the_test(pytester, inner, upstream):
    pytester.makepyfile(test_unstored=UNSTORED_SUITE)
    result = inner("--claude-vcr-record-mode=all", key=TEST_API_KEY)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "ANSWER Scripted reply number 1" in out  # the client had its answer...
    assert "claude-vcr could not store 1 recording(s)" in out  # ...and is told it was not kept
    assert "store-error POST /v1/messages 200" in out


SECOND_HOUR_SUITE = '''
import anthropic
import pytest


@pytest.mark.claude_vcr("shared_answerz")
def test_typo():
    anthropic.Anthropic(max_retries=0).messages.create(
        model="claude-opus-5-5", max_tokens=64, messages=[{"role": "user", "content": "hello"}]
    )


@pytest.mark.claude_vcr
def test_retried():
    client = anthropic.Anthropic(max_retries=0)
    for _ in range(6):  # as Claude Code retries a strict miss
        try:
            client.messages.create(
                model="claude-opus-5-5", max_tokens=64, messages=[{"role": "user", "content": "again"}]
            )
        except anthropic.BadRequestError as error:
            print("SDK SAYS", error.message)
'''


def test_a_strict_run_without_a_db_creates_none_and_says_how_to_record(pytester, inner):
    pytester.makepyfile(test_second=SECOND_HOUR_SUITE)
    result = inner()
    result.assert_outcomes(errors=2)
    assert not inner.db.exists()
    out = result.stdout.str()
    assert f"claude-vcr: no database at {inner.db}: record mode 'none' replays only and creates no file" in out
    assert "--claude-vcr-record-mode=once" in out


def test_pytest_misses_name_the_plugins_options_the_near_cassette_and_count_retries(pytester, inner, upstream):
    pytester.makepyfile(test_seed="""
import anthropic, pytest

@pytest.mark.claude_vcr("shared_answers")
def test_seed():
    anthropic.Anthropic(max_retries=0).messages.create(
        model="claude-opus-5-5", max_tokens=64, messages=[{"role": "user", "content": "seed"}])
""")
    inner("--claude-vcr-record-mode=once", key=TEST_API_KEY).assert_outcomes(passed=1)
    pytester.makepyfile(test_second=SECOND_HOUR_SUITE)
    result = inner("test_second.py")
    result.assert_outcomes(failed=2)
    out = result.stdout.str()
    assert "no cassette named 'shared_answerz' (did you mean 'shared_answers'?)" in out
    said = [part.split("\n")[0] for part in out.split("SDK SAYS")[1:]]
    assert len(said) == 6 and all("--claude-vcr-record-mode=once" in line for line in said)
    assert not any("--mode record" in line for line in said)  # serve's flag is not the plugin's
    retried = [line for line in out.splitlines() if line.startswith("- miss POST /v1/messages 400")]
    assert any(line.endswith("(6 times: the client retried)") for line in retried), retried


def test_the_summary_counts_answers_not_stored_in_the_plugins_words(pytester, inner, upstream):
    pytester.makepyfile(test_errors="""
import anthropic, pytest

@pytest.mark.claude_vcr
def test_busy():
    with pytest.raises(anthropic.RateLimitError):
        anthropic.Anthropic(max_retries=0).messages.create(
            model="claude-opus-5-5", max_tokens=64, messages=[{"role": "user", "content": "STATUS:429 busy"}])

@pytest.mark.claude_vcr
def test_gone():
    with pytest.raises(anthropic.NotFoundError):
        anthropic.Anthropic(max_retries=0).messages.create(
            model="claude-opus-5-5", max_tokens=64, messages=[{"role": "user", "content": "STATUS:404 gone"}])
""")
    result = inner("--claude-vcr-record-mode=once", key=TEST_API_KEY)
    result.assert_outcomes(passed=2)
    out = result.stdout.str()
    assert "1 recorded, 0 replayed, 0 missed" in out
    assert "claude-vcr: 1 answer(s) not stored: 1 transient error 429 (--claude-vcr-record-errors stores it)" in out
    assert recordings(inner.db) == {"test_errors.test_gone": 1}


TRANSIENT_SUITE = '''
import anthropic
import pytest


@pytest.mark.claude_vcr
def test_overloaded():
    client = anthropic.Anthropic(max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as caught:
        client.messages.create(
            model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "STATUS:529 busy"}]
        )
    assert caught.value.status_code == 529
'''


@pytest.mark.parametrize("asked", [False, True])
def test_record_errors_option_stores_a_transient_error_only_when_given(pytester, inner, asked):
    pytester.makepyfile(test_transient=TRANSIENT_SUITE)
    args = ["--claude-vcr-record-mode=once"] + (["--claude-vcr-record-errors"] if asked else [])
    result = inner(*args, key=TEST_API_KEY)
    result.assert_outcomes(passed=1)
    stored = recordings(inner.db) if inner.db.exists() else {}
    assert stored == ({"test_transient.test_overloaded": 1} if asked else {})
    if not asked:
        assert "not stored" in result.stdout.str() and "--claude-vcr-record-errors" in result.stdout.str()


def test_a_replay_run_says_which_answer_the_recording_run_did_not_store_and_names_the_plugins_option(
    pytester, inner, upstream
):
    """Two pytest runs, two processes: the first records and meets a 529 (not stored); the second replays,
    misses that request, and its miss line says what the recording run got and how to store it."""
    pytester.makepyfile(test_transient=TRANSIENT_SUITE)
    inner("--claude-vcr-record-mode=once", key=TEST_API_KEY).assert_outcomes(passed=1)
    upstream.stop()
    replayed = inner()
    replayed.assert_outcomes(failed=1)
    out = replayed.stdout.str()
    said = [line for line in out.splitlines() if "this request got a 529" in line]
    assert said and all(
        "got a 529 (overloaded_error), which was not stored: record it again, or pass "
        "--claude-vcr-record-errors to store such errors" in line
        for line in said
    ), out
    assert not any("--record-errors " in line or "--mode record" in line for line in said)
