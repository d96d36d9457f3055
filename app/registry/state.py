"""Everything a registry request needs, built once in the lifespan and kept on ``app.state``.

Routes read it and hand each service only the ports it uses (``app.registry.ports``) and the
request's one ``now`` (:data:`NowDep`); services never see this state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.cache.base import Cache
from app.core.dpop import NonceSource
from app.registry.grants import GrantPorts
from app.registry.ports import Database
from app.registry.services.client_documents import DocumentFreshness
from app.registry.services.issuance import TokenSigner
from app.registry.services.keys import KeyManager
from app.registry.services.limits import RateLimits
from app.settings.registry import RegistrySettings


@dataclass
class RegistryState:
    settings: RegistrySettings
    database: Database
    cache: Cache
    keys: KeyManager
    signer: TokenSigner
    limits: RateLimits
    nonces: NonceSource | None
    clock: Callable[[], float] = field(default=time.time)
    documents: DocumentFreshness = field(default_factory=DocumentFreshness)

    @property
    def engine(self) -> AsyncEngine:
        return self.database.engine

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.database.sessions

    def now(self) -> int:
        """Read the clock: once per request (:data:`NowDep`), and by background loops."""
        return int(self.clock())

    def grant_ports(self) -> GrantPorts:
        """What the ``/token`` grants use, with the settings as they are now."""
        return GrantPorts(
            settings=self.settings,
            database=self.database,
            guard=self.cache,
            events=self.cache,
            signer=self.signer,
        )


def get_registry(request: Request) -> RegistryState:
    registry: RegistryState = request.app.state.registry
    return registry


RegistryDep = Annotated[RegistryState, Depends(get_registry)]


def request_now(registry: RegistryDep) -> int:
    """The request's one reading of the clock: every dependency and the route that asks for
    it in one request get the same value (FastAPI solves a dependency once per request)."""
    return registry.now()


NowDep = Annotated[int, Depends(request_now)]
