"""The server's signing keys as stored: the public JWK and the sealed private key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.models import SigningKeyRow


async def every_key(db: AsyncSession) -> Sequence[SigningKeyRow]:
    return (await db.scalars(select(SigningKeyRow))).all()


def add(
    db: AsyncSession,
    *,
    kid: str,
    alg: str,
    public_jwk: dict[str, Any],
    sealed_private_key: bytes,
    activates_at: int,
    now: int,
) -> None:
    db.add(
        SigningKeyRow(
            kid=kid,
            alg=alg,
            public_jwk=public_jwk,
            sealed_private_key=sealed_private_key,
            activates_at=activates_at,
            created_at=now,
        )
    )
