"""Resource servers as the capability type registry."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.capabilities import AuthorizationDetail, parse_authorization_details
from app.store.models import ResourceServer
from app.store.sql import Db
from app.store.token_store import capability_types


async def parse_details(db: Db, raw: object) -> list[AuthorizationDetail]:
    """``authorization_details`` checked against the types the resource servers registered."""
    return parse_authorization_details(raw, await capability_types(db))


async def type_schemas(session: AsyncSession) -> dict[str, dict[str, Any]]:
    """resource URL → {capability type → JSON Schema}, for the approval pages' titles."""
    rows = await session.execute(select(ResourceServer.resource, ResourceServer.capability_types))
    return {resource: dict(types or {}) for resource, types in rows.all()}
