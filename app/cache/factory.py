"""Pick the cache backend from ``AGENTAUTH_REDIS_URL``."""

from __future__ import annotations

from app.cache.base import Cache
from app.cache.memory import MemoryCache
from app.cache.redis import RedisCache


def create_cache(
    url: str, *, namespace: str = "agentauth", spend_replicas: int = 0, spend_wait_ms: int = 100
) -> Cache:
    """The cache at ``url``; ``spend_replicas`` replicas must acknowledge an accepted spend
    within ``spend_wait_ms`` (Redis only; the in-process cache has none)."""
    if url.startswith("memory://"):
        return MemoryCache()
    return RedisCache(
        url, namespace=namespace, spend_replicas=spend_replicas, spend_wait_ms=spend_wait_ms
    )
