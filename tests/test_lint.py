"""`claude-vcr lint`: every recorded response through the validators, one line per recording with findings."""

from __future__ import annotations

import json
import re
from pathlib import Path

from claude_vcr.catalog import Catalog
from claude_vcr.conformance.library import BY_NAME, SCENARIOS
from claude_vcr.lint import lint
from claude_vcr.render import lint_summary

from tests.support.broken_endpoints import BY_NAME as BREAKAGES
from tests.support.cli import cli
from tests.support.loopback import serving
from tests.support.scenario_upstream import CASSETTE, ScenarioUpstream, record_library, scenario_of

LINE = re.compile(
    r"^(?:(?P<cassette>[\w.-]+)/)?(?P<key>[0-9a-f]{12}) (?P<method>[A-Z]+) (?P<path>\S+): (?P<findings>.+)$"
)


def record_broken(proxy, loop_thread, breakage: str, cassette: str = "broken") -> None:
    """The library recorded from a deliberately broken peer, into `cassette` of the test's db."""
    with serving(loop_thread, ScenarioUpstream(transform=BREAKAGES[breakage].transform)) as broken:
        recorder = proxy(mode="record", upstream=broken.url, record_errors=True)
        record_library(f"{recorder.url}/c/{cassette}")
        recorder.stop()


def test_clean_library_exits_0_with_only_the_allowed_warnings(scenario_db):
    result = cli("lint", "--cassette", CASSETTE, "--db", scenario_db)
    assert result.exit_code == 0, result.output
    *lines, summary = result.output.splitlines()
    assert summary.startswith(
        f"Linted {len(SCENARIOS)} recording(s) in 1 cassette(s): 0 error(s), 2 warning(s)"
    )
    [line] = lines
    match = LINE.match(line)
    assert match and match["cassette"] is None, line
    assert match["findings"].startswith("W S7 @") and "; W B4 @" in match["findings"]
    with Catalog.open(scenario_db) as catalog:
        [recording] = catalog.find(match["key"])
        assert scenario_of(recording.method, recording.path, catalog.detail(recording).request_body).name == (
            "max_tokens_tool"
        )


def test_errors_exit_1_and_name_rule_and_event(scenario_db, proxy, loop_thread):
    record_broken(proxy, loop_thread, "hard_coded_index")
    result = cli("lint", "--db", scenario_db)
    assert result.exit_code == 1, result.output
    *lines, summary = result.output.splitlines()
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    broken = [m for m in parsed if m["cassette"] == "broken"]
    assert all(" S4 @" in m["findings"] for m in broken if m["findings"].startswith("E "))
    with Catalog.open(scenario_db) as catalog:
        names = {
            scenario_of(r.method, r.path, catalog.detail(r).request_body).name
            for r in catalog.recordings("broken")
            if any(m["key"] == r.short for m in broken if m["findings"].startswith("E S4"))
        }
    multi_block = {
        s.name
        for s in SCENARIOS
        if s.is_sse and sum(e["type"] == "content_block_start" for e in s.events) > 1
    }
    assert names == multi_block
    first = next(m for m in broken if m["findings"].startswith("E S4"))
    assert re.match(r"E S4 @\d+ content_block_start index 0, expected 1", first["findings"])
    assert {m["cassette"] for m in parsed} == {"broken", CASSETTE}
    assert re.search(r": [1-9]\d* error\(s\)", summary)


def test_json_lists_every_recording_with_all_findings(scenario_db):
    result = cli("lint", "--json", "--db", scenario_db)
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert len(listed) == len(SCENARIOS)
    assert {item["cassette"] for item in listed} == {CASSETTE}
    flagged = [item for item in listed if item["warnings"]]
    assert len(flagged) == 1 and flagged[0]["errors"] == 0
    assert {f["rule"] for f in flagged[0]["findings"] if f["severity"] == "warning"} == {"S7", "B4"}
    infos = [f for item in listed for f in item["findings"] if f["severity"] == "info"]
    assert {f["rule"] for f in infos} >= {"S8", "M3"}, "info findings are kept in JSON (not printed as lines)"
    assert set(listed[0]) >= {"key", "short_key", "method", "path", "status", "findings"}


def test_library_api(scenario_db):
    with Catalog.open(scenario_db) as catalog:
        results = lint(catalog, CASSETTE)
    assert len(results) == len(SCENARIOS)
    assert sum(r.errors for r in results) == 0 and sum(r.warnings for r in results) == 2
    assert lint_summary(results).endswith("in 1 recording(s)")
    warned = next(r for r in results if r.warnings)
    assert warned.line(cassette=True).startswith(f"{CASSETTE}/{warned.row.short} POST /v1/messages: W S7")


def test_a_recorded_429_lints_clean_and_one_without_retry_after_warns(proxy, loop_thread, db_path):
    rate_limited = BY_NAME["rate_limited"]
    with serving(loop_thread, ScenarioUpstream(scenarios=[rate_limited])) as upstream:
        recorder = proxy(mode="record", upstream=upstream.url, record_errors=True)
        record_library(recorder.url, [rate_limited])
        recorder.stop()
    result = cli("lint", "--db", db_path)
    assert result.exit_code == 0 and result.output.splitlines() == [
        "Linted 1 recording(s) in 1 cassette(s): 0 error(s), 0 warning(s) in 0 recording(s)"
    ]
    with serving(
        loop_thread, ScenarioUpstream([rate_limited], BREAKAGES["dropped_headers"].transform)
    ) as upstream:
        recorder = proxy(mode="record", upstream=upstream.url, record_errors=True, cassette="bare")
        record_library(recorder.url, [rate_limited])
        recorder.stop()
    result = cli("lint", "--cassette", "bare", "--db", db_path)
    assert result.exit_code == 0
    [line, _] = result.output.splitlines()
    assert "W E4 HTTP 429 without retry-after" in line and "W H1 no request-id" in line


def test_refusals(tmp_path: Path, scenario_db):
    missing = cli("lint", "--db", tmp_path / "none.db")
    assert missing.exit_code == 1 and "no database" in missing.output
    assert not (tmp_path / "none.db").exists()
    unknown = cli("lint", "--cassette", "nope", "--db", scenario_db)
    assert unknown.exit_code == 1 and "no cassette named 'nope'" in unknown.output
