"""Humans' browser sessions, kept by the SHA-256 of the cookie's secret."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.store.models import BrowserSession


def add(db: AsyncSession, *, id_hash: str, human_id: str, csrf_token: str, now: int) -> None:
    db.add(
        BrowserSession(
            id_hash=id_hash,
            human_id=human_id,
            csrf_token=csrf_token,
            created_at=now,
            last_seen_at=now,
        )
    )


async def by_hash(db: AsyncSession, id_hash: str) -> BrowserSession | None:
    return await db.get(BrowserSession, id_hash)
