"""Revocation: committed to the database first, then published to the verifiers.

Every revocation gets a row in ``revocations`` whose auto-increment ``seq`` is the sequence
number published through the cache; a verifier that sees a gap resynchronises from the
database. Revoking a grant kills every token derived from it, because the verifier checks
each token's ``grant_id`` against the revoked set.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.api.metrics import METRICS
from app.cache.base import Cache, CacheUnavailable
from app.registry.state import Registry
from app.store.models import AccessToken, Agent, Grant, Human, RefreshToken, Revocation

log = logging.getLogger("agentauth.revocation")


async def _record(
    session: AsyncSession, kind: str, subject: str, now: int, expires_at: int | None
) -> Revocation:
    row = Revocation(kind=kind, subject=subject, created_at=now, expires_at=expires_at)
    session.add(row)
    await session.flush()
    return row


async def revoke_grant(session: AsyncSession, grant: Grant, now: int) -> list[Revocation]:
    if grant.status == "revoked":
        return []
    grant.status, grant.revoked_at = "revoked", now
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.grant_id == grant.id, RefreshToken.status != "revoked")
        .values(status="revoked")
    )
    return [await _record(session, "grant", grant.id, now, grant.expires_at)]


async def revoke_access_token(
    session: AsyncSession, token: AccessToken, now: int
) -> list[Revocation]:
    if token.revoked_at is not None:
        return []
    token.revoked_at = now
    return [await _record(session, "token", token.jti, now, token.expires_at)]


async def _revoke_grants_where(
    session: AsyncSession, condition: ColumnElement[bool], now: int
) -> list[Revocation]:
    query = select(Grant).where(condition, Grant.status == "active")
    grants = (await session.scalars(query)).all()
    rows: list[Revocation] = []
    for grant in grants:
        rows += await revoke_grant(session, grant, now)
    return rows


async def disable_agent(session: AsyncSession, agent: Agent, now: int) -> list[Revocation]:
    rows = await _revoke_grants_where(session, Grant.agent_id == agent.id, now)
    if agent.status != "disabled":
        agent.status, agent.disabled_at = "disabled", now
        rows.append(await _record(session, "agent", agent.id, now, None))
    return rows


async def suspend_human(session: AsyncSession, human: Human, now: int) -> list[Revocation]:
    rows = await _revoke_grants_where(session, Grant.human_id == human.id, now)
    if human.status != "suspended":
        human.status = "suspended"
        rows.append(await _record(session, "human", human.id, now, None))
    return rows


async def publish_rows(
    cache: Cache, sessions: async_sessionmaker[AsyncSession], rows: Sequence[Revocation], now: int
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
            await session.execute(
                update(Revocation).where(Revocation.seq.in_(published)).values(published_at=now)
            )
    return len(published)


async def publish(registry: Registry, rows: list[Revocation]) -> None:
    for row in rows:
        METRICS.inc("agentauth_revocations_total", "Revocations by kind.", kind=row.kind)
    await publish_rows(registry.cache, registry.sessions, rows, registry.now())


async def republish_pending(
    cache: Cache, sessions: async_sessionmaker[AsyncSession], now: int, *, grace: int = 2
) -> int:
    """Publish revocations committed at least ``grace`` seconds ago and never announced."""
    async with sessions() as session:
        query = (
            select(Revocation)
            .where(Revocation.published_at.is_(None), Revocation.created_at <= now - grace)
            .order_by(Revocation.seq)
            .limit(500)
        )
        rows = (await session.scalars(query)).all()
    return await publish_rows(cache, sessions, rows, now) if rows else 0
