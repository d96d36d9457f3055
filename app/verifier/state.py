"""Everything a verifier request needs, built once at start-up."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from app.api.errors import unavailable
from app.cache.base import Cache
from app.core.tokens import AccessTokenClaims
from app.settings.verifier import VerifierSettings
from app.verifier.callers import Callers
from app.verifier.database import ReadOnlyStore
from app.verifier.keys import VerifierKeys
from app.verifier.revocations import RevocationStateUnknown, RevocationSync
from app.verifier.tokens import TokenVerifier


@dataclass
class VerifierState:
    settings: VerifierSettings
    cache: Cache
    store: ReadOnlyStore
    keys: VerifierKeys
    tokens: TokenVerifier
    callers: Callers
    revocations: RevocationSync
    clock: Callable[[], float] = field(default=time.time)

    def now(self) -> int:
        return int(self.clock())

    def is_revoked(self, claims: AccessTokenClaims) -> bool:
        """This process's revocation view; unknown state is a 503, never "not revoked"."""
        try:
            return self.revocations.check(claims)
        except RevocationStateUnknown:
            raise unavailable("revocation state is not established") from None

    @property
    def ready(self) -> bool:
        return self.keys.loaded and self.revocations.fresh


def build_verifier(
    settings: VerifierSettings, cache: Cache, clock: Callable[[], float]
) -> VerifierState:
    store = ReadOnlyStore(settings.database_url)
    keys = VerifierKeys(
        store, max_token_ttl=settings.access_token_ttl + settings.clock_skew, clock=clock
    )
    return VerifierState(
        settings=settings,
        cache=cache,
        store=store,
        keys=keys,
        tokens=TokenVerifier(
            keys, issuer=settings.issuer, max_entries=settings.token_cache_entries
        ),
        callers=Callers(store, issuer=settings.issuer, clock=clock),
        revocations=RevocationSync(
            cache,
            store,
            clock=clock,
            on_keys_changed=keys.reload,
            heartbeat_interval=settings.revocation_heartbeat_interval,
            staleness_bound=settings.revocation_staleness_bound,
        ),
        clock=clock,
    )
