"""A standard OAuth client of the authorization-code grant: open or token-based
registration, PKCE, an optional DPoP key of its own, and the human's consent through the
approval API."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from tests.factories import Agent
from tests.support.clock import Clock
from tests.support.registry import ISSUER, Human

REDIRECT_URI = "http://127.0.0.1:53682/callback"


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def query(location: str) -> dict[str, str]:
    """The parameters of a redirect's query, each sent once."""
    values = parse_qs(urlsplit(location).query)
    assert all(len(v) == 1 for v in values.values()), values
    return {k: v[0] for k, v in values.items()}


@dataclass
class CodeClient:
    """A public (or secret-holding) client; ``dpop`` is its own DPoP key pair, never
    registered anywhere."""

    http: httpx.AsyncClient
    clock: Clock
    client_id: str = ""
    client_secret: str | None = None
    redirect_uri: str = REDIRECT_URI
    dpop: Agent = field(default_factory=Agent)
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    access_token: str | None = None
    refresh_token: str | None = None

    async def register(self, token: str | None = None, **metadata: Any) -> httpx.Response:
        body = {
            "client_name": "Standard client",
            "token_endpoint_auth_method": "none",
            "redirect_uris": [self.redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            **metadata,
        }
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = await self.http.post("/register", content=json.dumps(body), headers=headers)
        if response.status_code == 201:
            self.client_id = response.json()["client_id"]
            self.client_secret = response.json().get("client_secret")
        return response

    def authorization_params(self, **params: Any) -> dict[str, Any]:
        return {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "state": "st-" + secrets.token_urlsafe(8),
            "code_challenge": s256(self.verifier),
            "code_challenge_method": "S256",
            **params,
        }

    async def authorize(self, human: Human, **params: Any) -> httpx.Response:
        """The browser's GET /authorize (not following the redirect)."""
        pairs = [
            (k, v)
            for k, value in self.authorization_params(**params).items()
            for v in (value if isinstance(value, list) else [value])
            if v is not None
        ]
        return await human.browser.get(f"/authorize?{urlencode(pairs)}")

    async def consent(self, human: Human, **params: Any) -> tuple[str, dict[str, str]]:
        """Authorize, let the human approve with the passkey; ``(auth_req_id, redirect
        parameters)``."""
        asked = await self.authorize(human, **params)
        assert asked.status_code == 303, asked.text
        location = asked.headers["location"]
        assert location.startswith("/ui/requests/azr_"), location
        auth_req_id = location.rsplit("/", 1)[1]
        approved = await human.approve(auth_req_id)
        assert approved.status_code == 200, approved.text
        redirect_to = approved.json()["redirect_to"]
        assert redirect_to.startswith(self.redirect_uri + "?"), redirect_to
        return auth_req_id, query(redirect_to)

    def proof(self, path: str = "/token", key: Agent | None = None, **claims: Any) -> str:
        return (key or self.dpop).dpop(
            htm="POST", htu=ISSUER + path, iat=int(self.clock()), **claims
        )

    async def token(
        self, *, dpop: bool | str = True, headers: dict[str, str] | None = None, **params: Any
    ) -> httpx.Response:
        sent = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        if dpop is True:
            sent["DPoP"] = self.proof()
        elif isinstance(dpop, str):
            sent["DPoP"] = dpop
        form = {"client_id": self.client_id, **params}
        pairs = [
            (k, v)
            for k, value in form.items()
            for v in (value if isinstance(value, list) else [value])
            if v is not None
        ]
        response = await self.http.post("/token", content=urlencode(pairs), headers=sent)
        if response.status_code == 200:
            self.access_token = response.json()["access_token"]
            self.refresh_token = response.json().get("refresh_token", self.refresh_token)
        return response

    async def redeem(self, code: str, **params: Any) -> httpx.Response:
        """The token request for ``code``; ``params`` override or add parameters."""
        form = {"redirect_uri": self.redirect_uri, "code_verifier": self.verifier, **params}
        return await self.token(grant_type="authorization_code", code=code, **form)
