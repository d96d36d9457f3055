"""Standing grants and ``grant_type=client_credentials`` (RFC 6749 §4.4): a human approves,
with a passkey, a standing grant for one agent; the agent then gets tokens on its own, for
that grant only, until the grant ends or is revoked. On PostgreSQL and SQLite."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
from sqlalchemy import select

from app.store.models import Approval
from tests.support.registry import CIBA, AgentClient, Human, RegistryClient

SHOP = "https://standing-shop.example.com/api"
OPEN_SHOP = "https://standing-open.example.com/api"  # accepts Bearer tokens
DETAILS = [
    {
        "type": "api",
        "locations": [SHOP],
        "actions": ["read", "pay"],
        "limits": {"max_amount": {"value": "10.00", "currency": "EUR"}},
    }
]


def unverified_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


def error(response: httpx.Response, status: int, code: str) -> None:
    assert (response.status_code, response.json().get("error")) == (status, code), response.text


async def world(registry: RegistryClient) -> tuple[Human, AgentClient]:
    await registry.ensure_resource_server(SHOP)
    human = await registry.human()
    return human, await registry.agent(human)


async def standing_grant(
    agent: AgentClient, human: Human, details: list[dict[str, Any]] = DETAILS, **params: Any
) -> str:
    started = await agent.bc_authorize(details, standing="true", **params)
    assert started.status_code == 200, started.text
    approved = await human.approve(started.json()["auth_req_id"])
    assert approved.status_code == 200, approved.text
    return str(approved.json()["grant_id"])


async def test_an_agent_gets_tokens_on_its_own_for_its_standing_grant(
    registry: RegistryClient,
) -> None:
    human, agent = await world(registry)
    grant_id = await standing_grant(agent, human)
    issued = await agent.token("client_credentials", resource=SHOP)
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert body["token_type"] == "DPoP"
    assert "refresh_token" not in body  # RFC 6749 §4.4.3
    claims = unverified_claims(body["access_token"])
    assert claims["sub"] == human.id
    assert claims["act"] == {"sub": agent.client_id}
    assert claims["aud"] == SHOP
    assert claims["grant_id"] == grant_id
    assert claims["authorization_details"][0]["actions"] == ["read", "pay"]
    again = await agent.token("client_credentials")  # the only location by default
    assert again.status_code == 200, again.text
    events = [e for e in await registry.audit_events() if e["subject"] == grant_id]
    assert [e["data"].get("grant_type") for e in events if e["event"] == "token.issued"] == [
        "client_credentials",
        "client_credentials",
    ]


async def test_the_passkey_signs_that_the_grant_is_standing(registry: RegistryClient) -> None:
    human, agent = await world(registry)
    started = await agent.bc_authorize(DETAILS, standing="true")
    auth_req_id = started.json()["auth_req_id"]
    page = await human.browser.get(f"/ui/requests/{auth_req_id}")
    assert "a standing grant" in page.text
    assert (await human.approve(auth_req_id)).status_code == 200
    approved = [e for e in await registry.audit_events() if e["event"] == "grant.approved"]
    assert approved[-1]["data"]["standing"] is True
    assert registry.app is not None
    async with registry.app.state.registry.sessions() as session:
        document = await session.scalar(
            select(Approval.request_document).where(Approval.auth_req_id == auth_req_id)
        )
    assert document["standing"] is True


async def test_an_assertion_may_name_the_token_endpoint(registry: RegistryClient) -> None:
    human, agent = await world(registry)
    await standing_grant(agent, human)
    now = int(registry.clock())
    assertion = agent.keys.assertion(iat=now, exp=now + 60, aud=agent.issuer + "/token")
    form = {**agent.form(grant_type="client_credentials"), "client_assertion": assertion}
    assert (await agent.post("/token", form)).status_code == 200


async def test_no_standing_grant_is_unauthorized_client(registry: RegistryClient) -> None:
    human, agent = await world(registry)
    error(await agent.token("client_credentials"), 400, "unauthorized_client")
    # a grant approved for this moment (not standing) does not count
    started = await agent.bc_authorize(DETAILS)
    assert (await human.approve(started.json()["auth_req_id"])).status_code == 200
    assert (await agent.token(CIBA, auth_req_id=started.json()["auth_req_id"])).status_code == 200
    error(await agent.token("client_credentials"), 400, "unauthorized_client")


async def test_a_revoked_standing_grant_ends_its_tokens(registry: RegistryClient) -> None:
    human, agent = await world(registry)
    grant_id = await standing_grant(agent, human)
    assert (await agent.token("client_credentials")).status_code == 200
    assert (await registry.admin("POST", f"/grants/{grant_id}/revoke")).status_code == 200
    error(await agent.token("client_credentials"), 400, "unauthorized_client")


async def test_an_expired_standing_grant_gives_no_token(registry: RegistryClient) -> None:
    human, agent = await world(registry)
    await standing_grant(agent, human, grant_lifetime="60")
    assert (await agent.token("client_credentials")).status_code == 200
    registry.clock.advance(61)
    error(await agent.token("client_credentials"), 400, "unauthorized_client")


async def test_a_resource_no_standing_grant_covers_is_invalid_target(
    registry: RegistryClient,
) -> None:
    human, agent = await world(registry)
    await standing_grant(agent, human)
    other = "https://not-approved.example.com/api"
    error(await agent.token("client_credentials", resource=other), 400, "invalid_target")


async def test_another_agents_standing_grant_is_not_yours(registry: RegistryClient) -> None:
    human, agent = await world(registry)
    await standing_grant(agent, human)
    stranger = await registry.agent(human)
    error(await stranger.token("client_credentials"), 400, "unauthorized_client")


async def test_narrowing_keeps_within_the_grant(registry: RegistryClient) -> None:
    human, agent = await world(registry)
    await standing_grant(agent, human)
    narrower = [{"type": "api", "locations": [SHOP], "actions": ["read"]}]
    issued = await agent.token("client_credentials", authorization_details=json.dumps(narrower))
    assert issued.status_code == 200, issued.text
    details = unverified_claims(issued.json()["access_token"])["authorization_details"]
    assert details[0]["actions"] == ["read"]
    wider = [{"type": "api", "locations": [SHOP], "actions": ["read", "refund"]}]
    error(
        await agent.token("client_credentials", authorization_details=json.dumps(wider)),
        400,
        "invalid_authorization_details",
    )


async def test_standing_must_be_true_or_false(registry: RegistryClient) -> None:
    _, agent = await world(registry)
    error(await agent.bc_authorize(DETAILS, standing="yes"), 400, "invalid_request")


async def secret_client(registry: RegistryClient, human: Human) -> tuple[AgentClient, str]:
    """A confidential client that authenticates with a secret and registered that it does
    not bind its tokens (RFC 9449 §5.2): an unattended job without DPoP keys."""
    enrollment = (await human.api("POST", "/enrollment-tokens", {"expires_in": 600})).json()
    agent = AgentClient(http=registry.http, clock=registry.clock)
    registered = await agent.register(
        enrollment["token"],
        token_endpoint_auth_method="client_secret_basic",
        dpop_bound_access_tokens=False,
    )
    assert registered.status_code == 201, registered.text
    secret = registered.json()["client_secret"]
    basic = base64.b64encode(f"{agent.client_id}:{secret}".encode()).decode()
    return agent, f"Basic {basic}"


async def shops_and_human(registry: RegistryClient) -> Human:
    """Both shops (the open one accepts Bearer tokens) and a human."""
    created = await registry.admin(
        "POST",
        "/resource-servers",
        {"name": OPEN_SHOP, "resource": OPEN_SHOP, "dpop_required": False},
    )
    assert created.status_code in (201, 409), created.text
    await registry.ensure_resource_server(SHOP)
    return await registry.human()


async def test_a_client_secret_authenticates_and_gets_bearer_tokens_where_accepted(
    registry: RegistryClient,
) -> None:
    human = await shops_and_human(registry)
    agent, basic = await secret_client(registry, human)
    details = [{"type": "api", "locations": [SHOP, OPEN_SHOP], "actions": ["read"]}]
    started = await agent.post(
        "/bc-authorize",
        {"authorization_details": json.dumps(details), "standing": "true"},
        dpop=None,
        headers={"Authorization": basic},
    )
    assert started.status_code == 200, started.text
    assert (await human.approve(started.json()["auth_req_id"])).status_code == 200

    async def token(resource: str, authorization: str = basic) -> httpx.Response:
        form = {"grant_type": "client_credentials", "resource": resource}
        return await agent.post("/token", form, dpop=None, headers={"Authorization": authorization})

    bearer = await token(OPEN_SHOP)
    assert bearer.status_code == 200, bearer.text
    assert bearer.json()["token_type"] == "Bearer"
    error(await token(SHOP), 400, "invalid_request")  # accepts DPoP-bound tokens only
    wrong = "Basic " + base64.b64encode(f"{agent.client_id}:nope".encode()).decode()
    error(await token(OPEN_SHOP, wrong), 401, "invalid_client")


async def test_a_public_client_cannot_ask_on_the_back_channel(registry: RegistryClient) -> None:
    await registry.ensure_resource_server(SHOP)
    human = await registry.human()
    enrollment = (await human.api("POST", "/enrollment-tokens", {"expires_in": 600})).json()
    public = AgentClient(http=registry.http, clock=registry.clock)
    registered = await public.register(
        enrollment["token"],
        token_endpoint_auth_method="none",
        grant_types=["authorization_code"],
        redirect_uris=["http://127.0.0.1/cb"],
        application_type="native",
    )
    assert registered.status_code == 201, registered.text
    form = {"client_id": public.client_id, "authorization_details": json.dumps(DETAILS)}
    error(await public.post("/bc-authorize", form, dpop=None), 400, "unauthorized_client")
    form = {"client_id": public.client_id, "grant_type": "client_credentials"}
    error(await public.post("/token", form, dpop=None), 400, "unauthorized_client")


async def test_an_agent_that_registered_unbound_tokens_gets_bearer_only_where_accepted(
    registry: RegistryClient,
) -> None:
    """A ``private_key_jwt`` agent without DPoP (the MCP SDK's private-key provider) that
    registered ``dpop_bound_access_tokens: false``: Bearer tokens from client credentials,
    for resource servers that accept them; a CIBA token still needs a proof."""
    human = await shops_and_human(registry)
    enrollment = (await human.api("POST", "/enrollment-tokens", {"expires_in": 600})).json()
    agent = AgentClient(http=registry.http, clock=registry.clock)
    registered = await agent.register(enrollment["token"], dpop_bound_access_tokens=False)
    assert registered.status_code == 201, registered.text
    assert registered.json()["dpop_bound_access_tokens"] is False
    details = [{"type": "api", "locations": [SHOP, OPEN_SHOP], "actions": ["read"]}]
    await standing_grant(agent, human, details)

    def unbound(resource: str) -> dict[str, str]:
        return agent.form(grant_type="client_credentials", resource=resource)

    bearer = await agent.post("/token", unbound(OPEN_SHOP), dpop=None)
    assert bearer.status_code == 200, bearer.text
    assert bearer.json()["token_type"] == "Bearer"
    assert "cnf" not in unverified_claims(bearer.json()["access_token"])
    error(await agent.post("/token", unbound(SHOP), dpop=None), 400, "invalid_request")
    bound = await agent.token("client_credentials", resource=SHOP)  # a proof binds as ever
    assert bound.status_code == 200, bound.text
    assert bound.json()["token_type"] == "DPoP"

    started = await agent.bc_authorize(details)
    assert started.status_code == 200, started.text
    assert (await human.approve(started.json()["auth_req_id"])).status_code == 200
    poll = agent.form(grant_type=CIBA, auth_req_id=started.json()["auth_req_id"])
    error(await agent.post("/token", poll, dpop=None), 400, "invalid_dpop_proof")
