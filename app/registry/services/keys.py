"""Signing keys: created on first start, sealed at rest, rotated with a pre-publication period."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.keys import (
    SigningKey,
    SigningKeySet,
    new_signing_key,
    seal_private_key,
    unseal_private_key,
)
from app.store import signing_keys


class KeyManager:
    """Holds the current :class:`SigningKeySet`, reloaded from the database after changes."""

    def __init__(self, kek: bytes, *, alg: str, max_token_ttl: int) -> None:
        self._kek = kek
        self._alg = alg
        self._max_token_ttl = max_token_ttl
        self.key_set = SigningKeySet([], max_token_ttl=max_token_ttl)

    async def load(self, sessions: async_sessionmaker[AsyncSession], now: int) -> str | None:
        """Load every key; create and store the first one when there is none (its ``kid``
        is returned, to be announced to the verifiers)."""
        created = None
        async with sessions() as session, session.begin():
            rows = await signing_keys.every_key(session)
            if not rows:
                first = new_signing_key(alg=self._alg, activates_at=now)
                await self._store(session, first, now)
                created = first.kid
                rows = await signing_keys.every_key(session)
        known = {key.kid: key for key in self.key_set.keys}
        # Periodic reloads only decrypt keys this process has not seen yet.
        keys = [
            known.get(row.kid)
            or unseal_private_key(
                row.sealed_private_key, self._kek, kid=row.kid, activates_at=row.activates_at
            )
            for row in rows
        ]
        self.key_set = SigningKeySet(keys, max_token_ttl=self._max_token_ttl)
        return created

    async def _store(self, session: AsyncSession, key: SigningKey, now: int) -> None:
        signing_keys.add(
            session,
            kid=key.kid,
            alg=key.alg,
            public_jwk=key.public.to_dict(),
            sealed_private_key=seal_private_key(key, self._kek),
            activates_at=key.activates_at,
            now=now,
        )

    async def add_next_key(self, session: AsyncSession, *, now: int, prepublish: int) -> SigningKey:
        """Create the next key, published now and signing from ``now + prepublish``."""
        key = new_signing_key(alg=self._alg, activates_at=now + prepublish)
        await self._store(session, key, now)
        return key

    def current(self, now: int) -> SigningKey:
        return self.key_set.current(now)
