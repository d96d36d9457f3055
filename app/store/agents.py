"""Registered agents (OAuth clients), read and written through the ORM session.

Functions never commit; the caller owns the transaction. The token endpoint's hot reads are
in ``app.store.token_store``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.models import Agent
from app.store.sql import row_lock


def new(
    *,
    agent_id: str,
    owner_id: str | None,
    metadata: dict[str, Any],
    secret_hash: str | None,
    now: int,
) -> Agent:
    """An agent row for validated client ``metadata`` (its keys are the metadata's)."""
    return Agent(
        id=agent_id,
        owner_id=owner_id,
        client_name=metadata["client_name"],
        client_metadata=metadata,
        jwks=metadata.get("jwks", {"keys": []}),
        secret_hash=secret_hash,
        created_at=now,
    )


def add(db: AsyncSession, agent: Agent) -> Agent:
    db.add(agent)
    return agent


async def every_agent(db: AsyncSession) -> Sequence[Agent]:
    return (await db.scalars(select(Agent).order_by(Agent.created_at))).all()


async def owned_by(db: AsyncSession, human_id: str) -> Sequence[Agent]:
    query = select(Agent).where(Agent.owner_id == human_id).order_by(Agent.created_at)
    return (await db.scalars(query)).all()


async def agent(db: AsyncSession, agent_id: str, *, lock: bool = False) -> Agent | None:
    return await db.get(Agent, agent_id, with_for_update=row_lock(lock))
