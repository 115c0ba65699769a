"""Google access tokens for Vertex AI from the environment or application-default credentials, refreshed
before they expire, without google-auth.

Sources, in order: `GOOGLE_OAUTH_ACCESS_TOKEN` (a token the caller minted, e.g. `gcloud auth
print-access-token`; used as is, never refreshed), then the application-default credentials file
(`GOOGLE_APPLICATION_CREDENTIALS`, else gcloud's `application_default_credentials.json` that `gcloud auth
application-default login` writes). That file's `authorized_user` (refresh-token flow), `service_account`
(a JWT signed RS256 with its key) and `external_account` (workload identity federation, as CI systems such
as GitHub Actions set it up: a subject token from a file or URL exchanged at STS, then optionally for a
service account's token at IAM) are supported; a token they give is kept until 225 seconds before it
expires (google-auth's margin), then fetched again, so a long recording session never sends a stale one.
AWS and executable credential sources, `impersonated_service_account` files and the metadata server are
not read: export a token instead.
Nothing here is logged or stored, and no error message carries a token, a key or a refresh token.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import CredentialsError
from .loopback import is_loopback

TOKEN_ENV = "GOOGLE_OAUTH_ACCESS_TOKEN"
ADC_ENV = "GOOGLE_APPLICATION_CREDENTIALS"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
IAM_SCOPE = "https://www.googleapis.com/auth/iam"
REFRESH_MARGIN = 225.0
"""Seconds before expiry a token is replaced (google-auth's REFRESH_THRESHOLD, 3 min 45 s)."""
JWT_LIFETIME = 3600
MAX_ADC_SIZE = 1024 * 1024
MISSING = (
    "no Google credentials for Vertex AI: the client sent no bearer token, GOOGLE_OAUTH_ACCESS_TOKEN is not "
    "set and there is no application-default credentials file (set GOOGLE_APPLICATION_CREDENTIALS, or run "
    "`gcloud auth application-default login`)"
)


# --- RS256 for service-account keys (stdlib only) --------------------------------------------------------

_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def _der(data: bytes, at: int) -> tuple[int, bytes, int]:
    """(tag, content, next offset) of the DER element at `at`."""
    tag, length = data[at], data[at + 1]
    at += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[at : at + count], "big")
        at += count
    if at + length > len(data):
        raise ValueError("DER element runs past the end")
    return tag, data[at : at + length], at + length


def _sequence(content: bytes) -> list[tuple[int, bytes]]:
    items, at = [], 0
    while at < len(content):
        tag, value, at = _der(content, at)
        items.append((tag, value))
    return items


def rsa_private_numbers(pem: str) -> tuple[int, int]:
    """(modulus, private exponent) of a PEM RSA key, PKCS#8 (`PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`)."""
    lines = [line.strip() for line in pem.strip().splitlines()]
    if len(lines) < 3 or not lines[0].startswith("-----BEGIN ") or not lines[-1].startswith("-----END "):
        raise ValueError("not a PEM key")
    der = base64.b64decode("".join(lines[1:-1]), validate=True)
    tag, content, _ = _der(der, 0)
    items = _sequence(content)
    if "RSA PRIVATE KEY" not in lines[0]:  # PKCS#8: version, algorithm, OCTET STRING holding PKCS#1
        if len(items) < 3 or items[2][0] != 0x04:
            raise ValueError("not a PKCS#8 private key")
        tag, content, _ = _der(items[2][1], 0)
        items = _sequence(content)
    if tag != 0x30 or len(items) < 4 or any(t != 0x02 for t, _ in items[:4]):
        raise ValueError("not an RSA private key")
    return int.from_bytes(items[1][1], "big"), int.from_bytes(items[3][1], "big")


def rs256(pem: str, message: bytes) -> bytes:
    """RSASSA-PKCS1-v1_5 with SHA-256 (JWT's RS256): deterministic, so tests compare it with google-auth's."""
    modulus, exponent = rsa_private_numbers(pem)
    size = (modulus.bit_length() + 7) // 8
    digest = _SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    if size < len(digest) + 11:
        raise ValueError("RSA key too short")
    padded = b"\x00\x01" + b"\xff" * (size - len(digest) - 3) + b"\x00" + digest
    return pow(int.from_bytes(padded, "big"), exponent, modulus).to_bytes(size, "big")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def service_account_assertion(info: Mapping[str, Any], token_uri: str, now: int) -> str:
    """The signed JWT a service account trades for an access token (RFC 7523), as google-auth builds it."""
    header = {"typ": "JWT", "alg": "RS256"}
    if info.get("private_key_id"):
        header["kid"] = str(info["private_key_id"])
    claims = {
        "iat": now,
        "exp": now + JWT_LIFETIME,
        "iss": info["client_email"],
        "aud": token_uri,
        "scope": SCOPE,
    }
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    return signing_input + "." + _b64url(rs256(str(info["private_key"]), signing_input.encode()))


# --- the credentials file ---------------------------------------------------------------------------------


def adc_path(env: Mapping[str, str]) -> Path | None:
    """The application-default credentials file in use: GOOGLE_APPLICATION_CREDENTIALS, else gcloud's."""
    if env.get(ADC_ENV):
        return Path(env[ADC_ENV]).expanduser()
    if env.get("CLOUDSDK_CONFIG"):
        folder = Path(env["CLOUDSDK_CONFIG"]).expanduser()
    elif os.name == "nt" and env.get("APPDATA"):
        folder = Path(env["APPDATA"]) / "gcloud"
    else:
        folder = Path(env.get("HOME") or Path.home()) / ".config" / "gcloud"
    found = folder / "application_default_credentials.json"
    return found if found.is_file() else None


def _safe_url(uri: str, where: Path, name: str) -> str:
    """https, or http to a loopback host only: a refresh token, grant or subject token never crosses a
    network in clear."""
    split = urlsplit(uri)
    if split.scheme == "https" or (split.scheme == "http" and is_loopback(split.hostname or "")):
        return uri
    raise CredentialsError(f"{where}: {name} must be an https:// URL (or http:// on loopback)")


def _token_uri(info: Mapping[str, Any], where: Path) -> str:
    """The file's token endpoint (Google's by default), checked by `_safe_url`."""
    return _safe_url(str(info.get("token_uri") or DEFAULT_TOKEN_URI), where, "token_uri")


def read_adc(path: Path) -> dict[str, Any]:
    """The credentials file's JSON, checked for the fields its type needs (their values never in messages)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_ADC_SIZE + 1)
        info = json.loads(raw) if len(raw) <= MAX_ADC_SIZE else None
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
        raise CredentialsError(f"{path}: cannot read Google credentials ({reason})") from None
    if not isinstance(info, dict):
        raise CredentialsError(f"{path}: not a Google credentials file")
    kind = info.get("type")
    needed = {
        "authorized_user": ("client_id", "client_secret", "refresh_token"),
        "service_account": ("client_email", "private_key"),
        "external_account": ("audience", "subject_token_type", "token_url"),
    }.get(str(kind))
    if needed is None:
        raise CredentialsError(
            f"{path}: credentials of type {str(kind)[:40]!r} are not supported (authorized_user, "
            f"service_account and external_account are); export {TOKEN_ENV} instead"
        )
    missing = [name for name in needed if not isinstance(info.get(name), str) or not info[name]]
    if missing:
        raise CredentialsError(f"{path}: {kind} credentials lack {', '.join(missing)}")
    return info


def token_request(info: Mapping[str, Any], where: Path, now: int) -> tuple[str, dict[str, str]]:
    """(token URI, form fields) that exchange the credentials for an access token."""
    uri = _token_uri(info, where)
    if info["type"] == "authorized_user":
        return uri, {
            "grant_type": "refresh_token",
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
            "refresh_token": info["refresh_token"],
        }
    try:
        assertion = service_account_assertion(info, uri, now)
    except (ValueError, IndexError) as error:
        raise CredentialsError(f"{where}: the service account's private_key is unusable ({error})") from None
    return uri, {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}


# --- workload identity federation (external_account: GitHub Actions, GitLab, any OIDC provider) ---------

STS_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


def _source(info: Mapping[str, Any], where: Path) -> dict[str, Any]:
    """The file's credential_source when it is one we read (a file or a URL), else a one-line error."""
    source = info.get("credential_source")
    if not isinstance(source, dict) or not (isinstance(source.get("file"), str) or isinstance(source.get("url"), str)):
        raise CredentialsError(
            f"{where}: external_account credential_source must be a file or a url (AWS and executable "
            f"sources are not read); export {TOKEN_ENV} instead"
        )
    return source


def subject_token_of(raw: bytes, source: Mapping[str, Any], where: Path) -> str:
    """The subject token in what the credential source gave: all of it (`text`, as google-auth reads it) or
    one field of its JSON."""
    fmt = source.get("format") if isinstance(source.get("format"), dict) else {}
    text = raw.decode("utf-8", "replace")
    if fmt.get("type", "text") == "json":
        try:
            value = json.loads(text).get(fmt.get("subject_token_field_name"))
        except (ValueError, AttributeError):
            value = None
        if not isinstance(value, str) or not value:
            raise CredentialsError(f"{where}: the credential source's JSON has no subject token field")
        return value
    if not text:
        raise CredentialsError(f"{where}: the credential source gave an empty subject token")
    return text


def exchange_form(info: Mapping[str, Any], subject_token: str) -> dict[str, str]:
    """The STS token-exchange form (RFC 8693), field for field as google-auth sends it: a token to
    impersonate a service account with asks for the IAM scope only."""
    impersonates = bool(info.get("service_account_impersonation_url"))
    return {
        "grant_type": STS_GRANT,
        "audience": str(info["audience"]),
        "scope": IAM_SCOPE if impersonates else SCOPE,
        "requested_token_type": ACCESS_TOKEN_TYPE,
        "subject_token": subject_token,
        "subject_token_type": str(info["subject_token_type"]),
    }


def parse_impersonation_answer(status: int, body: bytes, uri: str) -> tuple[str, float]:
    """(access token, expiry as epoch seconds) from IAM's generateAccessToken answer."""
    from datetime import datetime, timezone

    try:
        answer = json.loads(body)
        token = answer["accessToken"]
        expires = datetime.strptime(answer["expireTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except (ValueError, KeyError, TypeError):
        raise CredentialsError(
            f"the service account impersonation endpoint {uri} answered {status}: no access token"
        ) from None
    if status != 200 or not isinstance(token, str):
        raise CredentialsError(f"the service account impersonation endpoint {uri} answered {status}")
    return token, expires.timestamp()


def parse_token_answer(status: int, body: bytes, uri: str, now: float) -> tuple[str, float]:
    """(access token, expiry time) from a token endpoint's answer; a CredentialsError naming its error code."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if status != 200 or not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
        code = answer.get("error") if isinstance(answer, dict) else None
        said = f" ({str(code)[:80]})" if isinstance(code, str) else ""
        raise CredentialsError(f"the Google token endpoint {uri} answered {status}{said}: no access token")
    expires_in = answer.get("expires_in")
    lifetime = float(expires_in) if isinstance(expires_in, (int, float)) and expires_in > 0 else 3600.0
    return answer["access_token"], now + lifetime


# --- the token in use -------------------------------------------------------------------------------------


@dataclass
class _Held:
    """A fetched token and when it expires by `GoogleToken.clock` (kept in memory only)."""

    value: str
    expires_at: float


class GoogleToken:
    """The bearer token for requests to Vertex AI, fetched on first use and again before it expires."""

    def __init__(
        self, env: Mapping[str, str] | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.env = os.environ if env is None else env
        self.clock = clock
        self._held: _Held | None = None
        self._lock = asyncio.Lock()

    def fresh(self) -> str | None:
        """The held token while it has more than REFRESH_MARGIN seconds left, else None."""
        if self._held is not None and self.clock() < self._held.expires_at - REFRESH_MARGIN:
            return self._held.value
        return None

    def forget(self, value: str) -> bool:
        """Drop a fetched token the service refused before its time (revoked, clock skew); False when
        `value` was not one (an environment token cannot be fetched again)."""
        if self._held is not None and self._held.value == value:
            self._held = None
            return True
        return False

    async def get(self, session: Any) -> str:
        """A token that is good for a while yet; `session` (aiohttp) reaches the token endpoint."""
        static = self.env.get(TOKEN_ENV, "").strip()
        if static:
            return static
        if (held := self.fresh()) is not None:
            return held
        async with self._lock:  # concurrent requests share one refresh
            if (held := self.fresh()) is not None:
                return held
            path = adc_path(self.env)
            if path is None:
                raise CredentialsError(MISSING)
            info = read_adc(path)
            if info["type"] == "external_account":
                value, expires_at = await self._federated(session, info, path)
            else:
                uri, form = token_request(info, path, int(time.time()))  # a JWT is dated by the wall clock
                status, body = await _send(session, "POST", uri, data=form)
                value, expires_at = parse_token_answer(status, body, uri, self.clock())
            self._held = _Held(value, expires_at)
            return value

    async def _federated(self, session: Any, info: Mapping[str, Any], where: Path) -> tuple[str, float]:
        """A workload identity token: the subject token from its source, exchanged at STS, then (when the
        file says so) traded for the service account's own token at IAM."""
        source = _source(info, where)
        if isinstance(source.get("file"), str):
            try:
                with open(source["file"], "rb") as handle:
                    raw = handle.read(MAX_ADC_SIZE)
            except OSError as error:
                raise CredentialsError(
                    f"{where}: cannot read the credential source file ({error.strerror or type(error).__name__})"
                ) from None
        else:
            url = _safe_url(source["url"], where, "credential_source.url")
            headers = source.get("headers") if isinstance(source.get("headers"), dict) else {}
            status, raw = await _send(session, "GET", url, headers={str(k): str(v) for k, v in headers.items()})
            if status != 200:
                raise CredentialsError(f"the credential source {url} answered {status}")
        sts = _safe_url(str(info["token_url"]), where, "token_url")
        status, body = await _send(session, "POST", sts, data=exchange_form(info, subject_token_of(raw, source, where)))
        value, expires_at = parse_token_answer(status, body, sts, self.clock())
        impersonation = info.get("service_account_impersonation_url")
        if not isinstance(impersonation, str) or not impersonation:
            return value, expires_at
        iam = _safe_url(impersonation, where, "service_account_impersonation_url")
        request = {"delegates": [], "scope": [SCOPE], "lifetime": "3600s"}
        status, body = await _send(session, "POST", iam, json_body=request, headers={"Authorization": f"Bearer {value}"})
        token, expires = parse_impersonation_answer(status, body, iam)
        return token, self.clock() + (expires - time.time())


async def _send(
    session: Any,
    method: str,
    uri: str,
    *,
    data: dict[str, str] | None = None,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """One request to a credentials endpoint, its answer read up to 1 MiB; a transport failure is a
    CredentialsError naming the endpoint only."""
    import aiohttp

    try:
        async with session.request(
            method,
            uri,
            data=data,
            json=json_body,
            headers={"Accept": "application/json", **(headers or {})},
            allow_redirects=False,
        ) as response:
            body = b""
            async for piece in response.content.iter_any():  # a token answer is small
                body += piece
                if len(body) > MAX_ADC_SIZE:
                    break
            return response.status, body
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
        raise CredentialsError(f"cannot reach {uri}: {type(error).__name__}") from None
