"""Fake credentials built at test time from pieces, so no credential-shaped string sits in the repository
for a secret scanner to flag; each is (kind `claude_vcr.secrets` must report, the secret, text holding it)."""

from __future__ import annotations

import random
import string

_RNG = random.Random(1913)


def _chars(n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(_RNG.choice(alphabet) for _ in range(n))


def _upper(n: int) -> str:
    return _chars(n, string.ascii_uppercase + string.digits)


def _b64url(n: int) -> str:
    return _chars(n, string.ascii_letters + string.digits + "-_")


def _join(*pieces: str) -> str:
    return "".join(pieces)


def fake_secrets() -> list[tuple[str, str]]:
    """(kind, secret) for every detector, several shapes where a provider has several."""
    pem_body = "\n".join(_chars(64, string.ascii_letters + string.digits + "+/") for _ in range(4))
    begin, end = (
        _join("-----BEGIN ", "RSA PRIVATE", " KEY-----"),
        _join("-----END ", "RSA PRIVATE", " KEY-----"),
    )
    return [
        ("anthropic-key", _join("sk-", "ant-", "api03-", _b64url(93), "AA")),
        ("anthropic-key", _join("sk-", "ant-", "admin01-", _b64url(80))),
        ("openai-key", _join("sk-", "proj-", _b64url(120))),
        ("openai-key", _join("sk-", _chars(20), "T3Blbk", "FJ", _chars(20))),
        ("aws-access-key", _join("AK", "IA", _upper(16))),
        ("aws-access-key", _join("AS", "IA", _upper(16))),
        ("github-token", _join("gh", "p_", _chars(36))),
        ("github-token", _join("github", "_pat_", _chars(22), "_", _chars(59))),
        ("gitlab-token", _join("gl", "pat-", _b64url(20))),
        (
            "slack-token",
            _join("xo", "xb-", _chars(12, string.digits), "-", _chars(13, string.digits), "-", _chars(24)),
        ),
        (
            "slack-webhook",
            _join("https://hooks.", "slack.com/services/T", _upper(8), "/B", _upper(10), "/", _chars(24)),
        ),
        ("google-api-key", _join("AI", "za", _b64url(35))),
        ("stripe-key", _join("sk", "_live_", _chars(24))),
        ("stripe-key", _join("rk", "_test_", _chars(24))),
        (
            "jwt",
            _join("ey", "JhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9", ".", "ey", "J", _b64url(40), ".", _b64url(43)),
        ),
        ("private-key", _join(begin, "\n", pem_body, "\n", end)),
    ]


def env_file() -> tuple[str, list[str]]:
    """A `.env` file's text and the values in it that are secrets (the rest are ordinary settings)."""
    secrets = [_chars(32), _join(_chars(10), "-", _chars(12)), _chars(40, string.hexdigits.lower())]
    text = (
        "# local settings\n"
        "DEBUG=true\n"
        "PORT=8080\n"
        "DATABASE_URL=postgres://localhost:5432/app\n"
        f"DB_PASSWORD={secrets[0]}\n"
        f'export SESSION_SECRET="{secrets[1]}"\n'
        f"STRIPE_WEBHOOK_SECRET_KEY={secrets[2]}\n"
        "LOG_LEVEL=info\n"
    )
    return text, secrets
