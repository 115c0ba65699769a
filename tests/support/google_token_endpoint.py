"""A scripted Google OAuth token endpoint for the tests: the application-default credential flows
claude-vcr supports, checked as Google checks them (a service account's JWT verified with google-auth's own
`jwt.decode` against the account's public key; workload identity federation's STS exchange and IAM
generateAccessToken field for field, with a CI's OIDC endpoint giving the subject token), each access token
it issues made acceptable to a ScriptedVertex. Also writes the ADC files that point at it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from aiohttp import web

from tests.support.vertex_upstream import ScriptedVertex

CLIENT_ID = "764086051850-vcrtest.apps.googleusercontent.com"
CLIENT_SECRET = "d-FL95Q19q7MQmFpd7hHD0Ty-vcr-test"
REFRESH_TOKEN = "1//0gVCRtestREFRESHtokenEXAMPLE-abcdefghijklmnop"
SERVICE_ACCOUNT = "vcr-ci@vcr-test-project.iam.gserviceaccount.com"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
SUBJECT_TOKEN = "eyJhbGciOiJSUzI1NiJ9.ci-oidc-subject-token-EXAMPLE.c2lnbmF0dXJl"
OIDC_REQUEST_TOKEN = "ci-oidc-request-token-EXAMPLE-0123456789"
AUDIENCE = "//iam.googleapis.com/projects/123456789/locations/global/workloadIdentityPools/ci/providers/github"
SUBJECT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
SECRETS = (CLIENT_SECRET, REFRESH_TOKEN, "BEGIN PRIVATE KEY", "ya29.issued", "ya29.sts", SUBJECT_TOKEN, OIDC_REQUEST_TOKEN)


@cache
def service_account_key() -> tuple[str, str]:
    """(private PEM in PKCS#8, public PEM) of an RSA key made once per test run."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private, public


def write_adc(folder: Path, kind: str, token_uri: str) -> Path:
    """An application-default credentials file of `kind` whose token_uri is the scripted endpoint."""
    if kind == "authorized_user":
        info = {
            "type": "authorized_user",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH_TOKEN,
            "token_uri": token_uri,
        }
    else:
        info = {
            "type": "service_account",
            "project_id": "vcr-test-project",
            "private_key_id": "0123456789abcdef0123456789abcdef01234567",
            "private_key": service_account_key()[0],
            "client_email": SERVICE_ACCOUNT,
            "client_id": "104857600000000000000",
            "token_uri": token_uri,
        }
    if kind.startswith("external_account"):
        base = token_uri.rsplit("/", 1)[0]
        if kind == "external_account_file":
            subject = folder / "oidc-token.txt"
            subject.write_text(SUBJECT_TOKEN, encoding="utf-8")
            source: dict = {"file": str(subject)}
        else:  # as google-github-actions/auth writes it: the CI's OIDC URL, its JSON's `value`
            source = {
                "url": f"{base}/oidc?audience=ci",
                "headers": {"Authorization": f"bearer {OIDC_REQUEST_TOKEN}"},
                "format": {"type": "json", "subject_token_field_name": "value"},
            }
        info = {
            "type": "external_account",
            "audience": AUDIENCE,
            "subject_token_type": SUBJECT_TOKEN_TYPE,
            "token_url": f"{base}/sts",
            "credential_source": source,
        }
        if kind == "external_account_url":
            info["service_account_impersonation_url"] = f"{base}/iam/{SERVICE_ACCOUNT}:generateAccessToken"
    path = folder / f"adc-{kind}.json"
    path.write_text(json.dumps(info), encoding="utf-8")
    return path


@dataclass
class ScriptedGoogleToken:
    """POST /token: refresh-token and JWT-bearer grants; run it with `loopback.serving()`."""

    vertex: ScriptedVertex | None = None
    expires_in: float = 3600
    impersonation: bool = False
    """Whether the ADC file in use names a service account to impersonate (STS then grants the IAM scope)."""
    issued: list[str] = field(default_factory=list)
    grants: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/token", self.handle)
        app.router.add_post("/sts", self.exchange)
        app.router.add_post("/iam/{account}", self.impersonate)
        app.router.add_get("/oidc", self.oidc)
        return app

    def _issue(self, prefix: str) -> str:
        token = f"ya29.{prefix}-{len(self.issued) + 1}-vcrTESTaccessTOKEN"
        self.issued.append(token)
        if self.vertex is not None:
            self.vertex.tokens.add(token)
        return token

    async def oidc(self, request: web.Request) -> web.Response:
        """A CI's OIDC token endpoint: the subject token for whoever holds the request token."""
        if request.headers.get("Authorization") != f"bearer {OIDC_REQUEST_TOKEN}":
            return web.json_response({"message": "bad request token"}, status=401)
        return web.json_response({"count": 1, "value": SUBJECT_TOKEN})

    async def exchange(self, request: web.Request) -> web.Response:
        """STS token exchange (RFC 8693): exactly the fields google-auth sends for an identity pool."""
        form = dict(await request.post())
        self.grants.append(str(form.get("grant_type")))
        expected = {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "audience": AUDIENCE,
            "scope": "https://www.googleapis.com/auth/iam" if self.impersonation else SCOPE,
            "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "subject_token": SUBJECT_TOKEN,
            "subject_token_type": SUBJECT_TOKEN_TYPE,
        }
        if form != expected:
            return self._refuse(f"unexpected exchange fields {sorted(set(form) ^ set(expected))}")
        token = self._issue("sts")
        return web.json_response(
            {"access_token": token, "issued_token_type": expected["requested_token_type"],
             "token_type": "Bearer", "expires_in": self.expires_in}  # fmt: skip
        )

    async def impersonate(self, request: web.Request) -> web.Response:
        """IAM generateAccessToken for the service account, with an STS token as the caller's."""
        import datetime

        self.grants.append("generateAccessToken")
        caller = request.headers.get("Authorization", "")
        body = await request.json()
        if request.match_info["account"] != f"{SERVICE_ACCOUNT}:generateAccessToken":
            return self._refuse("unknown service account")
        if not caller.startswith("Bearer ya29.sts-") or caller.removeprefix("Bearer ") not in self.issued:
            return self._refuse("the caller is not an STS token")
        if body.get("scope") != [SCOPE]:
            return self._refuse("wrong scope")
        token = self._issue("issued")
        expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=self.expires_in)
        return web.json_response({"accessToken": token, "expireTime": expires.strftime("%Y-%m-%dT%H:%M:%SZ")})

    def _refuse(self, why: str) -> web.Response:
        self.refused.append(why)
        return web.json_response({"error": "invalid_grant", "error_description": why}, status=400)

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        grant = str(form.get("grant_type"))
        self.grants.append(grant)
        if grant == "refresh_token":
            given = (form.get("client_id"), form.get("client_secret"), form.get("refresh_token"))
            if given != (CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN):
                return self._refuse("Bad client or refresh token")
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            from google.auth import jwt

            try:
                claims = jwt.decode(
                    str(form.get("assertion")), certs=service_account_key()[1], audience=str(request.url)
                )
            except ValueError as error:
                return self._refuse(f"Invalid JWT: {error}")
            if claims.get("iss") != SERVICE_ACCOUNT or claims.get("scope") != SCOPE:
                return self._refuse("Invalid JWT claims")
        else:
            return self._refuse(f"Unsupported grant_type {grant}")
        token = self._issue("issued")
        return web.json_response({"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"})
