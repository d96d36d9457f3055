"""Deleting rows whose purpose has passed, a bounded number per table and run.

Nothing here removes evidence: a grant request that became a grant or carries a decision
(an ``approvals`` row) stays, and so do audit events. What goes is what can no longer be used:
WebAuthn challenges past their expiry, browser sessions that ended or timed out, and grant
requests that expired unanswered a day ago (an agent polling one sees ``expired_token`` for
that day, then ``invalid_grant``).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.registry.services.sessions import ABSOLUTE, IDLE
from app.store import pruning

BATCH = 500
REQUEST_RETENTION = 86_400
CHALLENGE_GRACE = 60


async def prune_expired(
    sessions: async_sessionmaker[AsyncSession], now: int, batch: int = BATCH
) -> dict[str, int]:
    """Delete up to ``batch`` rows of each kind; returns how many went, by table."""
    async with sessions() as session, session.begin():
        return await pruning.delete_expired(
            session,
            challenges_expired_before=now - CHALLENGE_GRACE,
            sessions_seen_before=now - IDLE,
            sessions_started_before=now - ABSOLUTE,
            requests_expired_before=now - REQUEST_RETENTION,
            batch=batch,
        )
