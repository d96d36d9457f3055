"""Issued tokens as rows, for revocation: a refresh token by its hash, an access token by its
``jti``. Issuing and rotating them is ``app.store.token_store`` (the hot path)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.store.models import AccessToken, RefreshToken


async def refresh_token(db: AsyncSession, token_hash: str) -> RefreshToken | None:
    return await db.get(RefreshToken, token_hash)


async def access_token(db: AsyncSession, jti: str) -> AccessToken | None:
    return await db.get(AccessToken, jti)
