"""Durable spends (``AGENTAUTH_SPEND_REPLICAS=1``): ``/verify`` answers ``allowed`` for an
amount only once a Redis replica holds the spend, so killing the primary right after the
answers loses none of them; with the replica stalled the answer is ``503``, never an
``allowed`` that a crash could forget."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.cache.base import CacheUnavailable
from app.settings import Settings
from app.store.models import SpendLedger
from app.verifier.app import create_app as create_verifier
from app.worker.process import Worker
from tests.support.registry import RegistryClient
from tests.support.sentinel import Group, wait_for_failover
from tests.support.verifier import Merchant, api, shop_with_grant, verify_body

BUDGET = {"budget": {"value": "1000.00", "currency": "EUR", "period": "day"}}
PRICE = {"value": "2.50", "currency": "EUR"}


@pytest.fixture
async def durable_http(
    settings: Settings, verifier_database_url: str, registry: RegistryClient
) -> AsyncIterator[httpx.AsyncClient]:
    """A verifier that waits for one replica before it answers a spend."""
    app = create_verifier(
        settings.model_copy(update={"database_url": verifier_database_url, "spend_replicas": 1}),
        clock=registry.clock,
    )
    async with app.running():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://verifier") as http:
            yield http


async def _shop(registry: RegistryClient, http: httpx.AsyncClient) -> tuple[Merchant, Any, str]:
    shop, _, agent, grant_id = await shop_with_grant(
        registry, http, lambda r: api(r, ["pay"], limits=BUDGET)
    )
    return shop, agent, grant_id


async def _pay(shop: Merchant, agent: Any) -> httpx.Response:
    body = verify_body(agent, shop.resource + "/pay", action="pay", amount=PRICE)
    return await shop.verify(body)


async def test_a_spend_is_never_answered_allowed_while_no_replica_has_it(
    registry: RegistryClient,
    durable_http: httpx.AsyncClient,
    group: Group,
) -> None:
    _, replica, _ = group
    shop, agent, _ = await _shop(registry, durable_http)
    assert (await _pay(shop, agent)).json()["allowed"] is True
    replica.stall()
    try:
        refused = await _pay(shop, agent)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "temporarily_unavailable"
        assert refused.headers["retry-after"] == "1"
    finally:
        replica.resume()
    assert (await _pay(shop, agent)).json()["allowed"] is True


async def test_no_allowed_spend_is_lost_when_the_primary_is_killed(
    registry: RegistryClient,
    durable_http: httpx.AsyncClient,
    group: Group,
) -> None:
    primary, _, sentinel = group
    shop, agent, grant_id = await _shop(registry, durable_http)
    answers = [(await _pay(shop, agent)).json()["allowed"] for _ in range(20)]
    assert answers == [True] * 20
    primary.stop()  # SIGKILL right after the last answer
    await asyncio.to_thread(wait_for_failover, sentinel, primary.port)
    state: Any = registry.app.state.registry
    worker = Worker(state.cache, state.engine, state.sessions, clock=registry.clock)
    drained, errors = 0, []
    deadline = time.monotonic() + 10
    while drained < 20 and time.monotonic() < deadline:
        try:
            drained += await worker.drain_once(block_ms=50)
        except CacheUnavailable as exc:  # a pooled connection to the old primary
            errors.append(str(exc))
            await asyncio.sleep(0.05)
    assert drained == 20, (drained, errors[-3:])
    async with state.sessions() as session:
        total = await session.scalar(
            select(func.sum(SpendLedger.amount_minor)).where(SpendLedger.grant_id == grant_id)
        )
    assert total == 20 * 250  # every allowed spend is in the ledger
