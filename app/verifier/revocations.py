"""Revocation state, pushed by the registry and held in process (docs/architecture.md
"Revocation freshness").

The registry commits a revocation and publishes it with its sequence number. The verifier
subscribes *before* loading the current set, so nothing falls between the two, then applies
events as they arrive. A sequence gap is filled from the cache's revocation log.

Freshness (docs/architecture.md "Revocation freshness"): the registry and the worker publish
a heartbeat with the log's head (highest ``seq``, lowest unpublished ``seq``) as read from
the database at a stated time. A verifier that has applied everything up to that head is
current as of that time; what it lacks it reads from the cache's log, then from the read-only
database. When heartbeats stop, the verifier reads the head from the database itself, and a
silent subscription is replaced. :meth:`RevocationSync.check` raises, and the caller answers
503, whenever the view was last confirmed current longer ago than the staleness bound; it
never guesses "not revoked".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from app.api import metrics
from app.api.metrics import dependency_error
from app.cache.base import CacheUnavailable, RevocationFeed, Subscription
from app.core.tokens import AccessTokenClaims, actors
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
        # every agent in the delegation chain must be enabled
        return bool(self.agents) and any(sub in self.agents for sub in actors(claims.act))

    def prune(self, now: int) -> None:
        for table in (self.tokens, self.grants):
            for subject in [s for s, exp in table.items() if 0 < exp < now]:
                del table[subject]

    def __len__(self) -> int:
        return len(self.tokens) + len(self.grants) + len(self.agents) + len(self.humans)


class RevocationSync:
    def __init__(
        self,
        cache: RevocationFeed,
        store: ReadOnlyStore,
        *,
        clock: Callable[[], float] = time.time,
        on_keys_changed: Callable[[], Awaitable[None]] | None = None,
        heartbeat_interval: float = 0.25,
        staleness_bound: float = 1.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.cache = cache
        self.store = store
        self.clock = clock
        self.on_keys_changed = on_keys_changed
        self.interval = heartbeat_interval
        self.bound = staleness_bound
        self.wall = wall  # freshness is wall time on every process, never a test's clock
        self.revoked = RevokedSet()
        self.ready = False  # the set was loaded once
        self.current_at = float("-inf")  # the view is complete as of this wall time
        self.epoch: int | None = None
        self.max_seq = 0
        self._checked_pending: int | None = None
        # The primary's WAL position at the newest heartbeat (PostgreSQL): what a streaming
        # replica must have replayed before its rows are trusted.
        self.position: int | None = None
        # The set was loaded from a replica and no heartbeat has confirmed it complete yet.
        self._unconfirmed = False

    @property
    def fresh(self) -> bool:
        return self.ready and self.wall() - self.current_at <= self.bound

    def check(self, claims: AccessTokenClaims) -> bool:
        """True when revoked; raises :class:`RevocationStateUnknown` when it cannot tell."""
        if not self.fresh:
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
            at = self.wall()
            replica = await self.store.standby_position() is not None
            seq, _ = await self.store.revocation_head()  # read before the set: nothing between
            self._apply(await self.store.live_revocations(now))
            self.max_seq = max(self.max_seq, seq)  # later ones expired, or sequence holes
            if replica:  # it may lag: only a heartbeat it has caught up with confirms it
                self._unconfirmed = True
            else:
                self.current_at = max(self.current_at, at)
            source = "database"
        else:
            self._apply(await self.cache.revocations())
            source = "cache"
        self.epoch = epoch
        metrics.REVOCATION_RESYNCS.labels(source).inc()

    async def catch_up(
        self,
        seq: int,
        pending: int | None,
        at: float,
        *,
        from_cache: bool = True,
        position: int | None = None,
    ) -> None:
        """Apply everything up to a log head read at ``at`` (with the primary's WAL
        ``position`` then); the view is then current as of ``at``. Raises
        :class:`StoreUnavailable` when the database is needed and silent, and
        :class:`StoreBehind` when it is a replica that has not replayed ``position`` yet."""
        if self._unconfirmed:
            await self.store.require_position(position)
            self._apply(await self.store.live_revocations(int(self.clock())))
            self._unconfirmed = False
        if seq > self.max_seq and from_cache:
            with contextlib.suppress(CacheUnavailable):
                self._apply(await self.cache.revocations(after=self.max_seq))
        start = self.max_seq + 1 if seq > self.max_seq else None
        if pending is not None and pending <= self.max_seq and pending != self._checked_pending:
            # committed but not announced yet, maybe below what arrived: read it for sure
            start = pending if start is None else min(start, pending)
        if start is not None:
            await self.store.require_position(position)
            self._apply(await self.store.revocations_from(start))
            self._checked_pending = pending
            metrics.REVOCATION_RESYNCS.labels("head").inc()
        self.max_seq = max(self.max_seq, seq)  # whatever is missing up to seq is a hole
        self.current_at = max(self.current_at, at)

    async def _on_heartbeat(self, event: Mapping[str, Any]) -> None:
        seq, pending, at = event.get("seq"), event.get("pending"), event.get("at")
        position = event.get("lsn")
        if not isinstance(seq, int) or not isinstance(at, int | float):
            return
        if pending is not None and not isinstance(pending, int):
            return
        if position is not None and not isinstance(position, int):
            return
        self.position = position
        with contextlib.suppress(CacheUnavailable):
            # A cache that lost its data (FLUSHALL, a restart without persistence) is noticed
            # within a heartbeat: the spends this process accepted lately are restored.
            await self.cache.ensure_epoch(int(self.clock()))
        try:
            await self.catch_up(seq, pending, float(at), position=position)
        except StoreUnavailable:
            dependency_error("postgres")  # not confirmed: the view ages towards 503

    async def _on_event(self, event: dict[str, Any]) -> None:
        seq = event.get("seq")
        if not isinstance(seq, int):
            return
        previous = self.max_seq
        self._apply([event])
        published = event.get("at")
        if isinstance(published, int | float):
            lag = max(0.0, time.time() - float(published))
            metrics.REVOCATION_LAG.observe(lag)
        if seq > previous + 1:
            # Missed or reordered events: whatever was published is in the log.
            metrics.REVOCATION_GAPS.inc()
            self._apply(await self.cache.revocations(after=previous))

    async def _consume(self, subscription: Subscription, stop: asyncio.Event) -> None:
        heard = time.monotonic()
        while not stop.is_set():
            item = await subscription.get(wait=self.interval)
            if item is None:
                if time.monotonic() - heard > self.bound:
                    raise CacheUnavailable(f"no heartbeat for {self.bound} s")
                continue
            heard = time.monotonic()
            kind, event = item
            if kind == "revocation":
                await self._on_event(event)
            elif kind == "heartbeat":
                await self._on_heartbeat(event)
            elif self.on_keys_changed is not None:
                await self.on_keys_changed()

    async def run(self, stop: asyncio.Event) -> None:
        """Keep the state established until ``stop``; reconnect with backoff on failures.
        A lost subscription leaves the set in place: it ages, and answers turn to 503 once
        it is older than the bound, unless :meth:`watch` confirms it from the database."""
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
                log.warning("revocation subscription lost, resynchronising: %s", exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 0.5)
            finally:
                if subscription is not None:
                    await subscription.close()
        self.ready = False

    async def watch(self, stop: asyncio.Event) -> None:
        """While heartbeats are missing (the cache stalled, restarted or is cut off, or no
        registry publishes), read the log's head from the database every interval."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
            if not self.ready or self.wall() - self.current_at <= 2 * self.interval:
                continue
            at = self.wall()
            try:
                if await self.store.standby_position() is not None:
                    continue  # a replica cannot tell it is current; only heartbeats can
                seq, pending = await self.store.revocation_head()
                await self.catch_up(seq, pending, at, from_cache=False)
            except StoreUnavailable:
                dependency_error("postgres")
