"""Reading the audit log (appending, with its hash chain, is ``services.audit``)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.models import AuditEvent


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
