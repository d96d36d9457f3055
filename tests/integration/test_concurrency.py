"""Single-use rules under real parallel requests (asyncio.gather over one PostgreSQL pool)."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter

from sqlalchemy import func, select

from app.store.models import Agent as AgentRow
from tests.support.registry import ACCESS_TOKEN_TYPE, CIBA, EXCHANGE, AgentClient, RegistryClient

SHOP = "https://shop-c.example.com/api"
DETAILS = [{"type": "api", "locations": [SHOP], "actions": ["read"]}]


async def approved_grant(registry: RegistryClient) -> tuple[AgentClient, str, str]:
    await registry.ensure_resource_server(SHOP)
    human = await registry.human()
    agent = await registry.agent(human)
    started = await agent.bc_authorize(DETAILS)
    auth_req_id = started.json()["auth_req_id"]
    approved = await human.approve(auth_req_id)
    assert approved.status_code == 200, approved.text
    return agent, auth_req_id, approved.json()["grant_id"]


async def test_same_refresh_token_twenty_times(registry: RegistryClient) -> None:
    agent, auth_req_id, grant_id = await approved_grant(registry)
    assert (await agent.token(CIBA, auth_req_id=auth_req_id)).status_code == 200
    token = agent.refresh_token
    responses = await asyncio.gather(
        *(agent.token("refresh_token", refresh_token=token) for _ in range(20))
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: 1, 400: 19}, statuses
    assert {r.json()["error"] for r in responses if r.status_code == 400} == {"invalid_grant"}
    grants = (await registry.admin("GET", f"/grants?agent={agent.client_id}")).json()["grants"]
    assert next(g for g in grants if g["id"] == grant_id)["status"] == "revoked"
    newest = await agent.token("refresh_token", refresh_token=agent.refresh_token)
    assert newest.status_code == 400  # the whole family died with the reuse


async def test_same_enrollment_token_twenty_times(registry: RegistryClient) -> None:
    human = await registry.human()
    token = (await human.api("POST", "/enrollment-tokens", {})).json()["token"]
    agents = [AgentClient(http=registry.http, clock=registry.clock) for _ in range(20)]
    responses = await asyncio.gather(*(a.register(token) for a in agents))
    assert Counter(r.status_code for r in responses) == {201: 1, 401: 19}
    async with registry.app.state.registry.sessions() as session:
        owned = await session.scalar(
            select(func.count()).select_from(AgentRow).where(AgentRow.owner_id == human.id)
        )
    assert owned == 1


async def test_same_auth_req_id_twenty_times_after_approval(registry: RegistryClient) -> None:
    agent, auth_req_id, _ = await approved_grant(registry)
    responses = await asyncio.gather(
        *(agent.token(CIBA, auth_req_id=auth_req_id) for _ in range(20))
    )
    assert Counter(r.status_code for r in responses) == {200: 1, 400: 19}


async def test_same_dpop_proof_twenty_times(registry: RegistryClient) -> None:
    agent, auth_req_id, _ = await approved_grant(registry)
    assert (await agent.token(CIBA, auth_req_id=auth_req_id)).status_code == 200
    proof = agent.proof("/token")
    responses = await asyncio.gather(
        *(
            agent.post(
                "/token",
                agent.form(grant_type="refresh_token", refresh_token="unknown"),
                dpop=proof,
            )
            for _ in range(20)
        )
    )
    errors = Counter(r.json()["error"] for r in responses)
    # One request gets past the proof (and fails later on the unknown refresh token); every
    # other one is refused as a replayed proof.
    assert errors == {"invalid_grant": 1, "invalid_dpop_proof": 19}, errors


async def test_fifty_concurrent_audited_actions_keep_the_chain(registry: RegistryClient) -> None:
    human = await registry.human()
    responses = await asyncio.gather(
        *(human.api("POST", "/enrollment-tokens", {}) for _ in range(50))
    )
    assert Counter(r.status_code for r in responses) == {201: 50}
    report = (await registry.admin("GET", "/audit/verify")).json()
    assert report["ok"] is True, report
    events = (await registry.admin("GET", "/audit?limit=1000")).json()["events"]
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # gapless and ordered


async def test_the_same_resource_server_registered_twenty_times_at_once(
    registry: RegistryClient,
) -> None:
    resource = "https://shop-race.example.com/api"
    body = {"name": "Race", "resource": resource}
    responses = await asyncio.gather(
        *(registry.admin("POST", "/resource-servers", body) for _ in range(20))
    )
    assert Counter(r.status_code for r in responses) == {201: 1, 409: 19}
    refused = {r.json()["error_description"] for r in responses if r.status_code == 409}
    assert refused == {"A resource server with this resource already exists."}
    listed = (await registry.admin("GET", "/resource-servers")).json()["resource_servers"]
    assert [s["resource"] for s in listed].count(resource) == 1


async def test_one_credential_id_registered_by_ten_humans_at_once(
    registry: RegistryClient,
) -> None:
    credential_id = secrets.token_bytes(32)
    attempts = [await registry.passkey_registration(credential_id) for _ in range(10)]
    responses = await asyncio.gather(
        *(human.api("POST", "/passkeys/register/verify", body) for human, body in attempts)
    )
    assert Counter(r.status_code for r in responses) == {200: 1, 400: 9}
    refused = {r.json()["error_description"] for r in responses if r.status_code == 400}
    assert refused == {"This credential is already registered."}


async def test_the_same_requester_allowed_ten_times_at_once(registry: RegistryClient) -> None:
    human, other = await registry.human("Hana"), await registry.human("Omar")
    responses = await asyncio.gather(
        *(human.api("PUT", f"/requesters/{other.id}", {}) for _ in range(10))
    )
    assert Counter(r.status_code for r in responses) == {200: 10}
    assert len({r.json()["allowed_at"] for r in responses}) == 1  # one permission, one time
    allowed = [e for e in await registry.audit_events() if e["event"] == "human.requester_allowed"]
    assert [e["subject"] for e in allowed].count(other.id) == 1
    listed = (await human.api("GET", "/requesters")).json()["requesters"]
    assert [r["human_id"] for r in listed] == [other.id]


async def test_token_requests_racing_a_revocation_of_their_grant_never_deadlock(
    registry: RegistryClient,
) -> None:
    """Issuing inserts rows that refer to the grant (a foreign-key check takes a key-share lock
    on it at the end of the statement that also moves the audit head); revoking locks the
    grant first and appends to the audit log last. A lock on the grant that blocked the
    key-share lock made the two wait for each other until PostgreSQL killed one (a 500)."""
    for _ in range(4):
        agent, auth_req_id, grant_id = await approved_grant(registry)
        issued = await agent.token(CIBA, auth_req_id=auth_req_id)
        assert issued.status_code == 200, issued.text
        exchanges = [
            agent.token(
                EXCHANGE,
                subject_token=agent.access_token,
                subject_token_type=ACCESS_TOKEN_TYPE,
                resource=SHOP,
            )
            for _ in range(12)
        ]
        revoked, *responses = await asyncio.gather(
            registry.admin("POST", f"/grants/{grant_id}/revoke"), *exchanges
        )
        assert revoked.status_code == 200, revoked.text
        assert {r.status_code for r in responses} <= {200, 400}, [r.text for r in responses]
