"""The ``authgent`` SDK (pinned in the dev extra), unmodified, as a resource server that
checks our tokens locally: it fetches the registry's JWKS over HTTP, verifies the ES256
signature, issuer and audience, reads the RFC 8693 ``act`` chain of a sub-delegated token,
and checks the DPoP proof against ``cnf.jkt``. The human approves with a passkey."""

from __future__ import annotations

import pytest
from authgent import DelegationError, verify_delegation_chain, verify_token
from authgent.dpop import DPoPError, verify_dpop_proof

from tests.support.registry import (
    ACCESS_TOKEN_TYPE,
    CIBA,
    EXCHANGE,
    JWT_TYPE,
    AgentClient,
    Human,
    RegistryClient,
)
from tests.support.stack import Site, site_fixtures

ADMIN_TOKEN = "admin-" + "d" * 40
RESOURCE = "https://shop.example.com/authgent"
DETAILS = [{"type": "api", "locations": [RESOURCE], "actions": ["pay"]}]


site, operator = site_fixtures("authgent", admin_token=ADMIN_TOKEN)


async def agent_of(operator: RegistryClient, human: Human, site: Site) -> AgentClient:
    token = await human.api("POST", "/enrollment-tokens", {"expires_in": 600})
    assert token.status_code == 201, token.text
    agent = AgentClient(http=operator.http, clock=operator.clock, issuer=site.base)
    registered = await agent.register(token.json()["token"])
    assert registered.status_code == 201, registered.text
    return agent


async def test_authgent_checks_a_sub_delegated_token_locally(
    site: Site, operator: RegistryClient
) -> None:
    await operator.resource_server(RESOURCE)
    created = await operator.admin("POST", "/humans", {"display_name": "Alice"})
    alice = Human(id=created.json()["id"], browser=operator.new_browser(), origin=site.base)
    await alice.enrol(created.json()["invite_token"])
    agent_a, agent_b = await agent_of(operator, alice, site), await agent_of(operator, alice, site)

    started = await agent_a.bc_authorize(DETAILS, max_delegation_depth="1")
    assert started.status_code == 200, started.text
    assert (await alice.approve(started.json()["auth_req_id"])).status_code == 200
    issued = await agent_a.token(CIBA, auth_req_id=started.json()["auth_req_id"])
    assert issued.status_code == 200, issued.text
    now = int(operator.clock())
    delegated = await agent_a.token(
        EXCHANGE,
        subject_token=issued.json()["access_token"],
        subject_token_type=ACCESS_TOKEN_TYPE,
        actor_token=agent_b.keys.actor_token(iat=now, exp=now + 60, aud=site.base),
        actor_token_type=JWT_TYPE,
    )
    assert delegated.status_code == 200, delegated.text
    token = delegated.json()["access_token"]

    identity = await verify_token(token, issuer=site.base, audience=RESOURCE)
    assert identity.subject == alice.id
    assert identity.client_id == agent_b.client_id
    chain = verify_delegation_chain(
        identity.delegation_chain,
        max_depth=2,
        allowed_actors=[agent_a.client_id, agent_b.client_id],
    )
    assert [actor["sub"] for actor in chain.actors] == [agent_b.client_id, agent_a.client_id]
    with pytest.raises(DelegationError):
        verify_delegation_chain(identity.delegation_chain, max_depth=1)

    url = f"{RESOURCE}/pay"
    proof = agent_b.keys.dpop(htm="POST", htu=url, iat=now, access_token=token)
    assert verify_dpop_proof(identity, proof, "POST", url)["htu"] == url
    with pytest.raises(DPoPError):  # the first agent's key is not the one the token names
        verify_dpop_proof(identity, agent_a.keys.dpop(htm="POST", htu=url, iat=now), "POST", url)
