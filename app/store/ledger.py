"""The spend ledger: every spend a verifier accepted, written by the worker."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.models import SpendLedger


async def record(db: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ledger rows in one statement; an ``entry_id`` already there (a replay after a
    crash between insert and acknowledgement) is skipped."""
    postgres = db.get_bind().dialect.name == "postgresql"
    insert = postgresql_insert if postgres else sqlite_insert
    # executemany form: one cached statement, rows sent in batches by the driver
    await db.execute(insert(SpendLedger).on_conflict_do_nothing(), list(rows))
