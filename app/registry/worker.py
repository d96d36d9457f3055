"""The registry-side worker: spend stream → Postgres ledger, revocation outbox, pruning.

It is the only consumer of the cache's spend stream: each accepted spend a verifier recorded
is inserted into ``spend_ledger`` (idempotently, by stream entry id) before it is
acknowledged, so a crash between the two only replays the insert. Revocations whose publish
failed are announced again, and expired revocation events leave the cache's log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.api.metrics import METRICS
from app.cache.base import Cache, CacheUnavailable, SpendEvent
from app.cache.factory import create_cache
from app.registry.services.revocation import republish_pending
from app.settings import Settings
from app.store.db import create_engine, session_factory
from app.store.models import SpendLedger

log = logging.getLogger("agentauth.worker")
LEDGER_FIELDS = ("grant", "bucket", "currency", "amount", "jti", "at")


def _ledger_row(event: SpendEvent) -> SpendLedger | None:
    fields = event.fields
    if not all(name in fields for name in LEDGER_FIELDS):
        return None  # an entry deleted from the stream, or not one of ours
    try:
        return SpendLedger(
            entry_id=event.entry_id,
            grant_id=fields["grant"][:40],
            bucket=fields["bucket"][:128],
            currency=fields["currency"][:3],
            amount_minor=int(fields["amount"]),
            jti=fields["jti"][:64],
            created_at=int(fields["at"]),
        )
    except ValueError:
        return None


async def record_spends(
    sessions: async_sessionmaker[AsyncSession], events: Sequence[SpendEvent]
) -> int:
    """Insert the events not yet in the ledger; returns how many were new."""
    rows = [row for row in map(_ledger_row, events) if row is not None]
    if not rows:
        return 0
    async with sessions() as session, session.begin():
        ids = [row.entry_id for row in rows]
        known = set(
            await session.scalars(select(SpendLedger.entry_id).where(SpendLedger.entry_id.in_(ids)))
        )
        fresh = [row for row in rows if row.entry_id not in known]
        session.add_all(fresh)
    return len(fresh)


@dataclass
class Worker:
    cache: Cache
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: Callable[[], float] = time.time
    consumer: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")

    async def drain_once(self, *, block_ms: int = 1000) -> int:
        events = await self.cache.read_spends(self.consumer, 200, block_ms)
        if not events:
            return 0
        added = await record_spends(self.sessions, events)
        await self.cache.ack_spends([event.entry_id for event in events])
        METRICS.inc("agentauth_ledger_entries_total", "Spends written to the ledger.", added)
        return len(events)

    async def housekeeping(self) -> None:
        now = int(self.clock())
        await republish_pending(self.cache, self.sessions, now)
        await self.cache.prune_revocations(now)

    async def run(self, stop: asyncio.Event) -> None:
        last_housekeeping = 0.0
        while not stop.is_set():
            try:
                await self.drain_once()
                if time.monotonic() - last_housekeeping >= 1.0:
                    await self.housekeeping()
                    last_housekeeping = time.monotonic()
            except (CacheUnavailable, SQLAlchemyError, OSError) as exc:
                log.warning("worker step failed, retrying: %s", exc)
                await asyncio.sleep(0.5)


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    engine = create_engine(settings.database_url, pool_size=2)
    cache = create_cache(settings.redis_url, namespace=settings.cache_namespace)
    try:
        await Worker(cache, engine, session_factory(engine)).run(stop)
    finally:
        await cache.close()
        await engine.dispose()
