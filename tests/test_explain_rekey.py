"""`explain` and `--save-misses` say why a replay missed; `rekey` moves a cassette to new rules."""

from __future__ import annotations

import json
from pathlib import Path

from claude_vcr.cli import main
from click.testing import CliRunner

from tests.support.client import post
from tests.support.loopback import unreachable_url
from tests.support.samples import relocated, sample

CC_PATH = "/v1/messages?beta=true"


def record_sample(proxy, name: str = "text-turn", **config) -> None:
    recorder = proxy(mode="record", **config)
    assert post(recorder.url + CC_PATH, sample(name))[0] == 200
    recorder.stop()


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_save_misses_then_explain_offline(proxy, upstream, db_path, tmp_path):
    record_sample(proxy)
    misses = tmp_path / "misses"
    replay = proxy(mode="replay", upstream=unreachable_url(), save_misses=misses)
    moved = relocated(sample("text-turn"), "/home/ci/app", "/home/ci")
    status, headers, raw = post(replay.url + CC_PATH, moved, {"authorization": "Bearer SAVEDSECRET"})
    assert status == 400
    message = json.loads(raw)["error"]["message"]
    assert "Closest recordings:" in message and "Primary working directory: «/home/ci/app»" in message
    replay.stop()
    [saved] = misses.iterdir()
    assert saved.name == f"default-{headers['x-vcr-key'][:12]}.json"
    assert "SAVEDSECRET" not in saved.read_text()
    result = run("explain", str(saved), "--db", str(db_path))
    assert result.exit_code == 1
    assert "Closest recordings:" in result.output and "/home/dev/shop-app" in result.output
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(sample("text-turn")))
    hit = run("explain", str(bare), "--db", str(db_path))
    assert hit.exit_code == 1  # a bare body is POST /v1/messages, and the recording has ?beta=true
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"method": "POST", "path": CC_PATH, "body": sample("text-turn")}))
    hit = run("explain", str(wrapped), "--db", str(db_path))
    assert hit.exit_code == 0 and hit.output.startswith("hit: POST /v1/messages?beta=true replays recording")


def test_explain_errors_are_clear(db_path, tmp_path, proxy, upstream):
    record_sample(proxy)
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    result = run("explain", str(broken), "--db", str(db_path))
    assert result.exit_code == 1 and "not JSON" in result.output
    good = tmp_path / "good.json"
    good.write_text("{}")
    result = run("explain", str(good), "--cassette", "nope", "--db", str(db_path))
    assert result.exit_code == 1 and "no cassette named 'nope'" in result.output


def test_rekey_moves_a_cassette_to_the_claude_code_preset(proxy, upstream, db_path):
    record_sample(proxy, "tool-turn-1")
    moved = relocated(sample("tool-turn-1"), "/srv/ci/shop", "/root")
    replay = proxy(mode="replay", upstream=unreachable_url())
    assert post(replay.url + CC_PATH, moved)[0] == 400
    replay.stop()
    result = run("rekey", "--cassette", "default", "--preset", "claude-code", "--db", str(db_path))
    assert result.exit_code == 0, result.output
    assert "default: 1 recording(s), 1 new key(s), 0 collision(s)" in result.output
    replay = proxy(mode="replay", upstream=unreachable_url())  # no preset: the cassette's stored rules apply
    assert post(replay.url + CC_PATH, moved)[0] == 200


def test_rekey_reports_collisions_and_keeps_both_in_order(proxy, upstream, db_path, tmp_path):
    recorder = proxy(mode="record")
    first = post(recorder.url + CC_PATH, sample("text-turn"))[2]
    second = post(recorder.url + CC_PATH, relocated(sample("text-turn"), "/home/ci/app", "/home/ci"))[2]
    recorder.stop()
    rules = tmp_path / "rules.toml"
    rules.write_text('preset = "claude-code"\n')
    result = run("rekey", "--rules", str(rules), "--db", str(db_path))
    assert result.exit_code == 0 and "1 collision(s)" in result.output
    replay = proxy(mode="replay", upstream=unreachable_url())
    assert post(replay.url + CC_PATH, sample("text-turn"))[2] == first
    assert post(replay.url + CC_PATH, sample("text-turn"))[2] == second


def test_a_v1_cassette_is_flagged_for_rekey(proxy, upstream, db_path, caplog):
    import sqlite3

    record_sample(proxy)
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE cassettes SET rules_json = NULL, key_scheme = 'v1'")
    conn.commit()
    conn.close()
    replay = proxy(mode="replay", upstream=unreachable_url())
    post(replay.url + CC_PATH, sample("text-turn"))
    assert any("claude-vcr rekey --cassette default" in r.getMessage() for r in caplog.records)
    assert Path(db_path).exists()
