"""Resource servers as the capability type registry."""

from __future__ import annotations

from app.core.capabilities import AuthorizationDetail, parse_authorization_details
from app.store.sql import Db
from app.store.token_store import capability_types


async def parse_details(db: Db, raw: object) -> list[AuthorizationDetail]:
    """``authorization_details`` checked against the types the resource servers registered."""
    return parse_authorization_details(raw, await capability_types(db))
