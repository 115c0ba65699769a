"""Keys and normalisation rules, on real Claude Code requests (tests/data/claude-code, from shared/samples)."""

from __future__ import annotations

import copy
import json

import pytest
from claude_vcr.excerpts import clip, differences, excerpt, quote
from claude_vcr.matching import (
    Replacement,
    Rules,
    RulesError,
    json_differences,
    key_request,
    load_rules,
    normalise,
    request_key,
    similarity,
)

from tests.support.samples import relocated, sample


def key(body: dict, rules: Rules | None = None) -> str:
    return request_key("POST", "/v1/messages", "beta=true", json.dumps(body).encode(), rules)


CLAUDE_CODE = Rules().with_presets("claude-code")


def test_default_rules_ignore_metadata_and_stream_only():
    body = sample("text-turn")
    other_session = copy.deepcopy(body) | {"metadata": {"user_id": "another session"}, "stream": False}
    assert key(body) == key(other_session)
    assert key(body) != key(body | {"max_tokens": 10})
    assert key(body) != key(relocated(body, "/home/ci/app", "/home/ci"))


@pytest.mark.parametrize("name", ["text-turn", "tool-turn-1", "tool-turn-2"])
def test_claude_code_preset_matches_across_directory_home_day_and_version(name):
    body = sample(name)
    moved = relocated(body, "/srv/build/workspace/shop", "/root")
    text = json.dumps(moved)
    text = text.replace("Today's date is 2026-11-21", "Today's date is 2027-01-05")
    text = text.replace("cc_version=2.1.328.", "cc_version=2.1.329.")
    text = text.replace("OS Version: Linux 6.18.44-fc-v657", "OS Version: Linux 6.20.1-generic")
    text = text.replace("Is a git repository: false", "Is a git repository: true")
    changed = json.loads(text)
    assert changed != body
    assert key(changed, CLAUDE_CODE) == key(body, CLAUDE_CODE)
    assert key(changed) != key(body)


def test_claude_code_preset_still_tells_conversations_apart():
    turn_1, turn_2 = sample("tool-turn-1"), sample("tool-turn-2")
    assert key(turn_1, CLAUDE_CODE) != key(turn_2, CLAUDE_CODE)
    other_prompt = json.loads(json.dumps(sample("text-turn")).replace("Summarise what", "Explain what"))
    assert key(other_prompt, CLAUDE_CODE) != key(sample("text-turn"), CLAUDE_CODE)


def test_cache_control_positions_do_not_count_with_the_preset():
    body = sample("tool-turn-2")
    moved = copy.deepcopy(body)
    for message in moved["messages"]:
        if isinstance(message["content"], list):
            for block in message["content"]:
                block.pop("cache_control", None)
    moved["messages"][0]["content"][0]["cache_control"] = {"type": "ephemeral"}
    assert key(moved, CLAUDE_CODE) == key(body, CLAUDE_CODE)
    assert key(moved) != key(body)


def test_normalising_never_changes_the_request():
    body = sample("text-turn")
    before = json.dumps(body)
    normalised = normalise(body, CLAUDE_CODE)
    assert json.dumps(body) == before
    assert "/home/dev/shop-app" not in json.dumps(normalised)
    normalised = normalise(body, Rules(presets=("claude-code",), versions=(("claude-code", 2),)))
    assert json.dumps(body) == before
    assert "<CWD>" in json.dumps(normalised) and "/home/dev/shop-app" not in json.dumps(normalised)
    assert "<CWD_SLUG>" in json.dumps(normalised) and "<DATE>" in json.dumps(normalised)


@pytest.mark.parametrize(
    "path, body, expected",
    [
        ("metadata", {"metadata": 1, "a": 2}, {"a": 2}),
        (
            "messages[*].content[*].cache_control",
            {"messages": [{"content": [{"cache_control": 1, "t": 2}]}]},
            {"messages": [{"content": [{"t": 2}]}]},
        ),
        ("messages[1]", {"messages": [1, 2, 3]}, {"messages": [1, 3]}),
        ("**.id", {"id": 1, "a": {"id": 2, "b": [{"id": 3, "c": 4}]}}, {"a": {"b": [{"c": 4}]}}),
        ("a.*", {"a": {"x": 1, "y": 2}, "b": 1}, {"a": {}, "b": 1}),
        ("missing.path", {"a": 1}, {"a": 1}),
    ],
)
def test_ignore_paths(path, body, expected):
    assert normalise(body, Rules(ignore=(path,))) == expected


def test_replacements_apply_to_every_string_value():
    rules = Rules(replace=(Replacement(r"req_[0-9a-f]+", "<REQ>"),))
    body = {"a": "id req_12ab here", "b": ["req_ff"], "req_1": "keys stay"}
    assert normalise(body, rules) == {"a": "id <REQ> here", "b": ["<REQ>"], "req_1": "keys stay"}


def test_rules_files_in_toml_and_json(tmp_path):
    toml = tmp_path / "rules.toml"
    toml.write_text(
        'preset = "claude-code"\nignore = ["metadata", "temperature"]\n'
        '[[replace]]\npattern = "\\\\d{4}-\\\\d{2}-\\\\d{2}"\nwith = "<DAY>"\n'
    )
    as_json = tmp_path / "rules.json"
    as_json.write_text(
        json.dumps(
            {
                "presets": ["claude-code"],
                "ignore": ["metadata", "temperature"],
                "replace": [{"pattern": r"\d{4}-\d{2}-\d{2}", "with": "<DAY>"}],
            }
        )
    )
    assert load_rules(toml) == load_rules(as_json)
    rules = load_rules(toml)
    assert rules.presets == ("claude-code",) and rules.replace[0].placeholder == "<DAY>"
    assert Rules.from_json(rules.to_json()) == rules


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"ignore": ["a[x"]}', "invalid JSON path"),
        ('{"replace": [{"pattern": "(", "with": "x"}]}', "invalid regular expression"),
        ('{"replace": [{"pattern": "x"}]}', "needs 'pattern' and 'with'"),
        ('{"presets": ["vim"]}', "unknown preset"),
        ('{"ignroe": []}', "unknown rules field"),
        ("{not json", "is not valid JSON"),
    ],
)
def test_bad_rules_files_say_what_is_wrong(tmp_path, content, message):
    path = tmp_path / "rules.json"
    path.write_text(content)
    with pytest.raises(RulesError, match=message):
        load_rules(path)


def test_differences_name_the_json_path_with_excerpts():
    request = normalise(relocated(sample("text-turn"), "/home/ci/app", "/home/ci"), Rules())
    recorded = normalise(sample("text-turn"), Rules())
    [first, *_] = json_differences(request, recorded)
    assert first.startswith("messages[1].content[0].text:")
    assert "/home/ci/app" in first and "/home/dev/shop-app" in first


def test_summaries_rank_the_closer_request_higher():
    base = key_request("POST", "/v1/messages", "", json.dumps(sample("tool-turn-1")).encode())
    near = key_request(
        "POST", "/v1/messages", "", json.dumps(sample("tool-turn-1") | {"max_tokens": 5}).encode()
    )
    far = key_request("POST", "/v1/messages", "", json.dumps(sample("tool-turn-2")).encode())
    assert 1 > similarity(base.fingerprints, near.fingerprints) > similarity(base.fingerprints, far.fingerprints)


def test_differences_walk_in_document_order_and_stop_at_the_limit():
    a = {"b": [1, 2, 3], "a": "same", "c": {"x": 1}, "d": "one"}
    b = {"b": [1, 5], "a": "same", "c": {}, "e": True}
    found = differences(a, b, limit=10)
    assert [(d.path, d.only_in_a, d.only_in_b, d.lengths) for d in found] == [
        ("b[1]", False, False, False),
        ("b", False, False, True),
        ("c.x", True, False, False),
        ("d", True, False, False),
        ("e", False, True, False),
    ]
    assert [d.path for d in differences(a, b, limit=2)] == ["b[1]", "b"]
    assert differences("abcdef", "abcXef")[0].at == 3
    assert differences(a, a) == []


def test_excerpts_close_their_quotes_with_the_cut_inside():
    assert quote("short") == '"short"'
    long = "x" * 100
    assert quote(long, 20) == '"' + "x" * 15 + '..."' and len(quote(long, 20)) == 20
    assert len(quote('"' * 100, 20)) <= 20 and quote('"' * 100, 20).endswith('..."')
    assert quote({"b": 1, "a": [1, 2]}) == '{"a": [1, 2], "b": 1}'
    text = "line one\nPrimary working directory: /home/ci/app\nmore"
    at = text.index("ci/app")
    assert excerpt(text, at, 12) == '"...Primary working directory: /home/ci/app\\nmore"'
    assert excerpt("a" * 200, 150, 10) == '"...' + "a" * 20 + '..."'
    assert clip("two\nlines", 100) == "two\\nlines" and clip("y" * 10, 8) == "yyyyy..."
