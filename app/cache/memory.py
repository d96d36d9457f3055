"""In-process backend for ``agentauth dev`` and single-process use (refused in production)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence


class MemoryCache:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._seen: dict[str, float] = {}
        self._counters: dict[str, tuple[int, float]] = {}
        self.revocations: list[dict[str, object]] = []
        self.key_changes: list[str] = []
        self._lock = asyncio.Lock()

    def _sweep(self, now: float) -> None:
        if len(self._seen) > 10_000:
            self._seen = {k: exp for k, exp in self._seen.items() if exp > now}
        if len(self._counters) > 10_000:
            self._counters = {k: v for k, v in self._counters.items() if v[1] > now}

    async def remember(self, key: str, ttl: int) -> bool:
        async with self._lock:
            now = self._clock()
            self._sweep(now)
            expires = self._seen.get(key)
            if expires is not None and expires > now:
                return False
            self._seen[key] = now + ttl
            return True

    async def admit(
        self, rate: tuple[str, int, int], remember: Sequence[tuple[str, int]]
    ) -> tuple[int, list[bool]]:
        retry_after = await self.hit(*rate)
        return retry_after, [await self.remember(key, ttl) for key, ttl in remember]

    async def hit(self, key: str, limit: int, window: int) -> int:
        async with self._lock:
            now = self._clock()
            count, resets = self._counters.get(key, (0, now + window))
            if resets <= now:
                count, resets = 0, now + window
            count += 1
            self._counters[key] = (count, resets)
            return 0 if count <= limit else max(1, int(resets - now))

    async def publish_revocation(self, seq: int, kind: str, subject: str, expires_at: int) -> None:
        self.revocations.append({"seq": seq, "kind": kind, "subject": subject, "exp": expires_at})

    async def publish_key_change(self, kid: str) -> None:
        self.key_changes.append(kid)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None
