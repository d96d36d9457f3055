"""RFC 8693 token exchange: re-audiencing and sub-delegation (rules in app.core)."""

from __future__ import annotations

from typing import Any

from app.cache.base import Once
from app.core.capabilities import load_details
from app.core.client_auth import AgentAssertion, unverified_actor, verify_actor_token
from app.core.dpop import DPoPProof
from app.core.errors import InvalidRequest, InvalidToken
from app.core.params import FormParams
from app.core.token_exchange import (
    ExchangeContext,
    derive_token,
    parse_exchange_request,
)
from app.core.tokens import AccessTokenClaims, actors
from app.core.urns import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT
from app.registry.grants import Grant, GrantPorts
from app.registry.grants.common import proof_of
from app.registry.services import audit
from app.registry.services.clients import agent_keys
from app.registry.services.issuance import record_access_token, verify_own_token
from app.registry.services.resource_servers import parse_details
from app.store import token_store
from app.store.sql import Db, connect, transaction
from app.store.token_store import AgentRecord, GrantRecord

GRANT_TYPE = TOKEN_EXCHANGE_GRANT


async def _subject(
    ports: GrantPorts, db: Db, token: str, caller: str, now: int
) -> tuple[AccessTokenClaims, GrantRecord]:
    """The verified subject token and its grant, both still alive, and every agent it names
    enabled (the caller was just authenticated, so it is)."""
    try:
        claims = verify_own_token(ports.signer, token, now)
    except InvalidToken:
        raise InvalidRequest("The subject_token is invalid or expired.") from None
    grant = await token_store.grant_of_access_token(db, claims.jti)
    if grant is None:
        raise InvalidRequest("The subject_token has been revoked.")
    if not grant.active(now):
        raise InvalidRequest("The subject_token's grant is no longer active.")
    for agent_id in {claims.client_id, *actors(claims.act)} - {caller}:
        # as verifiers refuse it: a token that names a disabled agent is dead everywhere
        if await token_store.active_agent(db, agent_id) is None:
            raise InvalidRequest("The subject_token names a disabled agent.")
    return claims, grant


async def _actor(ports: GrantPorts, db: Db, token: str, now: int) -> tuple[AgentAssertion, str]:
    actor_id = unverified_actor(token)
    actor = await token_store.active_agent(db, actor_id)
    if actor is None:
        raise InvalidRequest("The actor_token names an unknown or disabled agent.")
    keys = agent_keys(actor)
    assertion = verify_actor_token(
        token,
        client_id=actor.id,
        keys=keys,
        issuer=ports.settings.issuer,
        now=now,
        leeway=ports.settings.clock_skew,
    )
    if (
        assertion.jkt is not None
        and actor.client_metadata.get("dpop_key_policy") == "registered"
        and assertion.jkt not in {key.jkt for key in keys.values()}
    ):
        # The same rule as at /token: an agent that asked for it uses registered DPoP keys.
        raise InvalidRequest("The actor_token's cnf.jkt is not one of the actor's registered keys.")
    first = await ports.guard.remember(
        Once(f"actor:{actor.id}:{assertion.jti}", 300 + 60, assertion.iat), now
    )
    if not first:
        raise InvalidRequest("The actor_token has already been used.")
    return assertion, next(iter(keys.values())).jkt


async def handle(
    ports: GrantPorts, agent: AgentRecord, proof: DPoPProof | None, form: FormParams, now: int
) -> dict[str, Any]:
    request = parse_exchange_request(form)
    async with connect(ports.database.engine) as db:
        subject, grant = await _subject(ports, db, request.subject_token, agent.id, now)
        actor, actor_jkt = (None, None)
        if request.actor_token is not None:
            actor, actor_jkt = await _actor(ports, db, request.actor_token, now)
        requested = None
        if request.authorization_details is not None:
            requested = await parse_details(db, request.authorization_details)
    context = ExchangeContext(
        caller=agent.id,
        caller_jkt=proof_of(proof).jkt,
        grant_details=load_details(grant.authorization_details),
        grant_max_depth=grant.max_delegation_depth,
        grant_expires_at=grant.expires_at,
        issuer=ports.settings.issuer,
        now=now,
        ttl=ports.settings.access_token_ttl,
    )
    claims = derive_token(
        subject,
        request,
        context,
        requested_details=requested,
        actor=actor,
        actor_default_jkt=actor_jkt,
    )
    # The token row and its audit event: one statement on PostgreSQL.
    async with transaction(ports.database.engine, one_statement=True) as db:
        issued = await record_access_token(ports.signer, db, claims, subject.jti)
        await audit.append(
            db,
            "token.exchanged",
            actor=agent.id,
            subject=grant.id,
            now=now,
            data={
                "jti": claims.jti,
                "parent_jti": subject.jti,
                "aud": claims.aud,
                "client_id": claims.client_id,
                "depth": claims.delegation_depth,
            },
        )
    return issued.response(now, issued_token_type=ACCESS_TOKEN_TYPE)


GRANT = Grant(
    grant_type=GRANT_TYPE,
    metric="token_exchange",
    parameters=frozenset(
        {
            "subject_token",
            "subject_token_type",
            "actor_token",
            "actor_token_type",
            "requested_token_type",
            "resource",
            "audience",
            "authorization_details",
            "scope",
        }
    ),
    handle=handle,
    order=2,
)
