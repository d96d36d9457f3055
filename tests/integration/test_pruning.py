"""The worker deletes what can no longer be used (expired challenges, ended sessions, grant
requests that expired unanswered), a bounded number per run, and never evidence
(threat model, hardening rule 13e)."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from app.registry.services.pruning import CHALLENGE_GRACE, REQUEST_RETENTION, prune_expired
from app.store.models import BrowserSession, Challenge, GrantRequest
from app.worker.process import Worker
from tests.support.databases import own_database_fixtures
from tests.support.registry import RegistryClient

SHOP = "https://pruning.example.com/api"


database_url, verifier_database_url = own_database_fixtures("pruning")


DETAILS = json.dumps([{"type": "api", "locations": [SHOP], "actions": ["read"]}])


async def count(registry: RegistryClient, model: type, *where: object) -> int:
    assert registry.app is not None
    async with registry.app.state.registry.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


async def test_unauthenticated_challenges_are_pruned_in_bounded_runs(
    registry: RegistryClient,
) -> None:
    assert registry.app is not None
    state = registry.app.state.registry
    anonymous = registry.new_browser()
    for _ in range(25):  # login/options needs no account and stores a row per call
        response = await anonymous.post("/ui/api/login/options", json={})
        assert response.status_code == 200
    before = await count(registry, Challenge)
    registry.clock.advance(300 + CHALLENGE_GRACE + 1)
    live = await anonymous.post("/ui/api/login/options", json={})  # issued now: stays
    assert live.status_code == 200
    now = int(registry.clock())
    runs = [await prune_expired(state.sessions, now, batch=10) for _ in range(4)]
    removed = [run["webauthn_challenges"] for run in runs]
    assert removed[:2] == [10, 10]
    assert sum(removed) == before
    assert removed[-1] == 0
    assert await count(registry, Challenge) == 1


async def test_ended_sessions_and_unanswered_requests_go_and_evidence_stays(
    registry: RegistryClient,
) -> None:
    assert registry.app is not None
    state = registry.app.state.registry
    await registry.ensure_resource_server(SHOP)
    alice = await registry.human()
    agent = await registry.agent(alice)
    unanswered = (await agent.bc_authorize(json.loads(DETAILS))).json()["auth_req_id"]
    approved = (await agent.bc_authorize(json.loads(DETAILS))).json()["auth_req_id"]
    denied = (await agent.bc_authorize(json.loads(DETAILS))).json()["auth_req_id"]
    assert (await alice.approve(approved)).status_code == 200
    assert (await alice.api("POST", f"/requests/{denied}/deny")).status_code == 200
    bob = await registry.human("Bob")
    assert (await bob.api("POST", "/logout")).status_code == 200
    registry.clock.advance(1800 + REQUEST_RETENTION + 1)

    worker = Worker(state.cache, state.engine, state.sessions, clock=registry.clock)
    await worker.housekeeping()

    kept = await count(
        registry, GrantRequest, GrantRequest.auth_req_id.in_([unanswered, approved, denied])
    )
    assert kept == 2  # the approved one (a grant) and the denied one (a decision)
    assert await count(registry, GrantRequest, GrantRequest.auth_req_id == unanswered) == 0
    assert await count(registry, BrowserSession, BrowserSession.ended_at.is_not(None)) == 0
    assert await count(registry, BrowserSession) == 0  # alice's timed out as well
    polled = await agent.token("urn:openid:params:grant-type:ciba", auth_req_id=unanswered)
    assert polled.status_code == 400
    assert polled.json()["error"] == "invalid_grant"
