"""The revocation log: its head (for heartbeats), the rows after a point, and the
registry's writes (appending, marking rows published, finding unpublished ones).

The registry's heartbeat and a verifier catching up from the database read the same two
statements, so "the latest sequence" means the same thing on both sides
(docs/architecture.md "Revocation freshness").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, String, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.models import Revocation

CATCH_UP_ROWS = 5000


def head_query() -> Select[Any]:
    """(highest committed ``seq`` or ``None``, lowest ``seq`` not yet published or ``None``)."""
    pending = (
        select(func.min(Revocation.seq)).where(Revocation.published_at.is_(None)).scalar_subquery()
    )
    return select(func.max(Revocation.seq), pending)


def rows_from_query(start: int) -> Select[int, str, str, int | None]:
    """Revocations with ``seq >= start`` in order, expired or not, at most CATCH_UP_ROWS."""
    return (
        select(Revocation.seq, Revocation.kind, Revocation.subject, Revocation.expires_at)
        .where(Revocation.seq >= start)
        .order_by(Revocation.seq)
        .limit(CATCH_UP_ROWS)
    )


def event(seq: int, kind: str, subject: str, expires_at: int | None) -> dict[str, Any]:
    """A row as the event the registry publishes."""
    return {"seq": seq, "kind": kind, "subject": subject, "exp": expires_at or 0}


# Writing the log (the registry; the read-only verifier only reads it, above).


async def record(
    db: AsyncSession, kind: str, subject: str, now: int, expires_at: int | None
) -> Revocation:
    """Append a revocation; its ``seq`` is assigned by the flush."""
    row = Revocation(kind=kind, subject=subject, created_at=now, expires_at=expires_at)
    db.add(row)
    await db.flush()
    return row


async def mark_published(db: AsyncSession, seqs: Sequence[int], now: int) -> None:
    await db.execute(update(Revocation).where(Revocation.seq.in_(seqs)).values(published_at=now))


async def unpublished(db: AsyncSession, committed_by: int, limit: int) -> Sequence[Revocation]:
    """Rows committed at or before ``committed_by`` and never announced, oldest first."""
    query = (
        select(Revocation)
        .where(Revocation.published_at.is_(None), Revocation.created_at <= committed_by)
        .order_by(Revocation.seq)
        .limit(limit)
    )
    return (await db.scalars(query)).all()


async def head(db: AsyncSession) -> tuple[int, int | None, int | None]:
    """:func:`head_query` read now: (highest ``seq``, 0 for an empty log; lowest unpublished;
    on PostgreSQL the WAL position of the same snapshot, else None). A replica that has
    replayed up to that position holds every row the head counts."""
    if db.get_bind().dialect.name != "postgresql":
        seq, pending = (await db.execute(head_query())).one()
        return int(seq or 0), pending, None
    query = head_query().add_columns(func.pg_current_wal_lsn().cast(String))
    seq, pending, position = (await db.execute(query)).one()
    return int(seq or 0), pending, wal_position(position)


def wal_position(lsn: str) -> int:
    """A PostgreSQL ``pg_lsn`` (``'16/B374D848'``) as a number that orders like it."""
    high, _, low = lsn.partition("/")
    return (int(high, 16) << 32) | int(low, 16)
