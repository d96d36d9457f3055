"""Agent authentication: ``private_key_jwt`` (RFC 7523) with single-use assertions."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

import orjson

from app.api.errors import RateLimited
from app.cache.base import Once
from app.core.client_auth import (
    AgentAssertion,
    read_client_assertion,
    unverified_issuer,
    verify_client_assertion,
)
from app.core.errors import InvalidClient
from app.core.jwk import JWKError, PublicJWK, parse_jwks
from app.registry.services.limits import client_rate
from app.registry.state import Registry
from app.store.sql import Db
from app.store.token_store import AgentRecord, active_agent


@lru_cache(maxsize=4096)
def _parse_jwks(document: bytes) -> Mapping[str, PublicJWK]:
    try:
        return MappingProxyType(parse_jwks(orjson.loads(document)))
    except JWKError:  # pragma: no cover - validated at registration
        return MappingProxyType({})


def agent_keys(agent: AgentRecord) -> Mapping[str, PublicJWK]:
    """The agent's registered keys, imported once per distinct key set (keys are immutable
    after registration, so the JWKS itself is the cache key)."""
    return _parse_jwks(orjson.dumps(agent.jwks, option=orjson.OPT_SORT_KEYS))


async def verify_agent(
    registry: Registry, db: Db, form: Mapping[str, str], *, basic: bool = False
) -> tuple[AgentRecord, AgentAssertion]:
    """Check the calling agent's ``private_key_jwt`` assertion without recording its ``jti``."""
    if basic:
        raise InvalidClient("Agents authenticate with private_key_jwt only.")
    assertion, client_id_param = read_client_assertion(form)
    client_id = unverified_issuer(assertion)
    agent = await active_agent(db, client_id)
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


def assertion_replay_key(registry: Registry, assertion: AgentAssertion) -> Once:
    """Where and for how long an assertion's ``jti`` is remembered (until it expires)."""
    ttl = max(assertion.exp - registry.now(), 0) + registry.settings.clock_skew + 1
    return Once(f"ca:{assertion.client_id}:{assertion.jti}", ttl, assertion.iat)


async def authenticate_agent(
    registry: Registry, db: Db, form: Mapping[str, str], *, basic: bool = False
) -> AgentRecord:
    """Authenticate the calling agent; its assertion ``jti`` is recorded once."""
    agent, verified = await verify_agent(registry, db, form, basic=basic)
    first_use = await registry.cache.remember(
        assertion_replay_key(registry, verified), registry.now()
    )
    if not first_use:
        raise InvalidClient(detail="client assertion jti replayed")
    return agent


async def admit_client(
    registry: Registry, agent_id: str, endpoint: str, assertion: AgentAssertion, *others: Once
) -> list[bool]:
    """One cache round trip, after every stateless check passed (so a broken request never
    burns a legitimate ``jti``): the client's rate at ``endpoint``, its assertion's single
    use, and that of ``others``, whose first-use flags are returned."""
    retry_after, (assertion_new, *firsts) = await registry.cache.admit(
        client_rate(registry, agent_id, endpoint),
        [assertion_replay_key(registry, assertion), *others],
        registry.now(),
    )
    if retry_after:
        raise RateLimited(headers={"Retry-After": str(retry_after)})
    if not assertion_new:
        raise InvalidClient(detail="client assertion jti replayed")
    return firsts
