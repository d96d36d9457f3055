"""Capability grants and the requests that lead to them, read and written through the ORM
session. Functions never commit; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.models import AccessToken, Agent, Grant, GrantRequest
from app.store.sql import row_lock

LISTING_LIMIT = 1000


async def grant(db: AsyncSession, grant_id: str, *, lock: bool = False) -> Grant | None:
    return await db.get(Grant, grant_id, with_for_update=row_lock(lock))


async def listing(
    db: AsyncSession, *, human: str | None, agent: str | None, status: str | None
) -> Sequence[Grant]:
    """Grants oldest first, narrowed by whichever of the filters are given."""
    query = select(Grant).order_by(Grant.created_at)
    if human:
        query = query.where(Grant.human_id == human)
    if agent:
        query = query.where(Grant.agent_id == agent)
    if status:
        query = query.where(Grant.status == status)
    return (await db.scalars(query.limit(LISTING_LIMIT))).all()


async def of_human(db: AsyncSession, human_id: str) -> Sequence[Grant]:
    """Every grant the human approved, newest first."""
    query = select(Grant).where(Grant.human_id == human_id).order_by(Grant.created_at.desc())
    return (await db.scalars(query)).all()


async def active_of_human(db: AsyncSession, human_id: str, now: int) -> Sequence[Grant]:
    query = (
        select(Grant)
        .where(Grant.human_id == human_id, Grant.status == "active", Grant.expires_at > now)
        .order_by(Grant.created_at.desc())
    )
    return (await db.scalars(query)).all()


async def of_human_with_agent_names(db: AsyncSession, human_id: str) -> list[tuple[Grant, str]]:
    """Every grant the human approved with its agent's name, newest first."""
    rows = await db.execute(
        select(Grant, Agent.client_name)
        .join(Agent, Agent.id == Grant.agent_id)
        .where(Grant.human_id == human_id)
        .order_by(Grant.created_at.desc())
    )
    return [(g, name) for g, name in rows.all()]


async def token_counts(
    db: AsyncSession, grant_ids: Sequence[str], *, delegated_only: bool = False
) -> dict[str, int]:
    """How many access tokens each grant has issued (only sub-delegated ones if asked)."""
    query = select(AccessToken.grant_id, func.count()).where(AccessToken.grant_id.in_(grant_ids))
    if delegated_only:
        query = query.where(AccessToken.parent_jti.is_not(None))
    rows = await db.execute(query.group_by(AccessToken.grant_id))
    return {grant_id: count for grant_id, count in rows.all()}  # noqa: C416 (Row, not tuple)


def add_request(db: AsyncSession, **values: Any) -> GrantRequest:
    """A new pending request; ``values`` are the columns of ``grant_requests``."""
    row = GrantRequest(**values)
    db.add(row)
    return row


async def pending_requests(
    db: AsyncSession, human_id: str, now: int
) -> list[tuple[GrantRequest, Agent]]:
    """The human's open requests with the agents that asked, newest first."""
    rows = await db.execute(
        select(GrantRequest, Agent)
        .join(Agent, Agent.id == GrantRequest.agent_id)
        .where(
            GrantRequest.human_id == human_id,
            GrantRequest.status == "pending",
            GrantRequest.expires_at > now,
        )
        .order_by(GrantRequest.created_at.desc())
    )
    return [(row, agent) for row, agent in rows.all()]


async def active_of(
    db: AsyncSession, *, agent_id: str | None = None, human_id: str | None = None
) -> Sequence[Grant]:
    """The grants still marked active (expired or not) of an agent or of a human."""
    if (agent_id is None) == (human_id is None):
        raise ValueError("name exactly one of agent_id and human_id")
    owner = Grant.agent_id == agent_id if agent_id is not None else Grant.human_id == human_id
    query = select(Grant).where(owner, Grant.status == "active")
    return (await db.scalars(query)).all()


async def request(db: AsyncSession, auth_req_id: str, *, lock: bool = False) -> GrantRequest | None:
    return await db.get(GrantRequest, auth_req_id, with_for_update=row_lock(lock))
