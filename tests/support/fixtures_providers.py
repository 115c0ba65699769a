"""Fixtures for the cloud providers: a scripted Bedrock and Vertex on 127.0.0.1, and their credentials."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.bedrock_upstream import ScriptedBedrock, aws_env
from tests.support.loopback import LoopbackServer, LoopThread, serving
from tests.support.vertex_upstream import ScriptedVertex


@pytest.fixture
def bedrock(loop_thread: LoopThread) -> Iterator[LoopbackServer[ScriptedBedrock]]:
    """The scripted Bedrock on 127.0.0.1; `stop()` makes it unreachable."""
    with serving(loop_thread, ScriptedBedrock()) as server:
        yield server


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path) -> dict[str, str]:
    """The proxy's AWS credentials in the environment (the scripted Bedrock's keys), no shared files."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    env = aws_env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def vertex(loop_thread: LoopThread) -> Iterator[LoopbackServer[ScriptedVertex]]:
    """The scripted Vertex AI on 127.0.0.1; `stop()` makes it unreachable."""
    with serving(loop_thread, ScriptedVertex()) as server:
        yield server
