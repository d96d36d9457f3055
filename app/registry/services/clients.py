"""Client authentication at the token and revocation endpoints.

Agents use ``private_key_jwt`` (RFC 7523) with single-use assertions; confidential clients
``client_secret_basic`` or ``client_secret_post`` (RFC 6749 §2.3.1); public clients send
their ``client_id`` alone (``none``). A client authenticates with exactly the method it
registered, and with one method per request (RFC 6749 §2.3).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from types import MappingProxyType

import orjson

from app.api.errors import RateLimited
from app.cache.base import Once, SingleUse
from app.core.client_auth import (
    AgentAssertion,
    basic_credentials,
    read_client_assertion,
    same_secret,
    unverified_issuer,
    verify_client_assertion,
)
from app.core.errors import InvalidClient
from app.core.jwk import JWKError, PublicJWK, parse_jwks
from app.registry.ports import Database
from app.registry.services.client_documents import (
    DocumentFreshness,
    document_client,
    refresh_document,
)
from app.registry.services.limits import RateLimits
from app.settings.registry import RegistrySettings
from app.store.sql import Db
from app.store.token_store import AgentRecord, active_agent

BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="agentauth"'}


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


def is_document_url(client_id: str | None) -> bool:
    """Whether ``client_id`` names a Client ID Metadata Document."""
    return client_id is not None and client_id.startswith(("https://", "http://"))


async def refresh_client_document(
    database: Database,
    settings: RegistrySettings,
    documents: DocumentFreshness,
    client_id: str | None,
    now: int,
) -> None:
    """Before any database connection is taken: fetch the metadata document ``client_id``
    names, if it does and the recorded copy is stale (a fetch may take seconds, and must
    never hold a pooled connection meanwhile)."""
    if client_id is not None and is_document_url(client_id):
        await refresh_document(database, settings, documents, client_id, now)


async def find_client(db: Db, client_id: str) -> AgentRecord | None:
    """The active client ``client_id``: a registered one, or the client a Client ID Metadata
    Document describes when ``client_id`` is its URL."""
    if is_document_url(client_id):
        return await document_client(db, client_id)
    return await active_agent(db, client_id)


async def authenticate_client(
    settings: RegistrySettings,
    db: Db,
    form: Mapping[str, str],
    authorization: str | None,
    *,
    now: int,
) -> tuple[AgentRecord, AgentAssertion | None]:
    """The calling client and, for ``private_key_jwt``, its assertion (whose ``jti`` the
    caller records with :func:`admit_client`), as of the request's ``now``."""
    basic = authorization is not None and authorization[:6].lower() == "basic "
    used = [
        name
        for name, present in (
            ("client_secret_basic", basic),
            ("private_key_jwt", "client_assertion" in form),
            ("client_secret_post", "client_secret" in form),
        )
        if present
    ]
    if len(used) > 1:
        raise InvalidClient("Use exactly one client authentication method.")
    if used == ["private_key_jwt"]:
        return await verify_agent(settings, db, form, now=now)
    secret: str | None
    if basic:
        assert authorization is not None  # noqa: S101 - narrowed above
        client_id, secret = basic_credentials(authorization, BASIC_CHALLENGE)
        if form.get("client_id", client_id) != client_id:
            raise InvalidClient(detail="client_id parameter does not match Basic credentials")
    else:
        client_id, secret = form.get("client_id") or "", form.get("client_secret")
    if not client_id:
        raise InvalidClient(detail="no client authentication")
    client = await find_client(db, client_id)
    method = used[0] if used else "none"
    if client is None or client.auth_method != method:
        headers = BASIC_CHALLENGE if basic else None
        raise InvalidClient(headers=headers, detail=f"unknown client or not {method}")
    if method != "none" and (
        secret is None or client.secret_hash is None or not same_secret(secret, client.secret_hash)
    ):
        raise InvalidClient(headers=BASIC_CHALLENGE if basic else None, detail="bad secret")
    return client, None


async def verify_agent(
    settings: RegistrySettings, db: Db, form: Mapping[str, str], *, now: int
) -> tuple[AgentRecord, AgentAssertion]:
    """Check the calling agent's ``private_key_jwt`` assertion without recording its ``jti``.
    A client registered for another method is refused even if it registered keys (for
    ``dpop_key_policy: registered``): it authenticates with its own method only."""
    assertion, client_id_param = read_client_assertion(form)
    client_id = unverified_issuer(assertion)
    agent = await active_agent(db, client_id)
    if agent is None or agent.auth_method != "private_key_jwt":
        raise InvalidClient(detail=f"unknown, disabled or not private_key_jwt {client_id[:40]}")
    verified = verify_client_assertion(
        assertion,
        client_id=agent.id,
        keys=agent_keys(agent),
        issuer=settings.issuer,
        now=now,
        client_id_param=client_id_param,
        leeway=settings.clock_skew,
        token_endpoint=settings.issuer + "/token",
    )
    return agent, verified


def assertion_replay_key(assertion: AgentAssertion, leeway: int, now: int) -> Once:
    """Where and for how long an assertion's ``jti`` is remembered (until it expires and
    the clock ``leeway`` after)."""
    ttl = max(assertion.exp - now, 0) + leeway + 1
    return Once(f"ca:{assertion.client_id}:{assertion.jti}", ttl, assertion.iat)


async def authenticate_agent(
    settings: RegistrySettings, guard: SingleUse, db: Db, form: Mapping[str, str], *, now: int
) -> AgentRecord:
    """Authenticate the calling agent; its assertion ``jti`` is recorded once in ``guard``."""
    agent, verified = await verify_agent(settings, db, form, now=now)
    once = assertion_replay_key(verified, settings.clock_skew, now)
    first_use = await guard.remember(once, now)
    if not first_use:
        raise InvalidClient(detail="client assertion jti replayed")
    return agent


async def admit_client(
    limits: RateLimits,
    leeway: int,
    agent_id: str,
    endpoint: str,
    assertion: AgentAssertion | None,
    *others: Once,
    now: int,
) -> list[bool]:
    """One cache round trip, after every stateless check passed (so a broken request never
    burns a legitimate ``jti``): the client's rate at ``endpoint``, its assertion's single
    use (when it authenticated with one), and that of ``others``, whose first-use flags are
    returned. ``leeway`` is the clock skew an assertion is accepted with."""
    onces = [*others]
    if assertion is not None:
        onces.insert(0, assertion_replay_key(assertion, leeway, now))
    retry_after, firsts = await limits.counters.admit(
        limits.client_rate(agent_id, endpoint), onces, now
    )
    if retry_after:
        raise RateLimited(headers={"Retry-After": str(retry_after)})
    if assertion is None:
        return list(firsts)
    assertion_new, *rest = firsts
    if not assertion_new:
        raise InvalidClient(detail="client assertion jti replayed")
    return rest
