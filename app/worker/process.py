"""The registry-side worker: spend stream → Postgres ledger, revocation outbox, pruning.

It is the only consumer of the cache's spend stream: each accepted spend a verifier recorded
is inserted into ``spend_ledger`` (idempotently, by stream entry id) before it is
acknowledged, so a crash between the two only replays the insert. Revocations whose publish
failed are announced again, and expired revocation events leave the cache's log. Once a
minute it deletes expired WebAuthn challenges, ended sessions and grant requests that
expired unanswered (``services/pruning.py``), a bounded number per run, and it signs audit
checkpoints when they are configured (``services/checkpoints.py``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.api import metrics
from app.api.background import stop_tasks
from app.cache.base import Cache, CacheUnavailable, SpendEvent
from app.cache.factory import create_cache
from app.registry.services import checkpoints
from app.registry.services.checkpoints import CheckpointWriter
from app.registry.services.pruning import prune_expired
from app.registry.services.revocation import republish_pending, run_heartbeats
from app.settings.worker import WorkerSettings
from app.store import ledger
from app.store.db import create_engine, session_factory

log = logging.getLogger("agentauth.worker")
LEDGER_FIELDS = ("grant", "bucket", "currency", "amount", "jti", "at")
PAUSE = 0.05
PRUNE_EVERY = 60  # seconds between deletions of expired challenges, sessions, requests
BATCH = 500  # entries per ledger insert (SQLite allows 32766 bound parameters; 7 per row)


def _ledger_row(event: SpendEvent) -> dict[str, object] | None:
    fields = event.fields
    if not all(name in fields for name in LEDGER_FIELDS):
        return None  # an entry deleted from the stream, or not one of ours
    try:
        return {
            # An admission's mark: the same spend restored after the cache lost its data
            # has another stream id but the same mark, and is written once.
            "entry_id": fields.get("mark", event.entry_id)[:64],
            "grant_id": fields["grant"][:40],
            "bucket": fields["bucket"][:128],
            "currency": fields["currency"][:3],
            "amount_minor": int(fields["amount"]),
            "jti": fields["jti"][:64],
            "created_at": int(fields["at"]),
        }
    except ValueError:
        return None


async def record_spends(
    sessions: async_sessionmaker[AsyncSession], events: Sequence[SpendEvent]
) -> None:
    """Write the events to the ledger (``store.ledger.record``: one statement, replays
    skipped)."""
    rows = [row for row in map(_ledger_row, events) if row is not None]
    if not rows:
        return
    async with sessions() as session, session.begin():
        await ledger.record(session, rows)


@dataclass
class Worker:
    cache: Cache
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: Callable[[], float] = time.time
    consumer: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    heartbeat_interval: float | None = None  # None: the registry in this process beats
    checkpoints: CheckpointWriter | None = None  # signed audit checkpoints, when configured
    checkpoint_interval: int = 300
    last_pruned: int = 0
    last_checkpoint: int = 0

    async def drain_once(self, *, block_ms: int = 1000) -> int:
        events = await self.cache.read_spends(self.consumer, BATCH, block_ms)
        if not events:
            return 0
        await record_spends(self.sessions, events)
        await self.cache.ack_spends([event.entry_id for event in events])
        metrics.LEDGER_ENTRIES.inc(len(events))
        return len(events)

    async def housekeeping(self) -> None:
        now = int(self.clock())
        await republish_pending(self.cache, self.sessions, now)
        await self.cache.prune_revocations(now)
        if self.checkpoints is not None and now - self.last_checkpoint >= self.checkpoint_interval:
            await self.checkpoints.write(self.sessions, now)
            self.last_checkpoint = now
        if now - self.last_pruned >= PRUNE_EVERY:
            removed = await prune_expired(self.sessions, now)
            self.last_pruned = now
            for table, count in removed.items():
                if count:
                    metrics.PRUNED_ROWS.labels(table).inc(count)

    async def run(self, stop: asyncio.Event) -> None:
        # The heartbeat loop ends on its own event, set however this loop ends (``stop``,
        # an error or a cancellation): cancelling it alone would not stop it.
        beating = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        if self.heartbeat_interval is not None:
            tasks.append(
                asyncio.create_task(
                    run_heartbeats(self.cache, self.sessions, self.heartbeat_interval, beating)
                )
            )
        try:
            await self._loop(stop)
        finally:
            beating.set()
            await stop_tasks(tasks)

    async def _loop(self, stop: asyncio.Event) -> None:
        last_housekeeping = 0.0
        while not stop.is_set():
            try:
                if await self.drain_once() < BATCH:
                    # Let entries accumulate: one insert per ~50 ms instead of one per spend,
                    # which bounds how long an accepted spend lives only in the cache.
                    await asyncio.sleep(PAUSE)
                if time.monotonic() - last_housekeeping >= 1.0:
                    await self.housekeeping()
                    last_housekeeping = time.monotonic()
            except (CacheUnavailable, SQLAlchemyError, OSError) as exc:
                log.warning("worker step failed, retrying: %s", exc)
                await asyncio.sleep(0.5)


async def run_worker(settings: WorkerSettings, stop: asyncio.Event) -> None:
    engine = create_engine(settings.database_url, pool_size=2)
    cache = create_cache(settings.redis_url, namespace=settings.cache_namespace)
    try:
        worker = Worker(
            cache,
            engine,
            session_factory(engine),
            heartbeat_interval=settings.revocation_heartbeat_interval,
            checkpoints=checkpoints.writer(settings),
            checkpoint_interval=settings.audit_checkpoint_interval,
        )
        await worker.run(stop)
    finally:
        await cache.close()
        await engine.dispose()
