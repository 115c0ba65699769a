"""`claude-vcr run` and the pytest plugin point a cloud client at the proxy: the base-URL variable of the
provider chosen with --upstream-format (the SDKs' AnthropicBedrock and AnthropicVertex read them)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from tests.support.bedrock_upstream import aws_env
from tests.support.inner_suites import FAST, answers, clean_environment
from tests.support.loopback import unreachable_url
from tests.support.vertex_upstream import PROJECT, REGION, TOKEN

BEDROCK_CHILD = """
from anthropic import AnthropicBedrock
client = AnthropicBedrock(aws_region="us-east-1", aws_access_key="AKIACLIENT", aws_secret_key="client", max_retries=0)
reply = client.messages.create(model="us.anthropic.claude-sonnet-4-5-20250929-v1:0", max_tokens=64,
                               messages=[{"role": "user", "content": "hi"}])
print("ANSWER", reply.content[0].text)
"""
VERTEX_CHILD = f"""
from anthropic import AnthropicVertex
client = AnthropicVertex(region={REGION!r}, project_id={PROJECT!r}, access_token={TOKEN!r}, max_retries=0)
reply = client.messages.create(model="claude-sonnet-4-5@20250929", max_tokens=64,
                               messages=[{{"role": "user", "content": "hi"}}])
print("ANSWER", reply.content[0].text)
"""


def claude_vcr_run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("VCR_", "ANTHROPIC_", "AWS_", "CLAUDE_CODE_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "claude_vcr", "run", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**base, **(env or {})},
    )


def test_run_points_an_anthropic_bedrock_client_at_the_proxy(bedrock, tmp_path):
    db = str(tmp_path / "vcr.db")
    nowhere = {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
    }
    recorded = claude_vcr_run(
        "--db",
        db,
        "--upstream-format",
        "bedrock",
        "--upstream",
        bedrock.url,
        "--mode",
        "record",
        "--",
        sys.executable,
        "-c",
        BEDROCK_CHILD,
        env={**aws_env(), **nowhere},
    )
    assert recorded.returncode == 0, recorded.stderr
    assert recorded.stdout.startswith("ANSWER Bedrock reply number")
    assert bedrock.script.rejected == []
    bedrock.stop()
    replayed = claude_vcr_run(
        "--db",
        db,
        "--upstream-format",
        "bedrock",
        "--upstream",
        unreachable_url(),
        "--mode",
        "replay",
        "--",
        sys.executable,
        "-c",
        BEDROCK_CHILD,
        env=nowhere,
    )
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == recorded.stdout


def test_run_points_an_anthropic_vertex_client_at_the_proxy(vertex, tmp_path):
    db = str(tmp_path / "vcr.db")
    recorded = claude_vcr_run(
        "--db",
        db,
        "--upstream-format",
        "vertex",
        "--upstream",
        vertex.url,
        "--mode",
        "record",
        "--",
        sys.executable,
        "-c",
        VERTEX_CHILD,
    )
    assert recorded.returncode == 0, recorded.stderr
    assert recorded.stdout.startswith("ANSWER Scripted reply number")
    vertex.stop()
    replayed = claude_vcr_run(
        "--db",
        db,
        "--upstream-format",
        "vertex",
        "--upstream",
        unreachable_url(),
        "--mode",
        "replay",
        "--",
        sys.executable,
        "-c",
        VERTEX_CHILD,
    )
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == recorded.stdout


BEDROCK_SUITE = f"""
import pytest

@pytest.mark.claude_vcr
def test_bedrock_answer():
{textwrap.indent(BEDROCK_CHILD, "    ")}
"""


def test_the_pytest_plugin_points_an_anthropic_bedrock_client_at_the_proxy(
    pytester, monkeypatch, bedrock, tmp_path
):
    """VCR_UPSTREAM_FORMAT=bedrock: a marked test's AnthropicBedrock (ANTHROPIC_BEDROCK_BASE_URL) records,
    then replays with Bedrock down and no AWS credentials."""
    clean_environment(monkeypatch)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setenv("VCR_UPSTREAM_FORMAT", "bedrock")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    pytester.makepyfile(test_bedrock_suite=BEDROCK_SUITE)
    db = tmp_path / "cassettes.db"
    for name, value in aws_env().items():
        monkeypatch.setenv(name, value)
    recorded = pytester.runpytest_subprocess(
        *FAST,
        "-s",
        f"--claude-vcr-db={db}",
        f"--claude-vcr-upstream={bedrock.url}",
        "--claude-vcr-record-mode=once",
        timeout=300,
    )
    recorded.assert_outcomes(passed=1)
    assert bedrock.script.rejected == [] and bedrock.script.model_calls()
    bedrock.stop()
    for name in aws_env():
        monkeypatch.delenv(name)
    replayed = pytester.runpytest_subprocess(
        *FAST, "-s", f"--claude-vcr-db={db}", f"--claude-vcr-upstream={unreachable_url()}", timeout=300
    )
    replayed.assert_outcomes(passed=1)
    assert answers(replayed.stdout.str()) == answers(recorded.stdout.str())
    assert "Bedrock reply number" in answers(replayed.stdout.str())[0]
