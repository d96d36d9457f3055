"""The agent SDK against a real registry: keys on disk, registration, a grant approved by a
human, refresh, exchange, delegation, DPoP signing with nonce retry, revocation."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.core.dpop import NonceSource, verify_proof
from app.core.errors import UseDPoPNonce
from app.core.jwk import b64url_decode
from app.sdk import AgentAuthError, AgentClient, AgentKey, DPoPAuth
from tests.support.registry import ISSUER, RegistryClient

SHOP = "https://shop.sdk.example/api"
BANK = "https://bank.sdk.example"
DETAILS = [
    {"type": "api", "locations": [SHOP], "actions": ["read"]},
    {"type": "api", "locations": [BANK], "actions": ["read"]},
]


def claims(token: str) -> dict[str, Any]:
    return dict(json.loads(b64url_decode(token.split(".")[1])))


async def new_agent(registry: RegistryClient, human: Any, key: AgentKey) -> AgentClient:
    enrollment = await human.api("POST", "/enrollment-tokens", {"expires_in": 600})
    agent = AgentClient(ISSUER, key, http=registry.http)
    await agent.register(enrollment.json()["token"], client_name="SDK agent", software_id="sdk")
    return agent


async def test_key_file_is_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "agent-key.json"
    first = AgentKey.load_or_create(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert AgentKey.load_or_create(path).jkt == first.jkt


async def test_register_grant_refresh_exchange_delegate_revoke(
    registry: RegistryClient, tmp_path: Path
) -> None:
    for resource in (SHOP, BANK):
        await registry.ensure_resource_server(resource)
    alice = await registry.human()
    agent = await new_agent(registry, alice, AgentKey.load_or_create(tmp_path / "a.json"))
    assert agent.client_id is not None
    assert agent.client_id.startswith("agt_")

    request = await agent.request_grant(DETAILS, binding_message="SDK", max_delegation_depth=1)
    assert request.approval_hint.endswith(f"/ui/requests/{request.auth_req_id}")
    assert (await alice.approve(request.auth_req_id)).status_code == 200
    tokens = await request.wait_for_approval()
    assert claims(tokens.access_token)["cnf"]["jkt"] == agent.key.jkt
    assert tokens.refresh_token

    refreshed = await agent.refresh(resource=BANK)
    assert claims(refreshed.access_token)["aud"] == BANK
    assert refreshed.refresh_token != tokens.refresh_token

    shop_token = await agent.exchange(SHOP)
    assert claims(shop_token)["aud"] == SHOP

    helper = await new_agent(registry, alice, AgentKey.generate())
    delegated = await agent.delegate_to(helper, SHOP)
    assert claims(delegated)["act"] == {"sub": helper.client_id, "act": {"sub": agent.client_id}}
    assert claims(delegated)["cnf"]["jkt"] == helper.key.jkt

    await agent.revoke()
    with pytest.raises(AgentAuthError) as refused:
        await agent.refresh()
    assert refused.value.error == "invalid_grant"


async def approved_agent(registry: RegistryClient) -> AgentClient:
    for resource in (SHOP, BANK):
        await registry.ensure_resource_server(resource)
    alice = await registry.human()
    agent = await new_agent(registry, alice, AgentKey.generate())
    request = await agent.request_grant(DETAILS)
    assert (await alice.approve(request.auth_req_id)).status_code == 200
    await request.wait_for_approval()
    return agent


async def test_parallel_callers_share_one_refresh(registry: RegistryClient) -> None:
    agent = await approved_agent(registry)
    assert agent.tokens is not None
    first_refresh_token = agent.tokens.refresh_token
    agent.tokens.expires_at = time.time()  # about to expire: every caller wants a refresh
    tokens = await asyncio.gather(*(agent.exchange(r) for r in (SHOP, BANK, SHOP, BANK)))
    assert [claims(t)["aud"] for t in tokens] == [SHOP, BANK, SHOP, BANK]
    assert agent.tokens.refresh_token != first_refresh_token
    # One refresh token was used once, so the grant is alive: reuse would have revoked it.
    assert (await agent.refresh()).access_token


async def test_auth_sends_a_fresh_token_to_resource_servers(registry: RegistryClient) -> None:
    agent = await approved_agent(registry)
    assert agent.tokens is not None
    sent: list[str] = []

    async def orders(request: Request) -> JSONResponse:
        sent.append(request.headers["authorization"].removeprefix("DPoP "))
        return JSONResponse({"ok": True})

    shop = Starlette(routes=[Route("/api/orders", orders, methods=["POST"])])
    transport = httpx.ASGITransport(app=shop)
    async with httpx.AsyncClient(transport=transport, base_url="https://shop.example") as http:
        assert (await http.post("/api/orders", auth=agent.auth())).status_code == 200
        agent.tokens.expires_at = time.time()
        expiring = agent.tokens.access_token
        assert (await http.post("/api/orders", auth=agent.auth())).status_code == 200
    assert sent[0] == expiring
    assert sent[1] == agent.tokens.access_token != expiring


async def test_a_denied_request_raises_access_denied(registry: RegistryClient) -> None:
    await registry.ensure_resource_server(SHOP)
    alice = await registry.human()
    agent = await new_agent(registry, alice, AgentKey.generate())
    request = await agent.request_grant(DETAILS[:1])
    denied = await alice.api("POST", f"/requests/{request.auth_req_id}/deny")
    assert denied.status_code == 200
    with pytest.raises(AgentAuthError) as refused:
        await request.wait_for_approval()
    assert (refused.value.status, refused.value.error) == (400, "access_denied")


async def test_dpop_auth_signs_every_request_and_retries_once_on_a_nonce() -> None:
    key, token = AgentKey.generate(), "access-token-value"
    nonces = NonceSource(b"n" * 32, realm="merchant")
    seen: list[dict[str, Any]] = []

    async def orders(request: Request) -> JSONResponse:
        now = int(time.time())
        seen.append(json.loads(b64url_decode(request.headers["dpop"].split(".")[1])))
        try:
            verify_proof(
                request.headers.getlist("dpop"),
                method=request.method,
                url=str(request.url),
                now=now,
                access_token=request.headers["authorization"].removeprefix("DPoP "),
                bound_jkt=key.jkt,
                nonces=nonces,
                require_nonce=True,
            )
        except UseDPoPNonce:
            challenge = {"WWW-Authenticate": 'DPoP error="use_dpop_nonce"'}
            headers = {**challenge, "DPoP-Nonce": nonces.issue(now)}
            return JSONResponse({"error": "use_dpop_nonce"}, status_code=401, headers=headers)
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/api/orders", orders, methods=["POST"])])
    auth = DPoPAuth(key, token)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://shop.example") as http:
        first = await http.post("/api/orders?page=2", json={}, auth=auth)
        assert first.status_code == 200, first.text
        assert len(seen) == 2  # challenged once, then retried with the nonce
        second = await http.post("/api/orders", json={}, auth=auth)
        assert second.status_code == 200
        assert len(seen) == 3  # the remembered nonce is sent right away
    assert len({proof["jti"] for proof in seen}) == 3  # never the same jti twice
    assert all(proof["htu"] == "https://shop.example/api/orders" for proof in seen)
    assert "nonce" not in seen[0]
    assert "nonce" in seen[1]


async def test_dpop_auth_keeps_the_nonce_a_server_rotates_on_any_answer() -> None:
    key, issued, seen = AgentKey.generate(), iter(["n1", "n2", "n3"]), []
    current = {"nonce": ""}

    async def orders(request: Request) -> JSONResponse:
        proof = json.loads(b64url_decode(request.headers["dpop"].split(".")[1]))
        seen.append(proof.get("nonce"))
        accepted = proof.get("nonce") == current["nonce"]
        current["nonce"] = next(issued)  # every answer carries the next nonce
        headers = {"DPoP-Nonce": current["nonce"]}
        if not accepted:
            headers["WWW-Authenticate"] = 'DPoP error="use_dpop_nonce"'
            return JSONResponse({"error": "use_dpop_nonce"}, status_code=401, headers=headers)
        return JSONResponse({"ok": True}, headers=headers)

    app = Starlette(routes=[Route("/api/orders", orders, methods=["POST"])])
    auth = DPoPAuth(key, "token")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://shop.example") as http:
        assert (await http.post("/api/orders", auth=auth)).status_code == 200  # n1 on retry
        assert (await http.post("/api/orders", auth=auth)).status_code == 200  # n2 right away
    assert seen == [None, "n1", "n2"]


def test_oauth_errors_keep_their_code() -> None:
    response = httpx.Response(400, json={"error": "slow_down", "error_description": "wait"})
    error = AgentAuthError.from_response(response)
    assert (error.status, error.error, error.description) == (400, "slow_down", "wait")


async def test_the_client_answers_the_registry_nonce_challenge(settings: Any, clock: Any) -> None:
    from app.registry.app import create_app
    from tests.integration.conftest import ADMIN_TOKEN

    app = create_app(settings.model_copy(update={"dpop_require_nonce": True}), clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            registry = RegistryClient(http=http, app=app, clock=clock, admin_token=ADMIN_TOKEN)
            await registry.ensure_resource_server(SHOP)
            alice = await registry.human()
            agent = await new_agent(registry, alice, AgentKey.generate())
            request = await agent.request_grant(DETAILS[:1])
            assert (await alice.approve(request.auth_req_id)).status_code == 200
            tokens = await request.wait_for_approval()  # 400 use_dpop_nonce, then a retry
            assert claims(tokens.access_token)["cnf"]["jkt"] == agent.key.jkt
            assert agent._as_auth.nonces  # remembered for the next call
            refreshed = await agent.refresh()  # sends the nonce right away
            assert refreshed.access_token != tokens.access_token
            await registry.close()
