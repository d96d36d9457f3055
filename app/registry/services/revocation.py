"""Revocation: committed to the database first, then published to the verifiers.

Every revocation gets a row in ``revocations`` whose auto-increment ``seq`` is the sequence
number published through the cache; a verifier that sees a gap resynchronises from the
database. Revoking a grant kills every token derived from it, because the verifier checks
each token's ``grant_id`` against the revoked set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.api import metrics
from app.api.metrics import dependency_error
from app.cache.base import CacheUnavailable, RevocationChannel
from app.core.errors import InvalidToken
from app.registry.ports import Database
from app.registry.services.common import secret_hash
from app.registry.services.issuance import TokenSigner, verify_own_token
from app.store import grants, revocation_log, tokens
from app.store.models import AccessToken, Agent, Grant, Human, Revocation

log = logging.getLogger("agentauth.revocation")
REPUBLISH_BATCH = 500


async def revoke_grant(session: AsyncSession, grant: Grant, now: int) -> list[Revocation]:
    if grant.status == "revoked":
        return []
    grant.status, grant.revoked_at = "revoked", now
    await tokens.revoke_refresh_tokens_of(session, grant.id)
    return [await revocation_log.record(session, "grant", grant.id, now, grant.expires_at)]


async def revoke_presented_token(
    signer: TokenSigner, session: AsyncSession, client_id: str, token: str, now: int
) -> list[Revocation]:
    """RFC 7009: a refresh token of this client revokes its grant; an access token of this
    client revokes itself and what was exchanged from it. Anything else (unknown, foreign,
    expired, already revoked) revokes nothing."""
    stored = await tokens.refresh_token(session, secret_hash(token))
    if stored is not None:
        if stored.agent_id != client_id:
            return []
        grant = await grants.grant(session, stored.grant_id, lock=True)
        return await revoke_grant(session, grant, now) if grant else []
    try:
        claims = verify_own_token(signer, token, now)
    except InvalidToken:
        return []
    access = await tokens.access_token(session, claims.jti)
    if access is None or access.client_id != client_id:
        return []
    return await revoke_access_token(session, access, now)


async def revoke_access_token(
    session: AsyncSession, token: AccessToken, now: int
) -> list[Revocation]:
    """Revoke ``token`` and every token exchanged from it, at any depth (each by ``jti``,
    so verifiers drop the whole subtree and the rest of the grant lives on)."""
    rows: list[Revocation] = []
    level = [token] if token.revoked_at is None else []
    while level:
        for revoked in level:
            revoked.revoked_at = now
            rows.append(
                await revocation_log.record(session, "token", revoked.jti, now, revoked.expires_at)
            )
        level = list(await tokens.live_children(session, [revoked.jti for revoked in level]))
    return rows


async def _revoke_each(
    session: AsyncSession, grants_to_revoke: Sequence[Grant], now: int
) -> list[Revocation]:
    rows: list[Revocation] = []
    for grant in grants_to_revoke:
        rows += await revoke_grant(session, grant, now)
    return rows


async def disable_agent(session: AsyncSession, agent: Agent, now: int) -> list[Revocation]:
    rows = await _revoke_each(session, await grants.active_of(session, agent_id=agent.id), now)
    if agent.status != "disabled":
        agent.status, agent.disabled_at = "disabled", now
        rows.append(await revocation_log.record(session, "agent", agent.id, now, None))
    return rows


async def suspend_human(session: AsyncSession, human: Human, now: int) -> list[Revocation]:
    rows = await _revoke_each(session, await grants.active_of(session, human_id=human.id), now)
    if human.status != "suspended":
        human.status = "suspended"
        rows.append(await revocation_log.record(session, "human", human.id, now, None))
    return rows


async def publish_rows(
    cache: RevocationChannel,
    sessions: async_sessionmaker[AsyncSession],
    rows: Sequence[Revocation],
    now: int,
) -> int:
    """Announce committed revocations and mark them published; returns how many went out.

    A failure is logged and never undoes a revocation: the row stays unpublished and the
    worker announces it again (an outbox), while verifiers also resynchronise on their own.
    """
    published: list[int] = []
    for row in rows:
        try:
            await cache.publish_revocation(row.seq, row.kind, row.subject, row.expires_at or 0)
        except CacheUnavailable:
            log.warning("revocation %s committed but not published; the worker retries", row.seq)
            break
        published.append(row.seq)
    if published:
        async with sessions() as session, session.begin():
            await revocation_log.mark_published(session, published, now)
    return len(published)


async def publish(
    events: RevocationChannel, database: Database, rows: list[Revocation], now: int
) -> None:
    """Count and announce the revocations a request committed, as of the request's ``now``."""
    for row in rows:
        metrics.REVOCATIONS.labels(row.kind).inc()
    await publish_rows(events, database.sessions, rows, now)


async def republish_pending(
    cache: RevocationChannel,
    sessions: async_sessionmaker[AsyncSession],
    now: int,
    *,
    grace: int = 2,
) -> int:
    """Publish revocations committed at least ``grace`` seconds ago and never announced."""
    async with sessions() as session:
        rows = await revocation_log.unpublished(session, now - grace, REPUBLISH_BATCH)
    return await publish_rows(cache, sessions, rows, now) if rows else 0


async def publish_heartbeat(
    cache: RevocationChannel, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """Announce the revocation log's head, read from the database now: a verifier that has
    applied everything up to it is current as of this moment (docs/architecture.md
    "Revocation freshness")."""
    at = time.time()  # wall time on both sides, never a test's or a process's own clock
    async with sessions() as session:
        seq, pending, position = await revocation_log.head(session)
    await cache.publish_heartbeat(seq, pending, at, position)


async def run_heartbeats(
    cache: RevocationChannel,
    sessions: async_sessionmaker[AsyncSession],
    interval: float,
    stop: asyncio.Event,
) -> None:
    """Publish a heartbeat every ``interval`` seconds until ``stop`` is set; a failure skips
    a beat (verifiers then see silence, catch up from the database or answer 503).

    The loop ends on ``stop``, not on cancellation: redis-py absorbs a cancellation that
    arrives during a command, so a cancelled beat would carry on beating."""
    while not stop.is_set():
        try:
            await publish_heartbeat(cache, sessions)
        except CacheUnavailable:
            dependency_error("redis")
        except (SQLAlchemyError, OSError):
            dependency_error("postgres")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
