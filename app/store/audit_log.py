"""Reading the audit log (appending, with its hash chain, is ``services.audit``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.models import AuditEvent, AuditHead


async def events_after(db: AsyncSession, seq: int, limit: int) -> Sequence[AuditEvent]:
    query = select(AuditEvent).where(AuditEvent.seq > seq).order_by(AuditEvent.seq).limit(limit)
    return (await db.scalars(query)).all()


async def latest_about(
    db: AsyncSession, parties: Sequence[str], limit: int
) -> Sequence[AuditEvent]:
    """The newest events any of ``parties`` did or underwent, newest first."""
    query = (
        select(AuditEvent)
        .where(or_(AuditEvent.actor.in_(parties), AuditEvent.subject.in_(parties)))
        .order_by(AuditEvent.seq.desc())
        .limit(limit)
    )
    return (await db.scalars(query)).all()


async def head(db: AsyncSession) -> tuple[int, str]:
    """The chain's tip: (last ``seq``, its hash); (0, the genesis hash) for an empty log."""
    row = (await db.execute(select(AuditHead.seq, AuditHead.hash))).one()
    return int(row.seq), str(row.hash)


async def event_hash(db: AsyncSession, seq: int) -> str | None:
    return await db.scalar(select(AuditEvent.hash).where(AuditEvent.seq == seq))
