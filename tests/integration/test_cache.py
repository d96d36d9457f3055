"""The same cache contract on Redis and on the in-process development backend."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import orjson
import pytest

from app.cache.base import Cache, CacheUnavailable
from app.cache.memory import MemoryCache
from app.cache.redis import RedisCache
from tests.support.clock import Clock


@pytest.fixture(params=["redis", "memory"])
async def cache(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Cache]:
    backend: Cache
    if request.param == "redis":
        backend = RedisCache(redis_url, namespace=f"test-{secrets.token_hex(6)}")
    else:
        backend = MemoryCache()
    try:
        yield backend
    finally:
        await backend.close()


async def test_remember_is_single_use_under_parallel_calls(cache: Cache) -> None:
    results = await asyncio.gather(*(cache.remember("jti-1", 60) for _ in range(20)))
    assert sorted(results) == [False] * 19 + [True]
    assert await cache.remember("jti-2", 60)


async def test_hit_counts_and_reports_retry_after(cache: Cache) -> None:
    assert [await cache.hit("k", 3, 60) for _ in range(3)] == [0, 0, 0]
    assert 1 <= await cache.hit("k", 3, 60) <= 60


async def test_admit_counts_and_remembers_in_one_call(cache: Cache) -> None:
    retry, fresh = await cache.admit(("client", 1, 60), [("a", 60), ("b", 60)])
    assert (retry, fresh) == (0, [True, True])
    retry, fresh = await cache.admit(("client", 1, 60), [("a", 60), ("c", 60)])
    assert retry >= 1
    assert fresh == [False, True]


async def test_ping_and_publish(cache: Cache) -> None:
    assert await cache.ping()
    await cache.publish_revocation(1, "grant", "grt_1", 123)
    await cache.publish_key_change("kid-1")
    if isinstance(cache, RedisCache):
        entries = await cache.client.zrange(cache.revocation_log, 0, -1, withscores=True)
        assert [(orjson.loads(e), s) for e, s in entries] == [
            ({"seq": 1, "kind": "grant", "subject": "grt_1", "exp": 123}, 1.0)
        ]
    else:
        assert isinstance(cache, MemoryCache)
        assert cache.revocations_log == {
            1: {"seq": 1, "kind": "grant", "subject": "grt_1", "exp": 123}
        }
        assert cache.key_changes == ["kid-1"]


async def test_memory_entries_expire() -> None:
    clock = Clock(1000)
    cache = MemoryCache(clock=clock)
    assert await cache.remember("x", 10)
    assert not await cache.remember("x", 10)
    clock.advance(11)
    assert await cache.remember("x", 10)
    assert await cache.hit("r", 1, 5) == 0
    assert await cache.hit("r", 1, 5) == 5
    clock.advance(5)
    assert await cache.hit("r", 1, 5) == 0


async def test_unreachable_redis_fails_closed() -> None:
    dead = RedisCache("redis://127.0.0.1:1/0")
    try:
        assert not await dead.ping()
        with pytest.raises(CacheUnavailable):
            await dead.remember("x", 10)
        with pytest.raises(CacheUnavailable):
            await dead.hit("x", 1, 10)
        with pytest.raises(CacheUnavailable):
            await dead.admit(("x", 1, 10), [("y", 10)])
        with pytest.raises(CacheUnavailable):
            await dead.publish_revocation(1, "grant", "g", 0)
        with pytest.raises(CacheUnavailable):
            await dead.publish_key_change("k")
    finally:
        await dead.close()
