"""Everything a registry request needs, built once in the lifespan and kept on ``app.state``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.cache.base import Cache
from app.core.dpop import NonceSource
from app.core.token_cache import VerifiedTokens
from app.core.tokens import AccessTokenClaims
from app.registry.services.keys import KeyManager
from app.settings.registry import RegistrySettings

OWN_TOKEN_CACHE_ENTRIES = 10_000
OwnToken = tuple[str, AccessTokenClaims]  # (kid, claims) of an access token that verified


def _own_tokens() -> VerifiedTokens[OwnToken]:
    return VerifiedTokens(lambda entry: entry[1].exp, max_entries=OWN_TOKEN_CACHE_ENTRIES)


@dataclass
class RegistryState:
    settings: RegistrySettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cache: Cache
    keys: KeyManager
    nonces: NonceSource | None
    clock: Callable[[], float] = field(default=time.time)
    own_tokens: VerifiedTokens[OwnToken] = field(default_factory=_own_tokens)
    # Client ID Metadata Document URL → when (monotonic) it must be fetched again.
    documents_fresh_until: dict[str, float] = field(default_factory=dict)

    def now(self) -> int:
        return int(self.clock())


def get_registry(request: Request) -> RegistryState:
    registry: RegistryState = request.app.state.registry
    return registry


RegistryDep = Annotated[RegistryState, Depends(get_registry)]
