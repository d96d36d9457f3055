"""Resource servers as the capability type registry."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.capabilities import AuthorizationDetail, TypeRegistry, parse_authorization_details
from app.store.models import ResourceServer


async def type_registry(session: AsyncSession) -> TypeRegistry:
    """resource URL → {type → JSON Schema} for every registered resource server."""
    rows = (
        await session.execute(select(ResourceServer.resource, ResourceServer.capability_types))
    ).all()
    return {resource: types or {} for resource, types in rows}


async def parse_details(session: AsyncSession, raw: object) -> list[AuthorizationDetail]:
    return parse_authorization_details(raw, await type_registry(session))
