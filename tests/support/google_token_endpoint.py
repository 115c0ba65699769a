"""A scripted Google OAuth token endpoint for the tests: the two application-default credential flows
claude-vcr supports, checked as Google checks them (a service account's JWT verified with google-auth's own
`jwt.decode` against the account's public key), each access token it issues made acceptable to a
ScriptedVertex. Also writes the ADC files (`authorized_user`, `service_account`) that point at it.
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
SECRETS = (CLIENT_SECRET, REFRESH_TOKEN, "BEGIN PRIVATE KEY", "ya29.issued")


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
    path = folder / f"adc-{kind}.json"
    path.write_text(json.dumps(info), encoding="utf-8")
    return path


@dataclass
class ScriptedGoogleToken:
    """POST /token: refresh-token and JWT-bearer grants; run it with `loopback.serving()`."""

    vertex: ScriptedVertex | None = None
    expires_in: float = 3600
    issued: list[str] = field(default_factory=list)
    grants: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/token", self.handle)
        return app

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
        token = f"ya29.issued-{len(self.issued) + 1}-vcrTESTaccessTOKEN"
        self.issued.append(token)
        if self.vertex is not None:
            self.vertex.tokens.add(token)
        return web.json_response({"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"})
