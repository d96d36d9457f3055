"""Revocation state, pushed by the registry and held in process (ARCHITECTURE §6).

The registry commits a revocation and publishes it with its sequence number. The verifier
subscribes *before* loading the current set, so nothing falls between the two, then applies
events as they arrive. A sequence gap is filled from the cache's revocation log. When the
subscription drops, the state is not trusted until the subscription is back and the set is
reloaded: from the cache's log, or from the read-only database when the cache lost its data
(its epoch changed). While the state is not established :meth:`RevocationSync.check` raises
and the caller answers 503; it never guesses "not revoked".
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from app.api.metrics import METRICS, dependency_error
from app.cache.base import Cache, CacheUnavailable, Subscription
from app.core.tokens import AccessTokenClaims
from app.verifier.database import ReadOnlyStore, StoreUnavailable

log = logging.getLogger("agentauth.verifier.revocations")


class RevocationStateUnknown(RuntimeError):
    """Revocation state cannot be established right now (fail closed)."""


class RevokedSet:
    """Revoked token ids and grants (until they expire), agents and humans (for good)."""

    def __init__(self) -> None:
        self.tokens: dict[str, int] = {}
        self.grants: dict[str, int] = {}
        self.agents: set[str] = set()
        self.humans: set[str] = set()

    def apply(self, event: Mapping[str, Any]) -> None:
        kind, subject = event.get("kind"), event.get("subject")
        if not isinstance(subject, str):
            return
        expires = int(event.get("exp") or 0)
        if kind == "token":
            self.tokens[subject] = expires
        elif kind == "grant":
            self.grants[subject] = expires
        elif kind == "agent":
            self.agents.add(subject)
        elif kind == "human":
            self.humans.add(subject)

    def contains(self, claims: AccessTokenClaims) -> bool:
        if (
            claims.jti in self.tokens
            or claims.grant_id in self.grants
            or claims.sub in self.humans
            or claims.client_id in self.agents
        ):
            return True
        if not self.agents:
            return False
        act: object = claims.act
        while isinstance(act, dict):  # every agent in the delegation chain must be enabled
            if act.get("sub") in self.agents:
                return True
            act = act.get("act")
        return False

    def prune(self, now: int) -> None:
        for table in (self.tokens, self.grants):
            for subject in [s for s, exp in table.items() if 0 < exp < now]:
                del table[subject]

    def __len__(self) -> int:
        return len(self.tokens) + len(self.grants) + len(self.agents) + len(self.humans)


class RevocationSync:
    def __init__(
        self,
        cache: Cache,
        store: ReadOnlyStore,
        *,
        clock: Callable[[], float] = time.time,
        on_keys_changed: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.cache = cache
        self.store = store
        self.clock = clock
        self.on_keys_changed = on_keys_changed
        self.revoked = RevokedSet()
        self.ready = False
        self.epoch: int | None = None
        self.max_seq = 0

    def check(self, claims: AccessTokenClaims) -> bool:
        """True when revoked; raises :class:`RevocationStateUnknown` when it cannot tell."""
        if not self.ready:
            raise RevocationStateUnknown("revocation state is not established")
        return self.revoked.contains(claims)

    def _apply(self, events: Iterable[Mapping[str, Any]]) -> None:
        for event in events:
            self.revoked.apply(event)
            seq = event.get("seq")
            if isinstance(seq, int) and seq > self.max_seq:
                self.max_seq = seq

    async def synchronise(self) -> None:
        """Load the current set: the database on first start or after the cache lost its
        data, else the cache's log (events are idempotent, so overlaps are harmless)."""
        now = int(self.clock())
        epoch = await self.cache.ensure_epoch(now)
        if self.epoch is None or epoch != self.epoch:
            events = await self.store.live_revocations(now)
            source = "database"
        else:
            events = await self.cache.revocations()
            source = "cache"
        self._apply(events)
        self.epoch = epoch
        METRICS.inc("agentauth_revocation_resyncs_total", "Revocation resyncs.", source=source)

    async def _on_event(self, event: dict[str, Any]) -> None:
        seq = event.get("seq")
        if not isinstance(seq, int):
            return
        previous = self.max_seq
        self._apply([event])
        published = event.get("at")
        if isinstance(published, int | float):
            lag = max(0.0, time.time() - float(published))
            METRICS.observe_named(
                "agentauth_revocation_lag_seconds",
                "Time from the registry's publish to this verifier applying a revocation.",
                lag,
            )
        if seq > previous + 1:
            # Missed or reordered events: whatever was published is in the log.
            METRICS.inc("agentauth_revocation_gaps_total", "Sequence gaps filled from the log.")
            self._apply(await self.cache.revocations(after=previous))

    async def _consume(self, subscription: Subscription, stop: asyncio.Event) -> None:
        while not stop.is_set():
            item = await subscription.get(wait=0.5)
            if item is None:
                continue
            kind, event = item
            if kind == "revocation":
                await self._on_event(event)
            elif self.on_keys_changed is not None:
                await self.on_keys_changed()

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the state established until ``stop``; reconnect with backoff on failures."""
        backoff = 0.05
        while not stop.is_set():
            subscription: Subscription | None = None
            try:
                subscription = await self.cache.subscribe()
                await self.synchronise()
                self.ready = True
                backoff = 0.05
                await self._consume(subscription, stop)
            except (CacheUnavailable, StoreUnavailable) as exc:
                dependency_error("redis" if isinstance(exc, CacheUnavailable) else "postgres")
                if self.ready:
                    log.warning("revocation state lost, answering 503 until resynced: %s", exc)
                self.ready = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
            finally:
                if subscription is not None:
                    await subscription.close()
        self.ready = False
