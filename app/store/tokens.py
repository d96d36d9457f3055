"""Issued tokens as rows, for revocation: a refresh token by its hash, an access token by its
``jti``, a grant's refresh tokens, an access token's exchanged children. Issuing and rotating
them is ``app.store.token_store`` (the hot path)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.models import AccessToken, RefreshToken


async def refresh_token(db: AsyncSession, token_hash: str) -> RefreshToken | None:
    return await db.get(RefreshToken, token_hash)


async def access_token(db: AsyncSession, jti: str) -> AccessToken | None:
    return await db.get(AccessToken, jti)


async def revoke_refresh_tokens_of(db: AsyncSession, grant_id: str) -> None:
    await db.execute(
        update(RefreshToken)
        .where(RefreshToken.grant_id == grant_id, RefreshToken.status != "revoked")
        .values(status="revoked")
    )


async def live_children(db: AsyncSession, parent_jtis: Sequence[str]) -> Sequence[AccessToken]:
    """Unrevoked access tokens exchanged from any of ``parent_jtis``."""
    query = select(AccessToken).where(
        AccessToken.parent_jti.in_(parent_jtis), AccessToken.revoked_at.is_(None)
    )
    return (await db.scalars(query)).all()
