"""The whole flow over HTTP against PostgreSQL and Redis."""

from __future__ import annotations

import json

from app.core.jwk import b64url_decode
from tests.support.registry import ACCESS_TOKEN_TYPE, CIBA, EXCHANGE, JWT_TYPE, RegistryClient

SHOP = "https://shop.example.com/api"
BANK = "https://bank.example.com"
PAYMENT = "https://shop.example.com/rar/payment"


def claims(token: str) -> dict:
    return json.loads(b64url_decode(token.split(".")[1]))


async def test_invite_passkey_register_approve_token_refresh_exchange_delegate_revoke(
    registry: RegistryClient,
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "actions": {"type": "array", "items": {"enum": ["pay"]}},
            "payee": {"type": "string"},
        },
    }
    await registry.resource_server(SHOP, {PAYMENT: schema})
    await registry.resource_server(BANK)
    alice = await registry.human("Alice", attestation="packed")
    assert (await alice.login()).status_code == 200

    agent_a = await registry.agent(alice)
    agent_b = await registry.agent(alice)
    details = [
        {
            "type": PAYMENT,
            "locations": [SHOP],
            "actions": ["pay"],
            "payee": "acme",
            "limits": {"max_amount": {"value": "50.00", "currency": "EUR"}},
        },
        {"type": "api", "locations": [BANK], "actions": ["read"]},
    ]
    started = await agent_a.bc_authorize(
        details, binding_message="Order 42", max_delegation_depth="1"
    )
    assert started.status_code == 200, started.text
    auth_req_id = started.json()["auth_req_id"]
    assert started.json()["interval"] == 5

    pending = await agent_a.token(CIBA, auth_req_id=auth_req_id)
    assert (pending.status_code, pending.json()["error"]) == (400, "authorization_pending")

    listed = (await alice.api("GET", "/requests")).json()["requests"]
    shown = next(r for r in listed if r["auth_req_id"] == auth_req_id)
    assert shown["summary"][0].startswith("Make payments of up to 50.00 EUR each")
    assert shown["binding_message"] == "Order 42"

    approved = await alice.approve(auth_req_id)
    assert approved.status_code == 200, approved.text
    grant_id = approved.json()["grant_id"]

    registry.clock.advance(6)
    issued = await agent_a.token(CIBA, auth_req_id=auth_req_id)
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert body["token_type"] == "DPoP"
    assert issued.headers["cache-control"] == "no-store"
    at = claims(body["access_token"])
    assert (at["sub"], at["aud"], at["client_id"]) == (alice.id, SHOP, agent_a.client_id)
    assert at["act"] == {"sub": agent_a.client_id}
    assert at["cnf"]["jkt"] == agent_a.keys.jkt
    assert at["grant_id"] == grant_id

    again = await agent_a.token(CIBA, auth_req_id=auth_req_id)
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")

    refreshed = await agent_a.token(
        "refresh_token", refresh_token=agent_a.refresh_token, resource=BANK
    )
    assert refreshed.status_code == 200, refreshed.text
    assert claims(refreshed.json()["access_token"])["aud"] == BANK

    reaudienced = await agent_a.token(
        EXCHANGE,
        subject_token=agent_a.access_token,
        subject_token_type=ACCESS_TOKEN_TYPE,
        resource=SHOP,
    )
    assert reaudienced.status_code == 200, reaudienced.text
    assert reaudienced.json()["issued_token_type"] == ACCESS_TOKEN_TYPE
    assert "refresh_token" not in reaudienced.json()
    shop_token = reaudienced.json()["access_token"]

    now = int(registry.clock())
    actor_token = agent_b.keys.actor_token(iat=now, exp=now + 60, aud="http://localhost")
    delegated = await agent_a.token(
        EXCHANGE,
        subject_token=shop_token,
        subject_token_type=ACCESS_TOKEN_TYPE,
        actor_token=actor_token,
        actor_token_type=JWT_TYPE,
    )
    assert delegated.status_code == 200, delegated.text
    sub_claims = claims(delegated.json()["access_token"])
    assert sub_claims["act"] == {"sub": agent_b.client_id, "act": {"sub": agent_a.client_id}}
    assert sub_claims["client_id"] == agent_b.client_id
    assert sub_claims["cnf"]["jkt"] == agent_b.keys.jkt
    assert sub_claims["sub"] == alice.id

    revoked = await alice.api("POST", f"/grants/{grant_id}/revoke")
    assert revoked.status_code == 200, revoked.text
    after = await agent_a.token("refresh_token", refresh_token=agent_a.refresh_token)
    assert (after.status_code, after.json()["error"]) == (400, "invalid_grant")

    report = (await registry.admin("GET", "/audit/verify")).json()
    assert report["ok"] is True, report
    metrics = (await registry.http.get("/metrics")).text
    assert 'agentauth_tokens_issued_total{grant_type="token_exchange"}' in metrics
    assert 'agentauth_revocations_total{kind="grant"}' in metrics
