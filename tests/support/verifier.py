"""Driving the verifier as a resource server would, and getting agents to a token fast."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.factories import Agent
from tests.support.registry import CIBA, AgentClient, Human, RegistryClient

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass
class Merchant:
    """A registered resource server calling the verifier."""

    http: httpx.AsyncClient
    resource: str
    client_id: str
    secret: str | None = None
    keys: Agent | None = None
    issuer: str = "http://localhost"

    def basic(self) -> dict[str, str]:
        raw = f"{self.client_id}:{self.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    def assertion(self, now: int, **claims: Any) -> str:
        assert self.keys is not None
        return self.keys.assertion(iat=now, exp=now + 60, aud=self.issuer, **claims)

    async def introspect(self, token: str, **extra: str) -> httpx.Response:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self.secret is not None and "client_secret" not in extra:
            headers |= self.basic()
        return await self.http.post(
            "/introspect", content=urlencode({"token": token, **extra}), headers=headers
        )

    async def verify(self, body: dict[str, Any], *, auth: bool = True) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if auth and self.secret is not None:
            headers |= self.basic()
        return await self.http.post("/verify", content=json.dumps(body), headers=headers)


async def merchant(
    registry: RegistryClient,
    http: httpx.AsyncClient,
    resource: str | None = None,
    types: dict[str, Any] | None = None,
    *,
    private_key_jwt: bool = False,
) -> Merchant:
    resource = resource or f"https://shop-{uuid.uuid4().hex[:8]}.example.com/api"
    body: dict[str, Any] = {
        "name": resource,
        "resource": resource,
        "authorization_details_types": types or {},
    }
    keys = None
    if private_key_jwt:
        keys = Agent()
        body |= {"token_endpoint_auth_method": "private_key_jwt"}
        body["jwks"] = {"keys": [keys.public.to_dict()]}
    created = await registry.admin("POST", "/resource-servers", body)
    assert created.status_code == 201, created.text
    data = created.json()
    if keys is not None:
        keys.client_id = data["client_id"]
    return Merchant(http, data["resource"], data["client_id"], data.get("client_secret"), keys)


def api(resource: str, actions: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    """A capability of the built-in ``api`` type at ``resource``."""
    return {"type": "api", "locations": [resource], "actions": actions or ["read"], **extra}


async def shop_with_grant(
    registry: RegistryClient,
    http: httpx.AsyncClient,
    *details: Callable[[str], dict[str, Any]],
    private_key_jwt: bool = False,
) -> tuple[Merchant, Human, AgentClient, str]:
    """A new resource server, a human, and an agent holding a token for ``details`` (each
    built from the shop's resource; default: read access)."""
    shop = await merchant(registry, http, private_key_jwt=private_key_jwt)
    alice = await registry.human()
    built = [d(shop.resource) for d in details] or [api(shop.resource)]
    agent, grant_id = await granted_agent(registry, alice, built)
    return shop, alice, agent, grant_id


async def is_inactive(shop: Merchant, token: str) -> bool:
    response = await shop.introspect(token)
    assert response.status_code == 200, response.text
    return bool(response.json() == {"active": False})


async def granted_agent(
    registry: RegistryClient,
    human: Human,
    details: list[dict[str, Any]],
    **params: Any,
) -> tuple[AgentClient, str]:
    """A registered agent holding an access token for ``details``; returns (agent, grant id)."""
    agent = await registry.agent(human)
    started = await agent.bc_authorize(details, **params)
    assert started.status_code == 200, started.text
    auth_req_id = started.json()["auth_req_id"]
    approved = await human.approve(auth_req_id)
    assert approved.status_code == 200, approved.text
    issued = await agent.token(CIBA, auth_req_id=auth_req_id)
    assert issued.status_code == 200, issued.text
    return agent, approved.json()["grant_id"]


def verify_body(
    agent: AgentClient,
    url: str,
    *,
    method: str = "POST",
    token: str | None = None,
    iat: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    token = token or agent.access_token
    assert token is not None
    proof = agent.keys.dpop(
        htm=method,
        htu=url,
        iat=int(agent.clock()) if iat is None else iat,
        access_token=token,
    )
    return {"token": token, "dpop": proof, "method": method, "url": url, **extra}


async def eventually(check: Any, within: float = 3.0) -> None:
    """Await ``check()`` until it returns true, failing after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def random_secret() -> str:
    return secrets.token_urlsafe(16)
