"""Deleting rows whose purpose has passed, a bounded number per table and run.

Nothing here removes evidence: a grant request that became a grant or carries a decision
(an ``approvals`` row) stays, and so do audit events. What goes is what can no longer be used:
WebAuthn challenges past their expiry, browser sessions that ended or timed out, and grant
requests that expired unanswered a day ago (an agent polling one sees ``expired_token`` for
that day, then ``invalid_grant``).
"""

from __future__ import annotations

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.registry.services.sessions import ABSOLUTE, IDLE
from app.store.models import Approval, BrowserSession, Challenge, GrantRequest

BATCH = 500
REQUEST_RETENTION = 86_400
CHALLENGE_GRACE = 60


async def prune_expired(
    sessions: async_sessionmaker[AsyncSession], now: int, batch: int = BATCH
) -> dict[str, int]:
    """Delete up to ``batch`` rows of each kind; returns how many went, by table."""
    choices = {
        "webauthn_challenges": (
            Challenge,
            Challenge.id,
            Challenge.expires_at < now - CHALLENGE_GRACE,
        ),
        "browser_sessions": (
            BrowserSession,
            BrowserSession.id_hash,
            or_(
                BrowserSession.ended_at.is_not(None),
                BrowserSession.last_seen_at < now - IDLE,
                BrowserSession.created_at < now - ABSOLUTE,
            ),
        ),
        "grant_requests": (
            GrantRequest,
            GrantRequest.auth_req_id,
            (GrantRequest.expires_at < now - REQUEST_RETENTION)
            & GrantRequest.grant_id.is_(None)
            & ~exists().where(Approval.auth_req_id == GrantRequest.auth_req_id),
        ),
    }
    removed = {}
    async with sessions() as session, session.begin():
        for table, (model, key, expired) in choices.items():
            doomed = select(key).where(expired).limit(batch).scalar_subquery()
            result = await session.execute(delete(model).where(key.in_(doomed)))
            removed[table] = max(int(getattr(result, "rowcount", 0) or 0), 0)
    return removed
