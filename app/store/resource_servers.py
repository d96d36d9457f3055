"""Resource servers (the verifier's callers and the capability type registry), read through
the ORM session. The verifier's read-only view of them is ``app.store.readonly``."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.db import add_unless_taken
from app.store.models import ResourceServer


async def every_server(db: AsyncSession) -> Sequence[ResourceServer]:
    return (await db.scalars(select(ResourceServer).order_by(ResourceServer.created_at))).all()


async def at_locations(db: AsyncSession, resources: Collection[str]) -> Sequence[ResourceServer]:
    query = select(ResourceServer).where(ResourceServer.resource.in_(resources))
    return (await db.scalars(query)).all()


async def type_schemas(db: AsyncSession) -> dict[str, dict[str, Any]]:
    """resource URL → {capability type → JSON Schema}."""
    rows = await db.execute(select(ResourceServer.resource, ResourceServer.capability_types))
    return {resource: dict(types or {}) for resource, types in rows.all()}


async def type_names(db: AsyncSession) -> set[str]:
    """Every capability type some resource server registered."""
    return {name for types in (await type_schemas(db)).values() for name in types}


class ResourceTaken(Exception):
    """Another resource server already has this resource URL."""


async def add(db: AsyncSession, server: ResourceServer) -> None:
    """Store a new resource server; :class:`ResourceTaken` if its resource URL is in use,
    also when a concurrent registration of the same URL won the race (the unique index)."""
    if not await add_unless_taken(db, server):
        raise ResourceTaken
