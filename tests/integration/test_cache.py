"""The same cache contract on Redis and on the in-process development backend."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from app.cache.base import Cache, CacheUnavailable, Once
from app.cache.memory import MemoryCache
from app.cache.redis import RedisCache
from app.core.decision import RateCounter
from tests.support.clock import Clock

NOW = int(time.time())


def once(key: str, ttl: int, issued_at: int = NOW) -> Once:
    return Once(key, ttl, issued_at)


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
    results = await asyncio.gather(*(cache.remember(once("jti-1", 60), NOW) for _ in range(20)))
    assert sorted(results) == [False] * 19 + [True]
    assert await cache.remember(once("jti-2", 60), NOW)


async def test_hit_counts_and_reports_retry_after(cache: Cache) -> None:
    assert [await cache.hit("k", 3, 60) for _ in range(3)] == [0, 0, 0]
    assert 1 <= await cache.hit("k", 3, 60) <= 60


async def test_admit_counts_and_remembers_in_one_call(cache: Cache) -> None:
    retry, fresh = await cache.admit(
        RateCounter("client", 1, 60), [once("a", 60), once("b", 60)], NOW
    )
    assert (retry, fresh) == (0, [True, True])
    retry, fresh = await cache.admit(
        RateCounter("client", 1, 60), [once("a", 60), once("c", 60)], NOW
    )
    assert retry >= 1
    assert fresh == [False, True]


async def test_admit_is_single_use_under_parallel_calls(cache: Cache) -> None:
    results = await asyncio.gather(
        *(
            cache.admit(
                RateCounter("parallel", 100, 60), [once("shared", 60), once(f"own-{i}", 60)], NOW
            )
            for i in range(20)
        )
    )
    assert [retry for retry, _ in results] == [0] * 20
    assert sorted(fresh[0] for _, fresh in results) == [False] * 19 + [True]
    assert all(fresh[1] for _, fresh in results)
    assert await cache.hit("parallel", 21, 60) == 0  # 20 counted, the 21st still allowed
    assert await cache.hit("parallel", 21, 60) >= 1


async def test_redis_admit_sets_ttls_and_survives_a_flushed_script_cache(redis_url: str) -> None:
    cache = RedisCache(redis_url, namespace=f"test-{secrets.token_hex(6)}")
    try:
        await cache.client.script_flush()  # as after a Redis restart
        assert await cache.admit(
            RateCounter("ttl", 5, 30), [once("a", 90), once("b", 200)], NOW
        ) == (
            0,
            [True, True],
        )
        ns = cache.epoch_key.rsplit(":", 1)[0]
        assert 25 <= await cache.client.ttl(f"{ns}:rate:ttl") <= 30
        assert 85 <= await cache.client.ttl(f"{ns}:seen:a") <= 90
        assert 195 <= await cache.client.ttl(f"{ns}:seen:b") <= 200
    finally:
        await cache.close()


async def test_redis_refuses_items_issued_before_it_lost_its_data(redis_url: str) -> None:
    """After the cache loses its data (here: its keys are deleted), an item issued before
    the loss is refused however new its key looks; one issued after is accepted once."""
    cache = RedisCache(redis_url, namespace=f"test-{secrets.token_hex(6)}")
    try:
        await cache.ensure_epoch(NOW - 60)  # as the registry and verifier do when they start
        assert await cache.remember(once("before", 60, NOW - 5), NOW)
        ns = cache.epoch_key.rsplit(":", 1)[0]
        await cache.client.delete(*[key async for key in cache.client.scan_iter(f"{ns}:*")])
        assert not await cache.remember(once("before", 60, NOW - 5), NOW + 10)
        assert not await cache.remember(once("unseen-but-old", 60, NOW + 9), NOW + 10)
        retry, fresh = await cache.admit(
            RateCounter("c", 10, 60), [once("old", 60, NOW), once("new", 60, NOW + 10)], NOW + 11
        )
        assert (retry, fresh) == (0, [False, True])
        assert await cache.remember(once("after", 60, NOW + 10), NOW + 10)
        assert not await cache.remember(once("after", 60, NOW + 10), NOW + 10)
    finally:
        await cache.close()


async def test_ping_and_publish(cache: Cache) -> None:
    assert await cache.ping()
    before = time.time()
    await cache.publish_revocation(1, "grant", "grt_1", 123)
    await cache.publish_key_change("kid-1")
    expected = {"seq": 1, "kind": "grant", "subject": "grt_1", "exp": 123}
    if isinstance(cache, RedisCache):
        entries = await cache.client.zrange(cache.revocation_log, 0, -1, withscores=True)
        logged = [(orjson.loads(e), s) for e, s in entries]
        assert [({k: v for k, v in e.items() if k != "at"}, s) for e, s in logged] == [
            (expected, 1.0)
        ]
        assert before <= logged[0][0]["at"] <= time.time()  # publish time, for the lag metric
    else:
        assert isinstance(cache, MemoryCache)
        event = cache.revocations_log[1]
        assert {k: v for k, v in event.items() if k != "at"} == expected
        assert before <= float(str(event["at"])) <= time.time()
        assert cache.key_changes == ["kid-1"]


async def test_memory_entries_expire() -> None:
    clock = Clock(1000)
    cache = MemoryCache(clock=clock)
    assert await cache.remember(once("x", 10), NOW)
    assert not await cache.remember(once("x", 10), NOW)
    clock.advance(11)
    assert await cache.remember(once("x", 10), NOW)
    assert await cache.hit("r", 1, 5) == 0
    assert await cache.hit("r", 1, 5) == 5
    clock.advance(5)
    assert await cache.hit("r", 1, 5) == 0


async def test_unreachable_redis_fails_closed() -> None:
    dead = RedisCache("redis://127.0.0.1:1/0")
    try:
        assert not await dead.ping()
        with pytest.raises(CacheUnavailable):
            await dead.remember(once("x", 10), NOW)
        with pytest.raises(CacheUnavailable):
            await dead.hit("x", 1, 10)
        with pytest.raises(CacheUnavailable):
            await dead.admit(RateCounter("x", 1, 10), [once("y", 10)], NOW)
        with pytest.raises(CacheUnavailable):
            await dead.publish_revocation(1, "grant", "g", 0)
        with pytest.raises(CacheUnavailable):
            await dead.publish_key_change("k")
    finally:
        await dead.close()


def spend(key: str, amount: int, budget: int, seed: int | None = None, *, once: str = "") -> Any:
    from app.cache.base import Record
    from app.core.decision import LedgerKey, SpendCounter

    return Record(
        proof_iat=10**10,
        once=[(once or secrets.token_hex(8), 60)],
        spend=SpendCounter(key, amount, budget, 3600, LedgerKey("g", "b", "EUR")),
        seed=seed,
        event={"grant": "g", "bucket": "b", "currency": "EUR", "amount": str(amount),
               "jti": "j", "at": "1"},
    )  # fmt: skip


async def test_admission_single_use_rate_and_budget(cache: Cache) -> None:
    from app.cache.base import Record

    await cache.ensure_epoch(0)
    first = Record(proof_iat=10**10, once=[("proof-1", 60), ("assertion-1", 60)])
    assert await cache.admit_request(first) == "ok"
    assert await cache.admit_request(first) == "replay"
    other_proof = Record(proof_iat=10**10, once=[("proof-2", 60), ("assertion-1", 60)])
    assert await cache.admit_request(other_proof) == "assertion_replay"
    rated = [
        Record(proof_iat=10**10, once=[(f"r{i}", 60)], rate=RateCounter("g:r", 2, 60))
        for i in range(3)
    ]
    assert [await cache.admit_request(a) for a in rated] == ["ok", "ok", "rate_limited"]
    # a missing budget counter is seeded from the ledger by the caller, then counted
    assert await cache.admit_request(spend("g:b", 300, 1000)) == "seed"
    assert await cache.admit_request(spend("g:b", 300, 1000, seed=500)) == "ok"
    assert await cache.admit_request(spend("g:b", 300, 1000)) == "budget_exhausted"
    assert await cache.admit_request(spend("g:b", 200, 1000)) == "ok"


async def test_fifty_parallel_spends_never_exceed_the_budget(cache: Cache) -> None:
    await cache.ensure_epoch(0)
    assert await cache.admit_request(spend("g:p", 0, 1000, seed=0)) == "ok"
    outcomes = await asyncio.gather(
        *(cache.admit_request(spend("g:p", 100, 1000)) for _ in range(50))
    )
    assert outcomes.count("ok") == 10
    assert set(outcomes) == {"ok", "budget_exhausted"}
    events = await cache.read_spends("test", 100, 10)
    assert len(events) == 10
    assert {e.fields["amount"] for e in events} == {"100"}
    await cache.ack_spends([e.entry_id for e in events])
    assert await cache.read_spends("test", 100, 10) == []


async def test_spends_a_killed_worker_read_reach_its_successor(redis_url: str) -> None:
    """A worker killed between reading spends and acknowledging them leaves them pending under
    its consumer name; the worker started after it has another name and claims them once they
    have been idle long enough, so they reach the ledger."""
    namespace = f"test-{secrets.token_hex(6)}"
    dead, successor = (
        RedisCache(redis_url, namespace=namespace),
        RedisCache(redis_url, namespace=namespace),
    )
    try:
        await dead.ensure_epoch(0)
        assert await dead.admit_request(spend("g:o", 100, 1000, seed=0)) == "ok"
        assert len(await dead.read_spends("worker-1", 100, 10)) == 1  # and never acknowledged
        successor.orphan_idle_ms = 200
        assert await successor.read_spends("worker-2", 100, 10) == []  # not idle long enough
        await asyncio.sleep(1.1)  # claims are looked for at most once a second
        claimed = await successor.read_spends("worker-2", 100, 10)
        assert [event.fields["amount"] for event in claimed] == ["100"]
        await successor.ack_spends([event.entry_id for event in claimed])
        assert await successor.read_spends("worker-2", 100, 10) == []
    finally:
        await dead.close()
        await successor.close()


async def test_revocation_log_subscription_and_pruning(cache: Cache) -> None:
    subscription = await cache.subscribe()
    try:
        await cache.publish_revocation(1, "token", "jti-1", 100)
        await cache.publish_revocation(2, "agent", "agt_1", 0)
        received = [await subscription.get(wait=2), await subscription.get(wait=2)]
        assert [r[0] for r in received if r] == ["revocation", "revocation"]
        assert [r[1]["seq"] for r in received if r] == [1, 2]
        await cache.publish_key_change("kid-2")
        assert await subscription.get(wait=2) == ("keys", {"kid": "kid-2"})
    finally:
        await subscription.close()
    assert [e["seq"] for e in await cache.revocations()] == [1, 2]
    assert [e["seq"] for e in await cache.revocations(after=1)] == [2]
    assert await cache.prune_revocations(now=200) == 1  # the token expired; agents stay
    assert [e["seq"] for e in await cache.revocations()] == [2]
    epoch = await cache.ensure_epoch(123)
    assert await cache.ensure_epoch(456) == epoch  # set once, then kept
