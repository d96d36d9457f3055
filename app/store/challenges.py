"""WebAuthn challenges: issued by the server, kept by their SHA-256, used at most once."""

from __future__ import annotations

import hashlib

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.models import Challenge


def challenge_id(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()


def add(
    db: AsyncSession,
    challenge: bytes,
    *,
    purpose: str,
    expires_at: int,
    human_id: str | None,
    subject: str | None,
    digest: bytes | None,
) -> None:
    db.add(
        Challenge(
            id=challenge_id(challenge),
            purpose=purpose,
            challenge=challenge,
            human_id=human_id,
            subject=subject,
            request_digest=digest,
            expires_at=expires_at,
        )
    )


async def use(db: AsyncSession, challenge: bytes, *, purpose: str, now: int) -> Challenge | None:
    """Mark an unused, unexpired challenge of ``purpose`` used (one conditional UPDATE) and
    return it; None for an unknown, expired, used or other-purpose one."""
    used = await db.execute(
        update(Challenge)
        .where(
            Challenge.id == challenge_id(challenge),
            Challenge.purpose == purpose,
            Challenge.used_at.is_(None),
            Challenge.expires_at > now,
        )
        .values(used_at=now)
        .returning(Challenge)
    )
    return used.scalar_one_or_none()
