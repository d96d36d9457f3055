"""In-process backend for ``agentauth dev`` and single-process use (refused in production).

It keeps the same semantics as the Redis backend for one process: single-use keys, counters,
the revocation log and channel, and the spend stream. It never loses data while the process
lives, so its epoch is fixed at creation.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Any

from app.cache.base import Once, Outcome, Record, SpendEvent
from app.core.decision import RateCounter, SpendCounter


class MemorySubscription:
    def __init__(self, owner: MemoryCache) -> None:
        self._owner = owner
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    async def get(self, wait: float) -> tuple[str, dict[str, Any]] | None:
        try:
            return await asyncio.wait_for(self.queue.get(), wait)
        except TimeoutError:
            return None

    async def close(self) -> None:
        self._owner.subscribers.discard(self)


class MemoryCache:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._seen: dict[str, float] = {}
        self._counters: dict[str, tuple[int, float]] = {}
        self.revocations_log: dict[int, dict[str, Any]] = {}
        self.key_changes: list[str] = []
        self.subscribers: set[MemorySubscription] = set()
        self._stream: dict[str, dict[str, str]] = {}
        self._stream_ids = itertools.count(1)
        self._epoch = 0
        self._lock = asyncio.Lock()

    def _sweep(self, now: float) -> None:
        if len(self._seen) > 10_000:
            self._seen = {k: exp for k, exp in self._seen.items() if exp > now}
        if len(self._counters) > 10_000:
            self._counters = {k: v for k, v in self._counters.items() if v[1] > now}

    def _seen_now(self, key: str, now: float) -> bool:
        expires = self._seen.get(key)
        return expires is not None and expires > now

    async def remember(self, once: Once, now: int) -> bool:
        async with self._lock:
            moment = self._clock()
            self._sweep(moment)
            if once.issued_at < self._epoch or self._seen_now(once.key, moment):
                return False
            self._seen[once.key] = moment + once.ttl
            return True

    async def admit(
        self, rate: RateCounter, once: Sequence[Once], now: int
    ) -> tuple[int, list[bool]]:
        retry_after = await self.hit(rate.key, rate.limit, rate.ttl)
        return retry_after, [await self.remember(item, now) for item in once]

    async def hit(self, key: str, limit: int, window: int) -> int:
        async with self._lock:
            now = self._clock()
            count, resets = self._count(key, now, window)
            count += 1
            self._counters[key] = (count, resets)
            return 0 if count <= limit else max(1, int(resets - now))

    def _count(self, key: str, now: float, ttl: int) -> tuple[int, float]:
        count, resets = self._counters.get(key, (0, now + ttl))
        return (0, now + ttl) if resets <= now else (count, resets)

    async def admit_request(self, record: Record) -> Outcome:
        rate, spend = record.rate, record.spend
        async with self._lock:
            now = self._clock()
            self._sweep(now)
            if record.proof_iat < self._epoch:
                return "replay"
            spent = None
            if spend is not None:
                if f"ctr:{spend.key}" in self._counters:
                    spent = self._count(f"ctr:{spend.key}", now, spend.ttl)[0]
                elif record.seed is None:
                    return "seed"  # as Redis does: the caller reads the ledger once
                else:
                    spent = record.seed
            for index, (key, _) in enumerate(record.once):
                if self._seen_now(key, now):
                    return "replay" if index == 0 else "assertion_replay"
            for key, ttl in record.once:
                self._seen[key] = now + ttl
            if rate is not None:
                count, _ = self._count(f"ctr:{rate.key}", now, rate.ttl)
                if count + 1 > rate.limit:
                    return "rate_limited"
            if spend is not None and spent is not None:
                if spent + spend.amount > spend.budget:
                    return "budget_exhausted"
                self._counters[f"ctr:{spend.key}"] = (spent + spend.amount, now + spend.ttl)
                if spend.amount > 0:
                    self._stream[f"{int(now * 1000)}-{next(self._stream_ids)}"] = dict(record.event)
            if rate is not None:
                count, resets = self._count(f"ctr:{rate.key}", now, rate.ttl)
                self._counters[f"ctr:{rate.key}"] = (count + 1, resets)
            return "ok"

    async def ensure_epoch(self, now: int) -> int:
        return self._epoch

    async def publish_revocation(self, seq: int, kind: str, subject: str, expires_at: int) -> None:
        event = {"seq": seq, "kind": kind, "subject": subject, "exp": expires_at, "at": time.time()}
        self.revocations_log[seq] = event
        for subscriber in list(self.subscribers):
            subscriber.queue.put_nowait(("revocation", dict(event)))

    async def revocations(self, after: int = 0) -> list[dict[str, Any]]:
        return [
            dict(self.revocations_log[seq]) for seq in sorted(self.revocations_log) if seq > after
        ]

    async def prune_revocations(self, now: int) -> int:
        stale = [s for s, e in self.revocations_log.items() if 0 < int(e.get("exp") or 0) < now]
        for seq in stale:
            del self.revocations_log[seq]
        return len(stale)

    async def publish_key_change(self, kid: str) -> None:
        self.key_changes.append(kid)
        for subscriber in list(self.subscribers):
            subscriber.queue.put_nowait(("keys", {"kid": kid}))

    async def publish_heartbeat(
        self, seq: int, pending: int | None, at: float, lsn: int | None = None
    ) -> None:
        for subscriber in list(self.subscribers):
            subscriber.queue.put_nowait(
                ("heartbeat", {"seq": seq, "pending": pending, "at": at, "lsn": lsn})
            )

    async def subscribe(self) -> MemorySubscription:
        subscription = MemorySubscription(self)
        self.subscribers.add(subscription)
        return subscription

    async def read_spends(self, consumer: str, count: int, block_ms: int) -> list[SpendEvent]:
        entries = [SpendEvent(k, v) for k, v in itertools.islice(self._stream.items(), count)]
        if not entries:
            await asyncio.sleep(block_ms / 1000)
        return entries

    async def restored_spends(self, spend: SpendCounter) -> dict[str, int]:
        return {}  # the process's memory is never lost while the process lives

    async def ack_spends(self, entry_ids: Sequence[str]) -> None:
        for entry_id in entry_ids:
            self._stream.pop(entry_id, None)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
