"""Pick the cache backend from ``AGENTAUTH_REDIS_URL``."""

from __future__ import annotations

from app.cache.base import Cache
from app.cache.memory import MemoryCache
from app.cache.redis import RedisCache


def create_cache(url: str, *, namespace: str = "agentauth") -> Cache:
    if url.startswith("memory://"):
        return MemoryCache()
    return RedisCache(url, namespace=namespace)
