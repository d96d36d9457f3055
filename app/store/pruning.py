"""Deleting rows whose purpose has passed, at most ``batch`` per table and call; the
cut-offs are the caller's policy (``registry/services/pruning.py``)."""

from __future__ import annotations

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.models import Approval, BrowserSession, Challenge, GrantRequest


async def delete_expired(
    db: AsyncSession,
    *,
    challenges_expired_before: int,
    sessions_seen_before: int,
    sessions_started_before: int,
    requests_expired_before: int,
    batch: int,
) -> dict[str, int]:
    """Challenges expired before the first cut-off; sessions ended, idle since or started
    before theirs; undecided grant requests (no grant, no approval row) expired before the
    last. Returns how many rows went, by table."""
    choices = {
        "webauthn_challenges": (
            Challenge,
            Challenge.id,
            Challenge.expires_at < challenges_expired_before,
        ),
        "browser_sessions": (
            BrowserSession,
            BrowserSession.id_hash,
            or_(
                BrowserSession.ended_at.is_not(None),
                BrowserSession.last_seen_at < sessions_seen_before,
                BrowserSession.created_at < sessions_started_before,
            ),
        ),
        "grant_requests": (
            GrantRequest,
            GrantRequest.auth_req_id,
            (GrantRequest.expires_at < requests_expired_before)
            & GrantRequest.grant_id.is_(None)
            & ~exists().where(Approval.auth_req_id == GrantRequest.auth_req_id),
        ),
    }
    removed = {}
    for table, (model, key, expired) in choices.items():
        doomed = select(key).where(expired).limit(batch).scalar_subquery()
        result = await db.execute(delete(model).where(key.in_(doomed)))
        removed[table] = max(int(getattr(result, "rowcount", 0) or 0), 0)
    return removed
