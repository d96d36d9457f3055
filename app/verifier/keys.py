"""The registry's public signing keys, as the verifier holds them.

Loaded from the read-only database at start (until there is at least one), reloaded when
the registry announces a key change and every ``RELOAD_EVERY`` seconds in any case, and
refreshed at most once per ``min_interval`` when a token names an unknown ``kid`` (so junk
``kid`` values cannot turn into a database load). The JWK set document is
served from here, so it keeps working while the registry is down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import orjson

from app.core.jwk import JWKError, PublicJWK, parse_public_jwk
from app.core.keys import published_public_keys
from app.verifier.database import ReadOnlyStore, StoreUnavailable

log = logging.getLogger("agentauth.verifier.keys")


class VerifierKeys:
    def __init__(
        self,
        store: ReadOnlyStore,
        *,
        max_token_ttl: int,
        clock: Callable[[], float] = time.time,
        min_interval: float = 5.0,
    ) -> None:
        self._store = store
        self._max_token_ttl = max_token_ttl
        self._clock = clock
        self._min_interval = min_interval
        self._entries: list[tuple[PublicJWK, int]] = []
        self._known: set[str] = set()
        self._last_refresh = float("-inf")
        self._lock = asyncio.Lock()
        self.keys: dict[str, PublicJWK] = {}
        self.jwks_body = b'{"keys":[]}'
        self.loaded = False

    def _publish(self) -> None:
        now = int(self._clock())
        published = published_public_keys(self._entries, now, max_token_ttl=self._max_token_ttl)
        self.keys = {key.kid: key for key in published if key.kid is not None}
        document = {"keys": [{**key.to_dict(), "use": "sig"} for key in published]}
        self.jwks_body = orjson.dumps(document)

    async def load(self) -> None:
        """Read every key; raises :class:`StoreUnavailable` when the database is down."""
        rows = await self._store.signing_keys()
        entries: list[tuple[PublicJWK, int]] = []
        for jwk, activates_at in rows:
            try:
                entries.append((parse_public_jwk(jwk, require_kid=True), activates_at))
            except JWKError:
                log.error("ignoring an unreadable signing key %r", jwk.get("kid"))
        # The registry's order: activation time, then kid.
        self._entries = sorted(entries, key=lambda entry: (entry[1], entry[0].kid or ""))
        self._known = {key.kid for key, _ in entries if key.kid is not None}
        self._publish()
        # Loaded means there is something to verify with (a registry that has not started
        # yet has no key): readiness waits for it, and the loader keeps trying.
        self.loaded = bool(self.keys)

    async def reload(self) -> None:
        """Reload after a key change; keeps the current set when the database is down."""
        try:
            await self.load()
        except StoreUnavailable as exc:
            log.warning("could not reload signing keys, keeping the current set: %s", exc)

    def tick(self) -> None:
        """Re-derive which keys are published as time passes (no I/O)."""
        self._publish()

    async def refresh_for(self, kid: object) -> bool:
        """Reload once for an unknown ``kid``; ``True`` if the set may have changed."""
        if not isinstance(kid, str) or kid in self._known:
            return False
        async with self._lock:
            if time.monotonic() - self._last_refresh < self._min_interval:
                return kid in self._known
            self._last_refresh = time.monotonic()
            await self.reload()
            return kid in self._known
