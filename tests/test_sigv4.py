"""Our SigV4 signer and AWS credential lookup, checked differentially against botocore."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import botocore.session
import pytest

from tests.support.sigv4_check import botocore_signature, verify
from vcr.aws_credentials import find_credentials, find_region
from vcr.errors import InvalidInput
from vcr.sigv4 import Credentials, sign

NOW = datetime(2026, 12, 7, 21, 15, 0, tzinfo=timezone.utc)

PATHS = [
    "/model/us.anthropic.claude-sonnet-4-5-20250929-v1:0/invoke",
    "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/invoke-with-response-stream",
    "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Aapplication-inference-profile%2Fabc/invoke",
    "/inference-profiles",
    "/",
    "/a/./b/../c//d/",
    "/with%20space/and~tilde/%25percent",
    "/unicode/%C3%A9t%C3%A9",
]
QUERIES = [
    "",
    "type=SYSTEM_DEFINED",
    "maxResults=10&type=SYSTEM_DEFINED",
    "b=2&a=1&a=0",
    "empty=&x=a%2Fb",
    "k",
]


def _random_request(rng: random.Random) -> tuple[str, str, list[tuple[str, str]], bytes, Credentials, str]:
    method = rng.choice(["GET", "POST", "PUT"])
    path = rng.choice(PATHS)
    query = rng.choice(QUERIES)
    body = (
        b""
        if method == "GET"
        else rng.choice([b"{}", b'{"messages":[{"role":"user","content":"hi"}]}', bytes(range(256))])
    )
    headers = [
        ("Content-Type", "application/json"),
        ("Accept", rng.choice(["application/json", "application/vnd.amazon.eventstream"])),
    ]
    if rng.random() < 0.5:
        headers.append(("X-Amzn-Bedrock-Trace", "ENABLED"))
    if rng.random() < 0.3:
        headers.append(("X-Custom", "  spaced   value  "))
    headers.append(("User-Agent", "test/1.0"))
    token = rng.choice([None, "FwoGZXIvYXdzE" + "x" * rng.randint(10, 200)])
    creds = Credentials(
        "AKIA" + "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", k=16)),
        "s" * rng.randint(20, 40),
        token,
    )
    region = rng.choice(["us-east-1", "eu-west-3", "ap-southeast-2"])
    return method, path + ("?" + query if query else ""), headers, body, creds, region


@pytest.mark.parametrize("seed", range(300))
def test_signature_matches_botocore(seed: int) -> None:
    rng = random.Random(seed)
    method, target, headers, body, creds, region = _random_request(rng)
    host = f"bedrock-runtime.{region}.amazonaws.com"
    signed = sign(method, host, target, headers, body, creds, region, "bedrock", now=NOW)
    authorization = dict((n.lower(), v) for n, v in signed)["authorization"]
    ours = authorization.rsplit("Signature=", 1)[1]
    names = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    chosen = [(n, v) for n, v in signed if n.lower() in names]
    theirs = botocore_signature(
        method,
        f"https://{host}{target}",
        chosen,
        body,
        (creds.access_key, creds.secret_key, creds.token),
        region,
        "bedrock",
        "20261207T211500Z",
    )
    assert ours == theirs
    keys = {creds.access_key: (creds.secret_key, creds.token)}
    assert verify(method, f"https://{host}{target}", signed, body, keys) is None
    assert verify(method, f"https://{host}{target}", signed, body + b"x", keys) == "signature does not match"


def test_client_signature_replaced() -> None:
    creds = Credentials("AKIAOURS", "secret", None)
    client = [
        ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIATHEIRS/..."),
        ("X-Amz-Date", "19990101T000000Z"),
        ("X-Amz-Security-Token", "theirs"),
        ("x-amz-content-sha256", "abc"),
        ("Host", "127.0.0.1:9"),
    ]
    signed = sign(
        "POST",
        "bedrock-runtime.us-east-1.amazonaws.com",
        "/model/m/invoke",
        client,
        b"{}",
        creds,
        "us-east-1",
        "bedrock",
        now=NOW,
    )
    text = repr(signed)
    assert (
        "AKIATHEIRS" not in text
        and "theirs" not in text
        and "19990101" not in text
        and "127.0.0.1" not in text
    )
    assert [n.lower() for n, _ in signed].count("authorization") == 1


def test_real_botocore_client_signature_verifies() -> None:
    """A request signed by botocore's own add_auth (its own clock, its own header choice) passes our verifier."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BC

    url = "https://bedrock-runtime.us-west-2.amazonaws.com/model/anthropic.claude-v2%3A1/invoke?x=1"
    request = AWSRequest("POST", url, data=b'{"a":1}', headers={"Content-Type": "application/json"})
    SigV4Auth(BC("AKIAX", "sec", "tok"), "bedrock", "us-west-2").add_auth(request)
    headers = list(request.headers.items()) + [("Host", "bedrock-runtime.us-west-2.amazonaws.com")]
    assert verify("POST", url, headers, b'{"a":1}', {"AKIAX": ("sec", "tok")}) is None
    assert verify("POST", url, headers, b'{"a":1}', {"AKIAX": ("other", "tok")}) == "signature does not match"


def _botocore_credentials(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> tuple | None:
    for name in list(__import__("os").environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    session = botocore.session.Session()
    session.set_config_variable("credential_process", None)
    resolver = session.get_component("credential_provider")
    for name in (
        "sso",
        "container-role",
        "iam-role",
        "assume-role",
        "assume-role-with-web-identity",
        "custom-process",
        "boto2-config",
    ):
        try:
            resolver.remove(name)
        except Exception:
            pass
    found = session.get_credentials()
    if found is None:
        return None
    frozen = found.get_frozen_credentials()
    return frozen.access_key, frozen.secret_key, frozen.token


CREDENTIALS_FILE = """
[default]
aws_access_key_id = AKIADEFAULTFILE
aws_secret_access_key = defaultsecret

[ci]
aws_access_key_id = AKIACIFILE
aws_secret_access_key = cisecret
aws_session_token = citoken
"""
CONFIG_FILE = """
[default]
region = eu-central-1

[profile fromconfig]
aws_access_key_id = AKIACONFIG
aws_secret_access_key = configsecret
region = ap-south-1

[profile ci]
region = us-west-2
"""


@pytest.mark.parametrize(
    "env",
    [
        {"AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "envsecret"},
        {
            "AWS_ACCESS_KEY_ID": "AKIAENV",
            "AWS_SECRET_ACCESS_KEY": "envsecret",
            "AWS_SESSION_TOKEN": "envtoken",
        },
        {"AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "envsecret", "AWS_PROFILE": "ci"},
        {},
        {"AWS_PROFILE": "ci"},
        {"AWS_PROFILE": "fromconfig"},
        {"AWS_PROFILE": "missing"},
        {"AWS_ACCESS_KEY_ID": "AKIAHALF"},
    ],
)
def test_credentials_match_botocore(env: dict[str, str], tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "credentials").write_text(CREDENTIALS_FILE)
    (tmp_path / "config").write_text(CONFIG_FILE)
    full = {
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        **env,
    }
    full["HOME"] = str(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    try:
        ours = find_credentials(full)
        ours_tuple = None if ours is None else (ours.access_key, ours.secret_key, ours.token)
    except InvalidInput:
        ours_tuple = "refused"
    try:
        theirs = _botocore_credentials(full, monkeypatch)
    except botocore.exceptions.ProfileNotFound:
        theirs = None
    except botocore.exceptions.PartialCredentialsError:
        theirs = "refused"
    assert ours_tuple == theirs
    if env.get("AWS_PROFILE") != "missing":
        session = botocore.session.Session()
        assert find_region(full) == session.get_config_variable("region")


def test_unreadable_config_is_one_line(tmp_path) -> None:
    (tmp_path / "credentials").write_bytes(b"[default\nnot ini")
    with pytest.raises(InvalidInput) as caught:
        find_credentials(
            {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"), "HOME": str(tmp_path)}
        )
    assert "\n" not in str(caught.value)
