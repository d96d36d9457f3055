"""The ports registry services take: each names one thing a service uses, so a service's
signature says what it touches (docs/architecture.md "Ports").

- the database: :class:`Database`;
- the replay guard and the rate counters: :class:`app.cache.base.SingleUse`;
- the event stream to the verifiers (revocations, key changes):
  :class:`app.cache.base.RevocationChannel`;
- the token signer: :class:`app.registry.services.issuance.TokenSigner`.

Each is built once in the lifespan; the request's one ``now`` is passed beside them. Only
routes see the state that holds them all (``app.registry.state``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

Sessions = async_sessionmaker[AsyncSession]


@dataclass(frozen=True, slots=True)
class Database:
    """The registry's database: ORM sessions (``sessions()``, the cold paths' unit of work)
    and the engine the hot paths run driver SQL on (``app.store.sql``)."""

    engine: AsyncEngine
    sessions: Sessions
