"""Fixtures for the cloud providers: a scripted Bedrock, Vertex and Google token endpoint on 127.0.0.1, and
their credentials."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from claude_vcr.google_credentials import ADC_ENV, TOKEN_ENV

from tests.support.bedrock_upstream import ScriptedBedrock, aws_env
from tests.support.google_token_endpoint import ScriptedGoogleToken, write_adc
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


@pytest.fixture
def no_google_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """No Google token in the environment and no application-default credentials file anywhere."""
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(ADC_ENV, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud-config"))


@pytest.fixture
def google_token(
    loop_thread: LoopThread, vertex: LoopbackServer[ScriptedVertex]
) -> Iterator[LoopbackServer[ScriptedGoogleToken]]:
    """A scripted Google token endpoint on 127.0.0.1 whose tokens the scripted Vertex accepts."""
    with serving(loop_thread, ScriptedGoogleToken(vertex.script)) as server:
        yield server


@pytest.fixture
def google_adc(
    google_token: LoopbackServer[ScriptedGoogleToken],
    no_google_credentials: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path,
) -> Callable[[str], Path]:
    """`use(kind)`: an ADC file of that kind (authorized_user, service_account, external_account_file,
    external_account_url) pointing at the scripted token endpoint, named by GOOGLE_APPLICATION_CREDENTIALS."""

    def use(kind: str) -> Path:
        path = write_adc(tmp_path, kind, google_token.url + "/token")
        monkeypatch.setenv(ADC_ENV, str(path))
        google_token.script.impersonation = kind == "external_account_url"
        return path

    return use
