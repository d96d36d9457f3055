"""Wire-level errors of /token, /bc-authorize, /register and /revoke (status, code, headers)."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy.engine import make_url

from app.core.errors import InvalidToken
from app.core.jwk import b64url_decode
from app.core.jws import unverified_kid
from app.core.token_cache import token_key
from app.registry.services.issuance import verify_own_token
from tests.factories import Agent
from tests.support.registry import (
    ACCESS_TOKEN_TYPE,
    CIBA,
    EXCHANGE,
    ISSUER,
    JWT_TYPE,
    AgentClient,
    Human,
    RegistryClient,
)

SHOP = "https://shop-e.example.com/api"
OTHER = "https://other-e.example.com"
PAYMENT = "https://shop-e.example.com/rar/payment"
DETAILS = [
    {
        "type": "api",
        "locations": [SHOP],
        "actions": ["read", "pay"],
        "limits": {"max_amount": {"value": "50.00", "currency": "EUR"}},
    }
]


def claims_of(token: str) -> dict[str, Any]:
    return dict(json.loads(b64url_decode(token.split(".")[1])))


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == code, body
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"
    return body


@pytest.fixture
async def world(registry: RegistryClient) -> tuple[RegistryClient, Human, AgentClient]:
    await registry.ensure_resource_server(SHOP, {PAYMENT: {"type": "object"}})
    await registry.ensure_resource_server(OTHER)
    human = await registry.human()
    return registry, human, await registry.agent(human)


async def tokens_for(world: tuple[RegistryClient, Human, AgentClient], **params: Any) -> str:
    _registry, human, agent = world
    auth_req_id = (await agent.bc_authorize(DETAILS, **params)).json()["auth_req_id"]
    assert (await human.approve(auth_req_id)).status_code == 200
    assert (await agent.token(CIBA, auth_req_id=auth_req_id)).status_code == 200
    return auth_req_id


# request shape (TOK-01..TOK-08) ------------------------------------------------------------------


async def test_get_is_not_allowed(registry: RegistryClient) -> None:
    response = await registry.http.get("/token")
    assert response.status_code == 405
    assert response.json()["error"] == "invalid_request"


async def test_json_body_and_query_parameters_are_refused(world: Any) -> None:
    registry, _, agent = world
    as_json = await registry.http.post("/token", json=agent.form(grant_type=CIBA))
    error(as_json, 400, "invalid_request")
    in_query = await registry.http.post(
        "/token?grant_type=x",
        content="a=b",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    error(in_query, 400, "invalid_request")


async def test_duplicate_missing_and_unknown_grant_type(world: Any) -> None:
    _, _, agent = world
    dup = await agent.post("/token", agent.form(grant_type=[CIBA, CIBA]))
    error(dup, 400, "invalid_request")
    missing = await agent.post("/token", agent.form())
    error(missing, 400, "invalid_request")
    unknown = await agent.post("/token", agent.form(grant_type="password"))
    error(unknown, 400, "unsupported_grant_type")


async def test_grant_type_not_registered(world: Any) -> None:
    registry, human, _ = world
    token = (await human.api("POST", "/enrollment-tokens", {})).json()["token"]
    agent = AgentClient(http=registry.http, clock=registry.clock)
    assert (await agent.register(token, grant_types=[CIBA])).status_code == 201
    response = await agent.post("/token", agent.form(grant_type="refresh_token", refresh_token="x"))
    error(response, 400, "unauthorized_client")


# client authentication --------------------------------------------------------------------------


async def test_client_authentication_failures(world: Any) -> None:
    registry, _, agent = world
    no_assertion = await agent.post("/token", {"grant_type": CIBA, "auth_req_id": "x"})
    error(no_assertion, 401, "invalid_client")
    basic = await agent.post(
        "/token", agent.form(grant_type=CIBA), headers={"Authorization": "Basic eDp5"}
    )
    error(basic, 401, "invalid_client")
    form = agent.form(grant_type=CIBA, auth_req_id="x")
    first = await agent.post("/token", form)
    error(first, 400, "invalid_grant")
    replayed = await agent.post("/token", form)
    error(replayed, 401, "invalid_client")
    stranger = AgentClient(http=registry.http, clock=registry.clock)
    error(await stranger.post("/token", stranger.form(grant_type=CIBA)), 401, "invalid_client")


async def test_an_assertion_without_kid_authenticates(world: Any) -> None:
    """RFC 7523 does not require ``kid``; the registered keys are tried (a strict client
    such as oauth4webapi sends none)."""
    registry, _, agent = world
    now = int(registry.clock())
    assertion = agent.keys.assertion(iat=now, exp=now + 60, aud=ISSUER, header={"kid": None})
    form = {**agent.form(authorization_details=json.dumps(DETAILS)), "client_assertion": assertion}
    started = await agent.post("/bc-authorize", form, dpop=None)
    assert started.status_code == 200, started.text


async def test_nul_characters_never_reach_the_database(world: Any) -> None:
    """PostgreSQL text cannot hold U+0000 and no driver encodes a lone surrogate: an
    identifier or issuer carrying one is the caller's error (400/401), on both databases,
    never a 500."""
    registry, _, agent = world
    poll = await agent.post("/token", agent.form(grant_type=CIBA, auth_req_id="a\x00b"))
    error(poll, 400, "invalid_request")
    stranger = AgentClient(http=registry.http, clock=registry.clock)
    stranger.keys.client_id = "agt_\x00" + agent.client_id
    error(await stranger.post("/token", stranger.form(grant_type=CIBA)), 401, "invalid_client")
    error(await stranger.post("/revoke", stranger.form(token="x")), 401, "invalid_client")
    # A lone surrogate (it can only arrive as a JSON escape) no database driver can encode.
    now, lone = int(registry.clock()), "agt_\ud800" + agent.client_id
    claims = {"iss": lone, "sub": lone, "aud": ISSUER, "iat": now, "exp": now + 60, "jti": "j1"}
    header = {"alg": "ES256", "kid": stranger.keys.kid, "typ": "client-authentication+jwt"}
    assertion = stranger.keys.sign_raw(header, json.dumps(claims).encode())  # "\ud800" escaped
    for path, params in (("/token", {"grant_type": CIBA}), ("/revoke", {"token": "x"})):
        form = {**stranger.form(**params), "client_assertion": assertion}
        error(await stranger.post(path, form), 401, "invalid_client")


async def test_disabled_agent_cannot_authenticate(world: Any) -> None:
    _registry, human, agent = world
    assert (await human.api("POST", f"/agents/{agent.client_id}/disable")).status_code == 200
    error(await agent.post("/token", agent.form(grant_type=CIBA)), 401, "invalid_client")


# DPoP -------------------------------------------------------------------------------------------


async def test_dpop_failures(world: Any) -> None:
    _, _, agent = world
    params = agent.form(grant_type=CIBA, auth_req_id="x")
    error(await agent.post("/token", params, dpop=None), 400, "invalid_dpop_proof")
    wrong_htu = agent.proof("/revoke")
    error(
        await agent.post("/token", agent.form(grant_type=CIBA), dpop=wrong_htu),
        400,
        "invalid_dpop_proof",
    )
    body = urlencode(agent.form(grant_type=CIBA, auth_req_id="x"))
    headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("DPoP", agent.proof("/token")),
        ("DPoP", agent.proof("/token")),
    ]
    error(await agent.http.post("/token", content=body, headers=headers), 400, "invalid_dpop_proof")


async def test_a_dpop_key_need_not_be_a_registered_key(world: Any) -> None:
    """RFC 9449 §5: the proof's key is what tokens are bound to; client authentication is
    separate. A proof by a key the agent never registered gets past the DPoP checks."""
    registry, _, agent = world
    foreign = AgentClient(http=registry.http, clock=registry.clock).proof("/token")
    response = await agent.post(
        "/token", agent.form(grant_type=CIBA, auth_req_id="x"), dpop=foreign
    )
    error(response, 400, "invalid_grant")  # the unknown auth_req_id, past DPoP


async def test_a_client_can_require_its_registered_dpop_keys(world: Any) -> None:
    registry, human, _ = world
    strict = await registry.agent(human, dpop_key_policy="registered")
    foreign = AgentClient(http=registry.http, clock=registry.clock).proof("/token")
    response = await strict.post(
        "/token", strict.form(grant_type=CIBA, auth_req_id="x"), dpop=foreign
    )
    body = error(response, 400, "invalid_dpop_proof")
    assert "registered keys" in body["error_description"]
    own = await strict.post("/token", strict.form(grant_type=CIBA, auth_req_id="x"))
    error(own, 400, "invalid_grant")


async def test_dpop_nonce_when_required(world: Any, settings: Any) -> None:
    registry, _, agent = world
    state = registry.app.state.registry
    state.settings = settings.model_copy(update={"dpop_require_nonce": True})
    try:
        first = await agent.post("/token", agent.form(grant_type=CIBA, auth_req_id="x"))
        error(first, 400, "use_dpop_nonce")
        nonce = first.headers["dpop-nonce"]
        retried = await agent.post(
            "/token",
            agent.form(grant_type=CIBA, auth_req_id="x"),
            dpop=agent.proof("/token", nonce=nonce),
        )
        error(retried, 400, "invalid_grant")  # past the nonce check
    finally:
        state.settings = settings


# CIBA -------------------------------------------------------------------------------------------


async def test_ciba_pending_slow_down_expired_denied(world: Any) -> None:
    registry, human, agent = world
    started = (await agent.bc_authorize(DETAILS, requested_expiry="60")).json()
    auth_req_id = started["auth_req_id"]
    error(await agent.token(CIBA, auth_req_id=auth_req_id), 400, "authorization_pending")
    error(await agent.token(CIBA, auth_req_id=auth_req_id), 400, "slow_down")
    registry.clock.advance(61)
    error(await agent.token(CIBA, auth_req_id=auth_req_id), 400, "expired_token")
    denied = (await agent.bc_authorize(DETAILS)).json()["auth_req_id"]
    assert (await human.api("POST", f"/requests/{denied}/deny")).status_code == 200
    error(await agent.token(CIBA, auth_req_id=denied), 400, "access_denied")
    other = await registry.agent(human)
    error(await other.token(CIBA, auth_req_id=denied), 400, "invalid_grant")
    error(await agent.token(CIBA, auth_req_id="unknown"), 400, "invalid_grant")


@pytest.mark.parametrize(
    ("details", "fragment"),
    [
        ([{"type": "https://unknown/type", "locations": [SHOP]}], "not accepted"),
        (
            [{"type": "api", "locations": ["https://unregistered.example"], "actions": ["x"]}],
            "unknown location",
        ),
        (
            [
                {
                    "type": "api",
                    "locations": [SHOP],
                    "actions": ["pay"],
                    "limits": {"max_amount": {"value": 5, "currency": "EUR"}},
                }
            ],
            "decimal",
        ),
        ([], "array"),
    ],
)
async def test_bc_authorize_invalid_details(world: Any, details: Any, fragment: str) -> None:
    _, _, agent = world
    body = error(await agent.bc_authorize(details), 400, "invalid_authorization_details")
    assert fragment in body["error_description"]


async def test_bc_authorize_other_errors(world: Any) -> None:
    _, _, agent = world
    error(await agent.bc_authorize(DETAILS, login_hint="usr_nobody"), 400, "unknown_user_id")
    error(await agent.bc_authorize(DETAILS, binding_message="x" * 201), 400, "invalid_request")
    error(await agent.bc_authorize(DETAILS, max_delegation_depth="9"), 400, "invalid_request")
    error(await agent.bc_authorize(DETAILS, requested_expiry="-1"), 400, "invalid_request")
    missing = await agent.post("/bc-authorize", agent.form(), dpop=None)
    error(missing, 400, "invalid_request")


# refresh and exchange ---------------------------------------------------------------------------


async def test_refresh_by_another_client_and_wider_details(world: Any) -> None:
    registry, human, agent = world
    await tokens_for(world)
    thief = await registry.agent(human)
    error(
        await thief.token("refresh_token", refresh_token=agent.refresh_token), 400, "invalid_grant"
    )
    wider = json.dumps([{"type": "api", "locations": [SHOP], "actions": ["read", "pay", "delete"]}])
    error(
        await agent.token(
            "refresh_token", refresh_token=agent.refresh_token, authorization_details=wider
        ),
        400,
        "invalid_authorization_details",
    )
    error(
        await agent.token("refresh_token", refresh_token=agent.refresh_token, resource=OTHER),
        400,
        "invalid_target",
    )


async def test_narrowing_never_mixes_currencies(world: Any) -> None:
    """The grant caps each payment at 50.00 EUR; a derived token may not add a budget in
    another currency (the two limits would bound different amounts)."""
    _registry, _, agent = world
    await tokens_for(world)
    mixed = [
        {**DETAILS[0], "limits": {"budget": {"value": "10.00", "currency": "USD", "period": "day"}}}
    ]
    for grant_type, params in (
        (EXCHANGE, {"subject_token": agent.access_token, "subject_token_type": ACCESS_TOKEN_TYPE}),
        ("refresh_token", {"refresh_token": agent.refresh_token}),
    ):
        error(
            await agent.token(grant_type, authorization_details=json.dumps(mixed), **params),
            400,
            "invalid_authorization_details",
        )
    same = [
        {**DETAILS[0], "limits": {"budget": {"value": "10.00", "currency": "EUR", "period": "day"}}}
    ]
    allowed = await agent.token(
        EXCHANGE,
        subject_token=agent.access_token,
        subject_token_type=ACCESS_TOKEN_TYPE,
        authorization_details=json.dumps(same),
    )
    assert allowed.status_code == 200, allowed.text


async def test_exchange_errors(world: Any) -> None:
    registry, human, agent = world
    await tokens_for(world)
    subject = agent.access_token

    def exchange(**params: Any) -> Any:
        return agent.token(EXCHANGE, subject_token_type=ACCESS_TOKEN_TYPE, **params)

    error(await exchange(subject_token="garbage"), 400, "invalid_request")
    error(
        await agent.token(
            EXCHANGE,
            subject_token=subject,
            subject_token_type="urn:ietf:params:oauth:token-type:saml1",
        ),
        400,
        "invalid_request",
    )
    error(await exchange(subject_token=subject, resource=OTHER), 400, "invalid_target")
    wider = json.dumps([{"type": "api", "locations": [SHOP], "actions": ["delete"]}])
    error(
        await exchange(subject_token=subject, authorization_details=wider),
        400,
        "invalid_authorization_details",
    )
    actor = await registry.agent(human)
    now = int(registry.clock())
    depth_zero = await exchange(
        subject_token=subject,
        actor_token_type=JWT_TYPE,
        actor_token=actor.keys.actor_token(iat=now, exp=now + 60, aud="http://localhost"),
    )
    error(depth_zero, 400, "invalid_request")  # the grant allows no delegation
    stolen = await actor.token(
        EXCHANGE, subject_token=subject, subject_token_type=ACCESS_TOKEN_TYPE
    )
    error(stolen, 400, "invalid_request")  # not the subject token's actor, nor its key


async def test_a_remembered_subject_token_still_expires(world: Any) -> None:
    registry, _human, agent = world
    await tokens_for(world)
    subject = agent.access_token

    def exchange() -> Any:
        return agent.token(EXCHANGE, subject_token=subject, subject_token_type=ACCESS_TOKEN_TYPE)

    assert (await exchange()).status_code == 200
    assert (await exchange()).status_code == 200  # the second use is a cache hit
    expires_at = json.loads(base64.urlsafe_b64decode(subject.split(".")[1] + "=="))["exp"]
    state = registry.app.state.registry
    registry.clock.advance(expires_at + state.settings.clock_skew - int(registry.clock()))
    body = error(await exchange(), 400, "invalid_request")
    assert "invalid or expired" in body["error_description"]


async def test_a_remembered_token_needs_its_signing_key_still_published(world: Any) -> None:
    registry, _human, agent = world
    await tokens_for(world)
    state = registry.app.state.registry
    now = state.now()
    claims = verify_own_token(state.signer, agent.access_token, now)
    kid = unverified_kid(agent.access_token)
    assert kid in state.keys.key_set.verification_keys(now)
    unsigned = "e30.e30.e30"  # no valid signature: only a cache entry can make it pass
    state.signer.verified.put(token_key(unsigned), (kid, claims), now)
    assert verify_own_token(state.signer, unsigned, now) == claims
    state.signer.verified.put(token_key(unsigned), ("kid-no-longer-published", claims), now)
    with pytest.raises(InvalidToken):
        verify_own_token(state.signer, unsigned, now)


async def test_revoke_endpoint(world: Any) -> None:
    _registry, _, agent = world
    await tokens_for(world)
    unknown = await agent.post("/revoke", agent.form(token="not-a-token"), dpop=None)
    assert unknown.status_code == 200
    access = agent.access_token
    assert (await agent.post("/revoke", agent.form(token=access), dpop=None)).status_code == 200
    exchanged = await agent.token(
        EXCHANGE, subject_token=access, subject_token_type=ACCESS_TOKEN_TYPE
    )
    error(exchanged, 400, "invalid_request")
    refresh = agent.refresh_token
    assert (
        await agent.post("/revoke", agent.form(token=refresh, token_type_hint="bogus"), dpop=None)
    ).status_code == 200
    error(await agent.token("refresh_token", refresh_token=refresh), 400, "invalid_grant")
    missing = await agent.post("/revoke", agent.form(), dpop=None)
    error(missing, 400, "invalid_request")
    error(await agent.post("/revoke", {"token": "x"}, dpop=None), 401, "invalid_client")


async def test_revoke_is_rate_limited_per_client(world: Any) -> None:
    """120 revocations a minute per client, sent 11 at a time; then 429 with Retry-After."""
    _registry, _, agent = world
    answers: list[httpx.Response] = []
    for _ in range(11):
        answers += await asyncio.gather(
            *(agent.post("/revoke", agent.form(token="x"), dpop=None) for _ in range(11))
        )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [200] * 120 + [429], statuses
    limited = next(answer for answer in answers if answer.status_code == 429)
    assert limited.json()["error"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1


async def test_revoke_authenticates_before_it_takes_the_write_lock(
    world: Any, database_url: str
) -> None:
    """On SQLite a writer holds the database; a caller that fails authentication is still
    answered 401 at once, because nothing writes before the caller is known."""
    if not database_url.startswith("sqlite"):
        pytest.skip("the write lock is SQLite's")
    registry, _, _ = world
    stranger = AgentClient(http=registry.http, clock=registry.clock)
    writer = sqlite3.connect(make_url(database_url).database or "", isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        answer = await asyncio.wait_for(
            stranger.post("/revoke", stranger.form(token="x"), dpop=None), timeout=10
        )
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    error(answer, 401, "invalid_client")


async def test_actor_token_is_single_use(world: Any) -> None:
    registry, human, agent = world
    await tokens_for(world, max_delegation_depth="1")
    actor = await registry.agent(human)
    now = int(registry.clock())
    actor_token = actor.keys.actor_token(iat=now, exp=now + 60, aud="http://localhost")
    params = {
        "subject_token": agent.access_token,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "actor_token": actor_token,
        "actor_token_type": JWT_TYPE,
    }
    assert (await agent.token(EXCHANGE, **params)).status_code == 200
    body = error(await agent.token(EXCHANGE, **params), 400, "invalid_request")
    assert "already been used" in body["error_description"]


async def test_an_actor_tokens_key_must_be_one_of_the_actors_registered_keys(
    world: Any,
) -> None:
    """As at /token: an actor that registered ``dpop_key_policy: registered`` holds
    delegated tokens bound to its registered keys only, never to any key its actor token
    names."""
    registry, human, agent = world
    await tokens_for(world, max_delegation_depth="1")
    actor = await registry.agent(human, dpop_key_policy="registered")
    now = int(registry.clock())
    foreign = Agent().jkt
    params = {
        "subject_token": agent.access_token,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "actor_token_type": JWT_TYPE,
    }
    refused = await agent.token(
        EXCHANGE,
        actor_token=actor.keys.actor_token(
            iat=now, exp=now + 60, aud="http://localhost", cnf={"jkt": foreign}
        ),
        **params,
    )
    body = error(refused, 400, "invalid_request")
    assert "registered keys" in body["error_description"]
    own = await agent.token(
        EXCHANGE,
        actor_token=actor.keys.actor_token(
            iat=now, exp=now + 60, aud="http://localhost", cnf={"jkt": actor.keys.jkt}
        ),
        **params,
    )
    assert own.status_code == 200, own.text
    assert claims_of(own.json()["access_token"])["cnf"] == {"jkt": actor.keys.jkt}


async def test_revoking_another_clients_token_changes_nothing(world: Any) -> None:
    registry, human, agent = world
    await tokens_for(world)
    victim_access, victim_refresh = agent.access_token, agent.refresh_token
    other = await registry.agent(human)
    for token in (victim_access, victim_refresh):
        assert (await other.post("/revoke", other.form(token=token), dpop=None)).status_code == 200
    still = await agent.token(
        EXCHANGE, subject_token=victim_access, subject_token_type=ACCESS_TOKEN_TYPE
    )
    assert still.status_code == 200, still.text
    assert (await agent.token("refresh_token", refresh_token=victim_refresh)).status_code == 200
