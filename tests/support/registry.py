"""Drive a registry over HTTP the way humans, agents and operators do."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI

from tests.factories import Agent
from tests.support.clock import Clock
from tests.support.webauthn import SoftwareAuthenticator

ISSUER = "http://localhost"
CIBA = "urn:openid:params:grant-type:ciba"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class Human:
    """A person with a browser (own cookie jar) and a software passkey."""

    id: str
    browser: httpx.AsyncClient
    authenticator: SoftwareAuthenticator = field(default_factory=SoftwareAuthenticator)
    csrf: str = ""
    origin: str = ISSUER  # what the browser's address bar shows (WebAuthn origin)

    async def api(
        self, method: str, path: str, body: Any = None, *, csrf: bool = True
    ) -> httpx.Response:
        headers = {"X-CSRF-Token": self.csrf} if csrf and self.csrf else {}
        return await self.browser.request(method, f"/ui/api{path}", json=body, headers=headers)

    async def enrol(self, invite_token: str, attestation: str = "none") -> None:
        """Create a passkey from an invite; the browser is logged in afterwards."""
        body = {"invite_token": invite_token}
        options = await self.api("POST", "/passkeys/register/options", body)
        assert options.status_code == 200, options.text
        credential = self.authenticator.create(
            options.json(),
            origin=self.origin,
            attestation=attestation,  # type: ignore[arg-type]
        )
        verified = await self.api(
            "POST", "/passkeys/register/verify", {**body, "credential": credential}
        )
        assert verified.status_code == 200, verified.text
        self.id = verified.json()["human_id"]
        await self.refresh_session()

    async def refresh_session(self) -> None:
        response = await self.api("GET", "/session")
        assert response.status_code == 200, response.text
        self.csrf = response.json()["csrf_token"]

    async def login(self) -> httpx.Response:
        options = (await self.api("POST", "/login/options", {})).json()
        credential = self.authenticator.get(options, origin=self.origin)
        response = await self.api("POST", "/login/verify", {"credential": credential})
        if response.status_code == 200:
            await self.refresh_session()
        return response

    async def approve(self, auth_req_id: str, **get_options: Any) -> httpx.Response:
        options = await self.api("POST", f"/requests/{auth_req_id}/approve/options")
        assert options.status_code == 200, options.text
        credential = self.authenticator.get(options.json(), origin=self.origin, **get_options)
        return await self.api(
            "POST", f"/requests/{auth_req_id}/approve", {"credential": credential}
        )


@dataclass
class AgentClient:
    """An agent: its keys, its client assertions and DPoP proofs, its tokens."""

    http: httpx.AsyncClient
    clock: Clock
    keys: Agent = field(default_factory=Agent)
    access_token: str | None = None
    refresh_token: str | None = None
    issuer: str = ISSUER  # the registry's issuer: audience of assertions, base of htu

    @property
    def client_id(self) -> str:
        return self.keys.client_id

    def assertion(self) -> str:
        now = int(self.clock())
        return self.keys.assertion(iat=now, exp=now + 60, aud=self.issuer)

    def proof(self, path: str, method: str = "POST", **claims: Any) -> str:
        return self.keys.dpop(htm=method, htu=self.issuer + path, iat=int(self.clock()), **claims)

    def form(self, **params: Any) -> dict[str, Any]:
        return {
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(),
            **params,
        }

    async def post(
        self,
        path: str,
        params: dict[str, Any],
        *,
        dpop: str | bool | None = True,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = dict(headers or {})
        if dpop is True:
            sent["DPoP"] = self.proof(path)
        elif isinstance(dpop, str):
            sent["DPoP"] = dpop
        sent["Content-Type"] = "application/x-www-form-urlencoded"
        pairs = [
            (k, v)
            for k, value in params.items()
            for v in (value if isinstance(value, list) else [value])
            if v is not None
        ]
        return await self.http.post(path, content=urlencode(pairs), headers=sent)

    async def register(self, enrollment_token: str, **metadata: Any) -> httpx.Response:
        body = {
            "client_name": "Test agent",
            "jwks": {"keys": [self.keys.public.to_dict()]},
            "software_id": "tests",
            "software_version": "model-1",
            **metadata,
        }
        response = await self.http.post(
            "/register",
            content=json.dumps(body),
            headers={
                "Authorization": f"Bearer {enrollment_token}",
                "Content-Type": "application/json",
            },
        )
        if response.status_code == 201:
            self.keys.client_id = response.json()["client_id"]
        return response

    async def bc_authorize(self, details: list[dict[str, Any]], **params: Any) -> httpx.Response:
        form = self.form(authorization_details=json.dumps(details), **params)
        return await self.post("/bc-authorize", form, dpop=None)

    async def token(self, grant_type: str, **params: Any) -> httpx.Response:
        response = await self.post("/token", self.form(grant_type=grant_type, **params))
        if response.status_code == 200:
            body = response.json()
            self.access_token = body["access_token"]
            self.refresh_token = body.get("refresh_token", self.refresh_token)
        return response


@dataclass
class RegistryClient:
    http: httpx.AsyncClient
    app: FastAPI | None
    clock: Clock
    admin_token: str
    browsers: list[httpx.AsyncClient] = field(default_factory=list)
    base_url: str = ISSUER  # where a registry process listens, when there is no ``app``

    async def admin(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return await self.http.request(
            method,
            f"/admin{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.admin_token}"},
        )

    def new_browser(self) -> httpx.AsyncClient:
        if self.app is None:
            browser = httpx.AsyncClient(base_url=self.base_url)
        else:
            transport = httpx.ASGITransport(app=self.app)
            browser = httpx.AsyncClient(transport=transport, base_url=ISSUER)
        self.browsers.append(browser)
        return browser

    async def close(self) -> None:
        for browser in self.browsers:
            await browser.aclose()

    async def human(self, name: str = "Alice", attestation: str = "none") -> Human:
        """Invite a human and enrol a passkey; the browser is logged in afterwards."""
        created = await self.admin("POST", "/humans", {"display_name": name})
        assert created.status_code == 201, created.text
        human = Human(id=created.json()["id"], browser=self.new_browser())
        await human.enrol(created.json()["invite_token"], attestation)
        return human

    async def audit_events(self) -> list[dict[str, Any]]:
        """The whole audit log, page by page."""
        events: list[dict[str, Any]] = []
        while True:
            after = events[-1]["seq"] if events else 0
            page = (await self.admin("GET", f"/audit?limit=1000&after={after}")).json()["events"]
            events += page
            if len(page) < 1000:
                return events

    async def passkey_registration(self, credential_id: bytes) -> tuple[Human, dict[str, Any]]:
        """A newly invited human and the body that would register a passkey with
        ``credential_id`` (for the unique-credential rule)."""
        created = (await self.admin("POST", "/humans", {"display_name": "Eve"})).json()
        human = Human(id=created["id"], browser=self.new_browser())
        body = {"invite_token": created["invite_token"]}
        page = await human.api("POST", "/passkeys/register/options", body)
        credential = human.authenticator.create(
            page.json(), origin=human.origin, credential_id=credential_id
        )
        return human, {**body, "credential": credential}

    async def resource_server(
        self, resource: str, types: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        body = {"name": resource, "resource": resource, "authorization_details_types": types or {}}
        created = await self.admin("POST", "/resource-servers", body)
        assert created.status_code == 201, created.text
        return dict(created.json())

    async def ensure_resource_server(
        self, resource: str, types: dict[str, Any] | None = None
    ) -> None:
        """Register ``resource`` unless an earlier test on the same database already did."""
        listed = (await self.admin("GET", "/resource-servers")).json()["resource_servers"]
        if resource not in {server["resource"] for server in listed}:
            await self.resource_server(resource, types)

    async def agent(self, owner: Human, **metadata: Any) -> AgentClient:
        token = await owner.api("POST", "/enrollment-tokens", {"expires_in": 600})
        assert token.status_code == 201, token.text
        agent = AgentClient(http=self.http, clock=self.clock)
        registered = await agent.register(token.json()["token"], **metadata)
        assert registered.status_code == 201, registered.text
        return agent
