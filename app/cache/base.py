"""The cache interface shared by the Redis and the in-process backends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

# Key suffixes under the configured namespace (``<namespace>:revocations`` ...).
REVOCATION_CHANNEL = "revocations"
REVOCATION_LOG = "revocation-log"
KEYS_CHANNEL = "keys"


class CacheUnavailable(RuntimeError):
    """The cache could not answer; callers fail closed (503)."""


class Cache(Protocol):
    async def remember(self, key: str, ttl: int) -> bool:
        """Record ``key`` for ``ttl`` seconds; ``False`` if it was already recorded (replay)."""
        ...

    async def admit(
        self, rate: tuple[str, int, int], remember: Sequence[tuple[str, int]]
    ) -> tuple[int, list[bool]]:
        """One round trip: count ``rate`` = (key, limit, window) like :meth:`hit` and record
        each (key, ttl) like :meth:`remember`; returns (retry_after, first-use flags)."""
        ...

    async def hit(self, key: str, limit: int, window: int) -> int:
        """Count one request against ``limit`` per ``window`` seconds.

        Returns 0 when allowed, else the seconds until the window resets (``Retry-After``).
        """
        ...

    async def publish_revocation(self, seq: int, kind: str, subject: str, expires_at: int) -> None:
        """Add a revocation to the shared set and announce it with its sequence number."""
        ...

    async def publish_key_change(self, kid: str) -> None:
        """Tell verifiers the key set changed."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...
