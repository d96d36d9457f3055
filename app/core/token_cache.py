"""A bounded in-process map of tokens that verified, keyed by the token's SHA-256.

Only successes go in, each until its own expiry; callers still run every per-use check
(expiry with their leeway, the signing key still published, revocation, audience) on a hit.
A process keeps at most ``max_entries``: when full, expired entries go first, then the oldest
half.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def token_key(token: str) -> bytes:
    """The cache key of ``token`` (any string, even one with lone surrogates)."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class VerifiedTokens(Generic[T]):
    def __init__(self, expires_at: Callable[[T], int], *, max_entries: int = 100_000) -> None:
        self._expires_at = expires_at
        self._max_entries = max_entries
        self._entries: dict[bytes, T] = {}

    def get(self, key: bytes) -> T | None:
        return self._entries.get(key)

    def put(self, key: bytes, value: T, now: int) -> None:
        if len(self._entries) >= self._max_entries:
            self.prune(now)
            if len(self._entries) >= self._max_entries:
                # Still full of live tokens: drop the oldest half (dicts keep insertion order).
                for old in list(self._entries)[: self._max_entries // 2]:
                    del self._entries[old]
        self._entries[key] = value

    def prune(self, now: int) -> None:
        """Drop every entry whose token has expired."""
        self._entries = {k: v for k, v in self._entries.items() if self._expires_at(v) > now}

    def __len__(self) -> int:
        return len(self._entries)
