"""Agent authentication: ``private_key_jwt`` (RFC 7523) with single-use assertions."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.errors import unavailable
from app.cache.base import CacheUnavailable
from app.core.client_auth import (
    AgentAssertion,
    read_client_assertion,
    unverified_issuer,
    verify_client_assertion,
)
from app.core.errors import InvalidClient
from app.core.jwk import JWKError, PublicJWK, parse_jwks
from app.registry.state import Registry
from app.store.models import Agent, Human


@lru_cache(maxsize=4096)
def _parse_jwks(document: bytes) -> Mapping[str, PublicJWK]:
    try:
        return MappingProxyType(parse_jwks(orjson.loads(document)))
    except JWKError:  # pragma: no cover - validated at registration
        return MappingProxyType({})


def agent_keys(agent: Agent) -> Mapping[str, PublicJWK]:
    """The agent's registered keys, imported once per distinct key set (keys are immutable
    after registration, so the JWKS itself is the cache key)."""
    return _parse_jwks(orjson.dumps(agent.jwks, option=orjson.OPT_SORT_KEYS))


async def active_agent(session: AsyncSession, client_id: str) -> Agent | None:
    """The agent, if it and its owner are both active (one query)."""
    query = (
        select(Agent)
        .join(Human, Human.id == Agent.owner_id)
        .where(Agent.id == client_id, Agent.status == "active", Human.status == "active")
    )
    return (await session.scalars(query)).one_or_none()


async def verify_agent(
    registry: Registry, session: AsyncSession, form: Mapping[str, str], *, basic: bool = False
) -> tuple[Agent, AgentAssertion]:
    """Check the calling agent's ``private_key_jwt`` assertion without recording its ``jti``."""
    if basic:
        raise InvalidClient("Agents authenticate with private_key_jwt only.")
    assertion, client_id_param = read_client_assertion(form)
    client_id = unverified_issuer(assertion)
    agent = await active_agent(session, client_id)
    if agent is None:
        raise InvalidClient(detail=f"unknown or disabled client {client_id[:40]}")
    verified = verify_client_assertion(
        assertion,
        client_id=agent.id,
        keys=agent_keys(agent),
        issuer=registry.settings.issuer,
        now=registry.now(),
        client_id_param=client_id_param,
        leeway=registry.settings.clock_skew,
    )
    return agent, verified


def assertion_replay_key(registry: Registry, assertion: AgentAssertion) -> tuple[str, int]:
    """Where and for how long an assertion's ``jti`` is remembered (until it expires)."""
    ttl = max(assertion.exp - registry.now(), 0) + registry.settings.clock_skew + 1
    return f"ca:{assertion.client_id}:{assertion.jti}", ttl


async def authenticate_agent(
    registry: Registry, session: AsyncSession, form: Mapping[str, str], *, basic: bool = False
) -> Agent:
    """Authenticate the calling agent; its assertion ``jti`` is recorded once (CA-07)."""
    agent, verified = await verify_agent(registry, session, form, basic=basic)
    key, ttl = assertion_replay_key(registry, verified)
    try:
        first_use = await registry.cache.remember(key, ttl)
    except CacheUnavailable as exc:
        raise unavailable(str(exc)) from exc
    if not first_use:
        raise InvalidClient(detail="client assertion jti replayed")
    return agent
