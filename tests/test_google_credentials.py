"""Vertex tokens from Google's application-default credentials: fetched from a (scripted, loopback) token
endpoint with the refresh-token or the service-account JWT flow, kept until shortly before they expire,
then fetched again, mid-session too; RS256 checked against google-auth's own signer; never stored."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import httpx2 as httpx
import pytest
from claude_vcr.errors import CredentialsError
from claude_vcr.google_credentials import REFRESH_MARGIN, GoogleToken, rs256, service_account_assertion

from tests.support.db_scan import every_value
from tests.support.google_token_endpoint import (
    SCOPE,
    SECRETS,
    SERVICE_ACCOUNT,
    service_account_key,
)
from tests.support.vertex_upstream import MODEL, PROJECT, REGION

PATH = f"/v1/projects/{PROJECT}/locations/{REGION}/publishers/anthropic/models/{MODEL}:rawPredict"
BODY = {"anthropic_version": "vertex-2023-10-16", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}


class Clock:
    """A clock the test moves, starting now (the token endpoint refuses a JWT issued in the future)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def tokens(source: GoogleToken, times: int = 1) -> list[str]:
    """`times` concurrent gets over one aiohttp session."""

    async def run() -> list[str]:
        async with aiohttp.ClientSession() as session:
            return list(await asyncio.gather(*(source.get(session) for _ in range(times))))

    return asyncio.run(run())


# --- RS256 and the JWT grant, against google-auth ---------------------------------------------------------


@pytest.mark.parametrize("form", ["pkcs8", "pkcs1"])
def test_rs256_equals_google_auth_signer(form):
    from cryptography.hazmat.primitives import serialization
    from google.auth.crypt import RSASigner

    pem = service_account_key()[0]
    if form == "pkcs1":
        key = serialization.load_pem_private_key(pem.encode(), None)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode()
        assert "BEGIN RSA PRIVATE KEY" in pem
    for message in (b"", b"header.claims", "é".encode() * 500):
        assert rs256(pem, message) == RSASigner.from_string(pem).sign(message)


def test_service_account_assertion_decodes_with_google_auth():
    from google.auth import jwt

    pem, public = service_account_key()
    now = int(time.time())
    info = {"client_email": SERVICE_ACCOUNT, "private_key": pem, "private_key_id": "kid-1"}
    assertion = service_account_assertion(info, "https://oauth2.googleapis.com/token", now)
    claims = jwt.decode(assertion, certs=public, audience="https://oauth2.googleapis.com/token")
    assert claims["iss"] == SERVICE_ACCOUNT and claims["exp"] == now + 3600
    assert claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
    assert jwt.decode_header(assertion) == {"typ": "JWT", "alg": "RS256", "kid": "kid-1"}


# --- refresh ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["authorized_user", "service_account"])
def test_a_token_is_kept_until_near_expiry_then_refreshed(google_adc, google_token, kind):
    google_adc(kind)
    clock = Clock()
    source = GoogleToken(clock=clock)
    [first] = tokens(source)
    assert first == google_token.script.issued[0]
    clock.now += 3600 - REFRESH_MARGIN - 1  # still fresh: no second call
    assert tokens(source) == [first]
    assert len(google_token.script.issued) == 1
    clock.now += 2  # within the margin of expiry: fetched again
    [second] = tokens(source)
    assert second != first and google_token.script.issued == [first, second]
    grant = "refresh_token" if kind == "authorized_user" else "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert google_token.script.grants == [grant, grant] and google_token.script.refused == []


def test_concurrent_requests_share_one_refresh(google_adc, google_token):
    google_adc("authorized_user")
    assert len(set(tokens(GoogleToken(), times=8))) == 1
    assert len(google_token.script.issued) == 1


def test_the_environment_token_wins_and_is_never_refreshed(google_adc, google_token, monkeypatch):
    google_adc("authorized_user")
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.from-the-environment")
    assert tokens(GoogleToken(), times=2) == ["ya29.from-the-environment"] * 2
    assert google_token.script.grants == []


def test_proxy_refreshes_an_expiring_adc_token_mid_session(proxy, vertex, google_adc, google_token, db_path):
    """Claude Code with CLAUDE_CODE_SKIP_VERTEX_AUTH=1 sends no token; the proxy's ADC token is good for one
    second past the refresh margin, so the next request a second later carries a new one."""
    google_adc("authorized_user")
    google_token.script.expires_in = REFRESH_MARGIN + 1
    recorder = proxy(mode="record", upstream=vertex.url, upstream_format="vertex")
    first = httpx.post(recorder.url + PATH, json=BODY)
    assert first.status_code == 200, first.text
    time.sleep(1.2)
    second = httpx.post(recorder.url + PATH, json={**BODY, "max_tokens": 11})
    assert second.status_code == 200, second.text
    recorder.stop()
    issued = google_token.script.issued
    assert len(issued) == 2 and vertex.script.rejected == []
    assert [call.headers["Authorization"] for call in vertex.script.calls] == [f"Bearer {t}" for t in issued]
    stored = every_value(db_path)
    for secret in SECRETS:
        assert secret.encode() not in stored, secret


# --- errors: one line, no secret --------------------------------------------------------------------------


def test_a_refused_refresh_token_is_a_one_line_502(proxy, vertex, google_adc, google_token):
    path = google_adc("authorized_user")
    info = json.loads(path.read_text())
    path.write_text(json.dumps({**info, "refresh_token": "1//revoked-refresh-token"}))
    recorder = proxy(mode="record", upstream=vertex.url, upstream_format="vertex")
    answer = httpx.post(recorder.url + PATH, json=BODY)
    assert answer.status_code == 502
    message = answer.json()["error"]["message"]
    assert "cannot authenticate to Vertex AI" in message and "answered 400 (invalid_grant)" in message
    assert "revoked-refresh-token" not in message and "\n" not in message
    assert vertex.script.calls == []


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"type": "impersonated_service_account"}, "'impersonated_service_account' are not supported"),
        ({"token_uri": "http://oauth2.example.com/token"}, "token_uri must be an https:// URL"),
        ({"refresh_token": None}, "authorized_user credentials lack refresh_token"),
    ],
    ids=["unsupported-type", "cleartext-token-uri", "incomplete"],
)
def test_unusable_adc_files_are_one_line(google_adc, google_token, change, said):
    path = google_adc("authorized_user")
    info = {**json.loads(path.read_text()), **change}
    path.write_text(json.dumps({k: v for k, v in info.items() if v is not None}))
    with pytest.raises(CredentialsError) as caught:
        tokens(GoogleToken())
    assert said in str(caught.value) and str(path) in str(caught.value)
    for secret in SECRETS:
        assert secret not in str(caught.value)
    assert google_token.script.grants == []


def test_a_service_account_with_a_broken_key_is_one_line(google_adc, google_token):
    path = google_adc("service_account")
    broken = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    path.write_text(json.dumps({**json.loads(path.read_text()), "private_key": broken}))
    with pytest.raises(CredentialsError) as caught:
        tokens(GoogleToken())
    assert "private_key is unusable" in str(caught.value) and "AAAA" not in str(caught.value)
    assert google_token.script.grants == []


def test_a_token_vertex_refuses_early_is_fetched_again_and_the_request_resent(
    proxy, vertex, google_adc, google_token, db_path
):
    """Revoked (or skewed) before its stated expiry: the 401 is not the client's answer."""
    google_adc("authorized_user")
    recorder = proxy(mode="record", upstream=vertex.url, upstream_format="vertex")
    assert httpx.post(recorder.url + PATH, json=BODY).status_code == 200
    vertex.script.tokens.discard(google_token.script.issued[0])
    again = httpx.post(recorder.url + PATH, json={**BODY, "max_tokens": 12})
    assert again.status_code == 200, again.text
    assert len(google_token.script.issued) == 2
    assert len(vertex.script.rejected) == 1 and len(vertex.script.calls) == 3
    recorder.stop()


def test_an_environment_token_vertex_refuses_is_the_clients_401(proxy, vertex, no_google_credentials, monkeypatch):
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.stale-environment-token")
    recorder = proxy(mode="record", upstream=vertex.url, upstream_format="vertex")
    assert httpx.post(recorder.url + PATH, json=BODY).status_code == 401
    assert len(vertex.script.calls) == 1


# --- workload identity federation (external_account) ------------------------------------------------------

FEDERATED = ["external_account_file", "external_account_url"]


@pytest.mark.parametrize("kind", FEDERATED)
def test_the_scripted_federation_takes_google_auths_own_requests(google_adc, google_token, kind, monkeypatch):
    """google-auth's identity-pool credentials refresh against the scripted STS/IAM, which checks every field:
    the endpoints our flow is tested against accept what Google's own library sends (and it looks up no
    host but loopback)."""
    import socket

    import google.auth.transport.requests
    from google.auth import identity_pool

    looked_up, lookup = [], socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: looked_up.append(host) or lookup(host, *a, **k))
    path = google_adc(kind)  # from_info, not load_credentials_from_file: that also asks Google for the project
    credentials = identity_pool.Credentials.from_info(json.loads(path.read_text()), scopes=[SCOPE])
    credentials.refresh(google.auth.transport.requests.Request())
    assert credentials.token == google_token.script.issued[-1] and google_token.script.refused == []
    assert set(looked_up) == {"127.0.0.1"}


@pytest.mark.parametrize("kind", FEDERATED)
def test_workload_identity_tokens_are_fetched_and_refreshed(google_adc, google_token, kind):
    google_adc(kind)
    clock = Clock()
    source = GoogleToken(clock=clock)
    [first] = tokens(source)
    steps = ["urn:ietf:params:oauth:grant-type:token-exchange"]
    if kind == "external_account_url":  # a CI's OIDC URL, then STS, then the service account's own token
        steps.append("generateAccessToken")
        assert first.startswith("ya29.issued-")
    else:
        assert first.startswith("ya29.sts-")
    assert google_token.script.grants == steps and google_token.script.refused == []
    clock.now += 3600 - REFRESH_MARGIN + 1
    [second] = tokens(source)
    assert second != first and google_token.script.grants == steps * 2


def test_the_proxy_records_on_vertex_with_workload_identity(proxy, vertex, google_adc, google_token, db_path):
    google_adc("external_account_url")
    recorder = proxy(mode="record", upstream=vertex.url, upstream_format="vertex")
    answer = httpx.post(recorder.url + PATH, json=BODY)
    assert answer.status_code == 200, answer.text
    recorder.stop()
    assert vertex.script.rejected == []
    stored = every_value(db_path)
    for secret in SECRETS:
        assert secret.encode() not in stored, secret


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ({"environment_id": "aws1", "regional_cred_verification_url": "https://sts.amazonaws.com"}, "must be a file or a url"),
        ({"url": "http://ci.example.com/oidc"}, "credential_source.url must be an https:// URL"),
    ],
    ids=["aws-source", "cleartext-url"],
)
def test_unusable_federation_sources_are_one_line(google_adc, google_token, source, said):
    path = google_adc("external_account_file")
    path.write_text(json.dumps({**json.loads(path.read_text()), "credential_source": source}))
    with pytest.raises(CredentialsError) as caught:
        tokens(GoogleToken())
    assert said in str(caught.value) and "\n" not in str(caught.value)
    assert google_token.script.grants == []
