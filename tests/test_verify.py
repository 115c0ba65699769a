"""`claude-vcr verify`: recorded requests sent to another endpoint, its answers validated and compared by meaning.

A correct endpoint must pass (the upstream the library was recorded from, a replay proxy, a peer whose answers
differ only in noise); each deliberately broken peer of `tests/support/broken_endpoints.py` must fail, with the rule
ids of its pitfall in the output and in the JUnit XML, on exactly the recordings it changed.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from claude_vcr.catalog import Catalog
from claude_vcr.conformance.library import BY_NAME, SCENARIOS
from claude_vcr.records import Recording
from claude_vcr.report import junit_xml, summary
from claude_vcr.sse import encode_events, parse_sse
from claude_vcr.verify import API_KEY_ENV, PLACEHOLDER_API_KEY, check_answer, verify_db

from tests.support import REPO
from tests.support.broken_endpoints import BREAKAGES, Breakage, equivalent
from tests.support.broken_endpoints import BY_NAME as BREAKAGE_BY_NAME
from tests.support.cli import cli
from tests.support.client import TEST_API_KEY
from tests.support.loopback import serving, unreachable_url
from tests.support.scenario_upstream import CASSETTE, ScenarioUpstream, scenario_of

LINE = re.compile(
    r"^(?P<verdict>PASS|FAIL) (?P<cassette>[\w.-]+)/(?P<key>[0-9a-f]{12}) (?P<method>[A-Z]+) (?P<path>\S+) "
    r"(?P<status>\d{3}|---) \d+ms(?:: (?P<findings>.+?))?(?: \| tolerated: (?P<tolerated>.+))?$"
)


def run_verify(db: Path, target: str, *extra: str | Path):
    """The CLI, its lines parsed: (result, parsed lines, summary line)."""
    result = cli("verify", "--target", target, "--db", db, *extra)
    *lines, summary = result.output.splitlines()
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), result.output
    return result, parsed, summary


def junit_cases(path: Path) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()
    return {case.get("name"): case for case in root.iter("testcase")}


def names_by_short_key(db: Path) -> dict[str, str]:
    """Scenario name of each recording, by short key."""
    with Catalog.open(db) as catalog:
        return {
            d.row.short: scenario_of(d.row.method, d.row.path, d.request_body).name
            for d in catalog.iter_details(CASSETTE)
        }


def detail_of(db: Path, name: str) -> Recording:
    with Catalog.open(db) as catalog:
        return next(
            d
            for d in catalog.iter_details(CASSETTE)
            if scenario_of(d.row.method, d.row.path, d.request_body).name == name
        )


# --- correct endpoints pass --------------------------------------------------------------------------------


def test_passes_against_the_upstream_it_was_recorded_from(library_db, scenario_upstream, tmp_path):
    report = tmp_path / "junit.xml"
    result, lines, summary = run_verify(library_db, scenario_upstream.url, "--junit", report)
    assert result.exit_code == 0, result.output
    assert len(lines) == len(SCENARIOS) and {m["verdict"] for m in lines} == {"PASS"}
    assert (
        summary
        == f"Verified {len(SCENARIOS)} recording(s) against {scenario_upstream.url}: {len(SCENARIOS)} passed, 0 failed"
    )
    assert sorted(scenario_upstream.script.served) == sorted(BY_NAME)
    names = names_by_short_key(library_db)
    assert not any(m["findings"] for m in lines)
    noted = [m for m in lines if m["tolerated"]]
    assert [names[m["key"]] for m in noted] == ["max_tokens_tool"]
    assert noted[0]["tolerated"].startswith("W S7 @") and "; W B4 @" in noted[0]["tolerated"]

    root = ET.parse(report).getroot()
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == (str(len(SCENARIOS)), "0", "0")
    cases = junit_cases(report)
    assert len(cases) == len(SCENARIOS)
    assert all(re.fullmatch(rf"{CASSETTE}/[0-9a-f]{{12}} (GET|POST) /v1/\S+", name) for name in cases)
    assert not any(case.find("failure") is not None for case in cases.values())
    [(name, case)] = [(n, c) for n, c in cases.items() if c.find("system-out") is not None]
    assert names[name.split("/")[1][:12]] == "max_tokens_tool" and "S7" in case.find("system-out").text


def test_passes_against_a_replay_proxy(library_db, proxy, tmp_path):
    db = tmp_path / "replay.db"
    shutil.copy(library_db, db)
    replay = proxy(mode="replay", db=db, upstream=unreachable_url())
    result, lines, _ = run_verify(library_db, replay.url + "/c/{cassette}", "--cassette", CASSETTE)
    assert result.exit_code == 0, result.output
    assert len(lines) == len(SCENARIOS)


def test_passes_against_a_peer_that_differs_only_in_noise(library_db, loop_thread):
    with serving(loop_thread, ScenarioUpstream(transform=equivalent)) as peer:
        result, lines, _ = run_verify(library_db, peer.url)
        assert peer.script.altered == set(BY_NAME)
    assert result.exit_code == 0, result.output
    assert {m["verdict"] for m in lines} == {"PASS"}


# --- broken peers fail, precisely -------------------------------------------------------------------------


@pytest.mark.parametrize("breakage", BREAKAGES, ids=[b.name for b in BREAKAGES])
def test_catches_each_pitfall_with_its_rule_ids(breakage: Breakage, library_db, loop_thread, tmp_path):
    report = tmp_path / "junit.xml"
    with serving(loop_thread, ScenarioUpstream(transform=breakage.transform)) as broken:
        result, lines, summary = run_verify(library_db, broken.url, "--junit", report)
        altered = set(broken.script.altered)
    assert result.exit_code == 1, result.output
    assert altered, f"{breakage.name} changed no scenario"
    names = names_by_short_key(library_db)
    failed = {names[m["key"]] for m in lines if m["verdict"] == "FAIL"}
    assert failed == altered, f"{breakage.pitfall}: failed {sorted(failed)}, altered {sorted(altered)}"
    assert summary.endswith(f"{len(SCENARIOS) - len(altered)} passed, {len(altered)} failed")

    failing_text = " ".join(m["findings"] for m in lines if m["verdict"] == "FAIL")
    found = set(re.findall(r"(?:^|; )[EW] ([A-Z]\d+)", failing_text))
    assert breakage.rules <= found, (
        f"{breakage.pitfall} {breakage.name}: expected {breakage.rules}, got {found}"
    )

    cases = junit_cases(report)
    failures = [case.find("failure") for case in cases.values() if case.find("failure") is not None]
    assert len(failures) == len(altered)
    in_junit = {rule for failure in failures for rule in failure.get("type").split()}
    assert breakage.rules <= in_junit
    assert all(failure.text and failure.get("message") for failure in failures)


def test_warning_only_pitfalls_pass_with_allow_new_warnings(library_db, loop_thread):
    with serving(
        loop_thread, ScenarioUpstream(transform=BREAKAGE_BY_NAME["done_sentinel"].transform)
    ) as peer:
        strict, _, _ = run_verify(library_db, peer.url)
        lenient, lines, _ = run_verify(library_db, peer.url, "--allow-new-warnings")
    assert strict.exit_code == 1
    assert lenient.exit_code == 0, lenient.output
    assert {m["verdict"] for m in lines} == {"PASS"}
    flagged = [m for m in lines if m["tolerated"] and "W F2" in m["tolerated"]]
    assert len(flagged) == sum(1 for s in SCENARIOS if s.is_sse)


# --- what verify sends, and when there is no answer --------------------------------------------------------


def test_sends_recorded_headers_and_a_key_from_the_environment(library_db, loop_thread, monkeypatch):
    with serving(loop_thread, ScenarioUpstream()) as peer:
        assert run_verify(library_db, peer.url, "--cassette", CASSETTE)[0].exit_code == 0
        monkeypatch.setenv(API_KEY_ENV, "sk-ant-from-env")
        assert run_verify(library_db, peer.url)[0].exit_code == 0
        calls = peer.script.calls
    half = len(SCENARIOS)
    assert {c[2]["x-api-key"] for c in calls[:half]} == {PLACEHOLDER_API_KEY}
    assert {c[2]["x-api-key"] for c in calls[half:]} == {"sk-ant-from-env"}
    assert not any(TEST_API_KEY in value for c in calls for value in c[2].values())
    beta = next(c for c in calls if c[1] == "/v1/messages?beta=true")
    assert beta[2]["anthropic-beta"] == dict(BY_NAME["claude_code_beta"].request_headers)["anthropic-beta"]
    assert beta[3] == detail_of(library_db, "claude_code_beta").request_body
    assert json.loads(beta[3]) == BY_NAME["claude_code_beta"].request


def test_an_unreachable_target_fails_every_recording_as_v10(library_db, tmp_path):
    report = tmp_path / "junit.xml"
    target = unreachable_url()
    result, lines, summary = run_verify(library_db, target, "--junit", report, "--timeout", "5")
    assert result.exit_code == 1
    assert {m["verdict"] for m in lines} == {"FAIL"} and {m["status"] for m in lines} == {"---"}
    assert all(m["findings"].startswith("E V10 no answer from ") for m in lines)
    root = ET.parse(report).getroot()
    assert root.find("testsuite").get("errors") == str(len(SCENARIOS))
    assert all(case.find("error").get("type") == "V10" for case in junit_cases(report).values())


def test_json_output_and_refusals(library_db, scenario_upstream):
    result = cli("verify", "--target", scenario_upstream.url, "--json", "--db", library_db)
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert len(listed) == len(SCENARIOS) and all(item["passed"] for item in listed)
    assert {item["status"] for item in listed} == {200, 400, 429}
    assert all(item["url"].startswith(scenario_upstream.url + "/v1/") for item in listed)

    bad = cli("verify", "--target", "localhost:8000", "--db", library_db)
    assert bad.exit_code == 2 and "--target" in bad.output
    unknown = cli("verify", "--target", scenario_upstream.url, "--cassette", "nope", "--db", library_db)
    assert unknown.exit_code == 1 and "no cassette named 'nope'" in unknown.output


def test_library_api(library_db, scenario_upstream):
    seen = []
    results = verify_db(library_db, scenario_upstream.url, CASSETTE, on_result=seen.append)
    assert seen == results and all(r.passed for r in results)
    assert {r.row.cassette for r in results} == {CASSETTE}


# --- comparing by meaning ----------------------------------------------------------------------------------


def rewritten(detail: Recording, rewrite) -> bytes:
    events = [e.parsed for e in parse_sse(detail.response_body)]
    return encode_events(rewrite(events))


def rules(findings) -> set[tuple[str, str]]:
    return {(f.rule, f.severity) for f in findings}


def test_tool_json_is_compared_parsed_not_as_text(library_db):
    detail = detail_of(library_db, "tool_edit")

    def respell(events):
        fragments = [e for e in events if e.get("delta", {}).get("type") == "input_json_delta"]
        joined = json.loads("".join(e["delta"]["partial_json"] for e in fragments))
        for event in fragments:
            event["delta"]["partial_json"] = ""
        fragments[-1]["delta"]["partial_json"] = json.dumps(dict(reversed(list(joined.items()))), indent=1)
        return events

    body = rewritten(detail, respell)
    assert body != detail.response_body
    findings, failures = check_answer(detail, 200, detail.response_headers, body)
    assert failures == [] and findings == []

    def retarget(events):
        fragments = [e for e in events if e.get("delta", {}).get("type") == "input_json_delta"]
        joined = "".join(e["delta"]["partial_json"] for e in fragments)
        for event in fragments:
            event["delta"]["partial_json"] = ""
        fragments[-1]["delta"]["partial_json"] = joined.replace("9090", "9091")
        return events

    findings, failures = check_answer(detail, 200, detail.response_headers, rewritten(detail, retarget))
    assert rules(failures) == {("V3", "error")}
    assert "block 1 (tool_use Edit): input.new_string differs" in failures[0].message


def test_usage_is_checked_for_presence_and_sanity_only(library_db):
    detail = detail_of(library_db, "multi_turn")

    def scale(events):
        events[0]["message"]["usage"]["input_tokens"] *= 3
        events[0]["message"]["usage"]["cache_read_input_tokens"] //= 2
        return events

    assert check_answer(detail, 200, detail.response_headers, rewritten(detail, scale)) == ([], [])

    def drop_cache(events):
        del events[0]["message"]["usage"]["cache_read_input_tokens"]
        return events

    body = rewritten(detail, drop_cache)
    findings, failures = check_answer(detail, 200, detail.response_headers, body)
    assert rules(failures) == {("V5", "warning")}
    assert check_answer(detail, 200, detail.response_headers, body, allow_new_warnings=True)[1] == []

    def zero_output(events):
        next(e for e in events if e["type"] == "message_delta")["usage"]["output_tokens"] = 0
        return events

    findings, failures = check_answer(detail, 200, detail.response_headers, rewritten(detail, zero_output))
    assert ("V5", "error") in rules(failures)


def test_text_is_compared_joined(library_db):
    detail = detail_of(library_db, "text_long")
    findings, failures = check_answer(
        detail,
        200,
        detail.response_headers,
        detail.response_body.replace(b"deterministic", b"nondeterministic", 1),
    )
    assert rules(failures) == {("V3", "error")}
    assert "block 0 (text): text differs at character" in failures[0].message


def test_lint_and_fixture_commands_never_import_aiohttp(library_db):
    code = (
        "import sys; from click.testing import CliRunner; from claude_vcr.cli import main; "
        f"r1 = CliRunner().invoke(main, ['lint', '--db', {str(library_db)!r}]); "
        f"r2 = CliRunner().invoke(main, ['fixture', 'ffff', '--db', {str(library_db)!r}]); "
        "print(r1.exit_code, r2.exit_code, 'aiohttp' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["0", "1", "False"], done.stderr


def test_credentials_in_the_target_never_print(tmp_path):
    """`--target https://user:pass@host/?key=...`: the summary, the lines and the JUnit file show neither."""
    target = "http://bob:pa55word@127.0.0.1:9/v1?key=s3cr3tvalue1234"
    assert "pa55word" not in summary([], target, "Verified 0") and "s3cr3tvalue1234" not in summary(
        [], target, "x"
    )
    assert "pa55word" not in junit_xml([], target, "suite") and "s3cr3tvalue1234" not in junit_xml(
        [], target, "s"
    )
