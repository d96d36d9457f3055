"""After Redis loses its data, captured registry requests cannot be replayed: whatever was
issued before the cache's data epoch counts as used (threat model, hardening rule 9). Each
test starts its own redis-server on a free port and flushes it."""

from __future__ import annotations

import json
from urllib.parse import urlencode

import httpx

from app.cache.redis import RedisCache
from tests.support.processes import RedisServer
from tests.support.registry import (
    ACCESS_TOKEN_TYPE,
    CIBA,
    EXCHANGE,
    JWT_TYPE,
    AgentClient,
    Human,
    RegistryClient,
)

SHOP = "https://cache-loss.example.com/api"
DETAILS = [{"type": "api", "locations": [SHOP], "actions": ["read"]}]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def lose_cache_data(registry: RegistryClient, redis_process: RedisServer) -> None:
    """FLUSHALL, a moment after the captured requests were made."""
    cache = RedisCache(redis_process.url)
    try:
        await cache.client.flushall()
    finally:
        await cache.close()
    registry.clock.advance(1)


async def world(registry: RegistryClient) -> tuple[Human, AgentClient]:
    await registry.ensure_resource_server(SHOP)
    human = await registry.human()
    return human, await registry.agent(human)


def refused(response: httpx.Response, status: int, code: str) -> None:
    assert (response.status_code, response.json()["error"]) == (status, code), response.text


async def test_a_captured_backchannel_request_is_not_replayed_after_a_flush(
    registry: RegistryClient, redis_process: RedisServer
) -> None:
    _, agent = await world(registry)
    body = urlencode(agent.form(authorization_details=json.dumps(DETAILS)))
    first = await registry.http.post("/bc-authorize", content=body, headers=FORM)
    assert first.status_code == 200, first.text
    await lose_cache_data(registry, redis_process)
    refused(
        await registry.http.post("/bc-authorize", content=body, headers=FORM),
        401,
        "invalid_client",
    )
    fresh = await agent.bc_authorize(DETAILS)  # a new assertion works as before
    assert fresh.status_code == 200, fresh.text


async def test_a_captured_token_request_is_not_replayed_after_a_flush(
    registry: RegistryClient, redis_process: RedisServer
) -> None:
    human, agent = await world(registry)
    auth_req_id = (await agent.bc_authorize(DETAILS)).json()["auth_req_id"]
    assert (await human.approve(auth_req_id)).status_code == 200
    assert (await agent.token(CIBA, auth_req_id=auth_req_id)).status_code == 200
    body = urlencode(agent.form(grant_type="refresh_token", refresh_token=agent.refresh_token))
    headers = {**FORM, "DPoP": agent.proof("/token")}
    await lose_cache_data(registry, redis_process)
    # Neither the assertion nor the proof was used, but both were issued before the loss.
    refused(
        await registry.http.post("/token", content=body, headers=headers), 401, "invalid_client"
    )
    fresh_assertion = urlencode(
        agent.form(grant_type="refresh_token", refresh_token=agent.refresh_token)
    )
    proof_only = await registry.http.post("/token", content=fresh_assertion, headers=headers)
    refused(proof_only, 400, "invalid_dpop_proof")
    assert "already been used" in proof_only.json()["error_description"]


async def test_a_captured_actor_token_is_not_replayed_after_a_flush(
    registry: RegistryClient, redis_process: RedisServer
) -> None:
    human, agent = await world(registry)
    auth_req_id = (await agent.bc_authorize(DETAILS, max_delegation_depth="1")).json()[
        "auth_req_id"
    ]
    assert (await human.approve(auth_req_id)).status_code == 200
    assert (await agent.token(CIBA, auth_req_id=auth_req_id)).status_code == 200
    actor = await registry.agent(human)
    now = int(registry.clock())
    actor_token = actor.keys.actor_token(iat=now, exp=now + 120, aud="http://localhost")
    params = {
        "subject_token": agent.access_token,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "actor_token": actor_token,
        "actor_token_type": JWT_TYPE,
    }
    subject = agent.access_token
    assert (await agent.token(EXCHANGE, **params)).status_code == 200
    await lose_cache_data(registry, redis_process)
    replayed = await agent.token(EXCHANGE, **{**params, "subject_token": subject})
    refused(replayed, 400, "invalid_request")
    assert "already been used" in replayed.json()["error_description"]


async def test_a_captured_revocation_is_not_replayed_after_a_flush(
    registry: RegistryClient, redis_process: RedisServer
) -> None:
    _, agent = await world(registry)
    body = urlencode(agent.form(token="not-a-token"))
    assert (await registry.http.post("/revoke", content=body, headers=FORM)).status_code == 200
    await lose_cache_data(registry, redis_process)
    refused(await registry.http.post("/revoke", content=body, headers=FORM), 401, "invalid_client")
