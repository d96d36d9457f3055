"""A reply that is lost makes the client send a command again, though the first attempt ran:
the retry must get the first attempt's answer. Otherwise a spend is recorded while the
merchant is told "replay" (and the budget charged for nothing), and a client's one-time
assertion or proof is refused as a replay. Its own redis-server behind a TCP proxy that
delivers the command and drops the reply; the client's retry uses a new connection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.cache.base import Once, Record
from app.cache.redis import RedisCache
from app.core.decision import LedgerKey, SpendCounter
from tests.support.processes import RedisServer, TcpProxy


@pytest.fixture
def proxy(redis_process: RedisServer) -> Iterator[TcpProxy]:
    proxy = TcpProxy(redis_process.port)
    proxy.start()
    yield proxy
    proxy.stop()


def spend(proof: str | None) -> Record:
    event = {"grant": "g", "bucket": "b", "currency": "EUR", "amount": "40", "jti": "j", "at": "1"}
    return Record(
        proof_iat=10**10,
        once=[] if proof is None else [(proof, 60)],
        spend=SpendCounter("g:b", 40, 1000, 3600, LedgerKey("g", "b", "EUR")),
        seed=0,
        event=event,
    )


async def admitted_with_a_lost_reply(proxy: TcpProxy, record: Record) -> tuple[str, int]:
    cache = RedisCache(f"redis://127.0.0.1:{proxy.port}/0")
    try:
        await cache.ensure_epoch(0)
        # Loads the script and leaves the pooled connection that will lose the reply.
        assert await cache.admit_request(spend("warm-up")) == "ok"
        proxy.mute()
        outcome = await cache.admit_request(record)
        entries = int(await cache.client.xlen(cache.spend_stream))
    finally:
        await cache.close()
    return outcome, entries - 1


async def test_a_resent_admission_gets_the_first_answer_and_spends_once(proxy: TcpProxy) -> None:
    assert await admitted_with_a_lost_reply(proxy, spend("proof-1")) == ("ok", 1)


async def test_a_resent_admission_without_a_proof_spends_once(proxy: TcpProxy) -> None:
    assert await admitted_with_a_lost_reply(proxy, spend(None)) == ("ok", 1)


async def test_a_resent_single_use_check_counts_the_first_use_as_its_own(proxy: TcpProxy) -> None:
    cache = RedisCache(f"redis://127.0.0.1:{proxy.port}/0")
    try:
        await cache.ensure_epoch(0)
        assert await cache.remember(Once("warm-up", 60, 10**10), 10**10) is True
        proxy.mute()
        assert await cache.remember(Once("assertion-1", 60, 10**10), 10**10) is True
        assert await cache.remember(Once("assertion-1", 60, 10**10), 10**10) is False
    finally:
        await cache.close()
