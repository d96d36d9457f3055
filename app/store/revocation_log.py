"""Reading the revocation log: its head (for heartbeats) and the rows after a point.

The registry's heartbeat and a verifier catching up from the database read the same two
statements, so "the latest sequence" means the same thing on both sides
(docs/architecture.md "Revocation freshness").
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, select

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
