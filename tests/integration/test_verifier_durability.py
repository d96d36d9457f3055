"""What survives: spends reach the Postgres ledger, budgets and revocations outlive a cache
that lost its data, unpublished revocations are announced again, and a dropped subscription
resynchronises."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select

from app.cache.redis import SEED_GRACE, RedisCache
from app.settings import Settings
from app.store.models import Revocation, SpendLedger
from app.verifier.app import VerifierApp
from app.verifier.app import create_app as create_verifier
from app.worker.process import Worker
from tests.support.registry import RegistryClient
from tests.support.verifier import (
    Merchant,
    api,
    eventually,
    is_inactive,
    shop_with_grant,
    verify_body,
)

EUR = "EUR"


def worker_for(registry: RegistryClient) -> Worker:
    state: Any = registry.app.state.registry
    return Worker(state.cache, state.engine, state.sessions, clock=registry.clock)


async def wipe(settings: Settings) -> None:
    """Lose every key of this deployment, as FLUSHALL or a restart without persistence does."""
    cache = RedisCache(settings.redis_url)
    try:
        keys = [key async for key in cache.client.scan_iter(f"{settings.cache_namespace}:*")]
        if keys:
            await cache.client.delete(*keys)
    finally:
        await cache.close()


async def test_spends_reach_the_ledger_and_rebuild_a_lost_budget(
    registry: RegistryClient,
    verifier: VerifierApp,
    verifier_http: httpx.AsyncClient,
    settings: Settings,
) -> None:
    budget = {"budget": {"value": "5.00", "currency": EUR, "period": "day"}}
    shop, _, agent, grant_id = await shop_with_grant(
        registry, verifier_http, lambda r: api(r, ["pay"], limits=budget)
    )
    url = shop.resource + "/pay"

    async def pay(iat: int | None = None) -> str:
        return await paid(shop, agent, url, iat)

    assert [await pay() for _ in range(3)] == ["allowed"] * 3
    worker = worker_for(registry)
    assert await worker.drain_once(block_ms=10) == 3
    assert await worker.drain_once(block_ms=10) == 0  # acknowledged: nothing twice
    sessions: Any = registry.app.state.registry.sessions
    async with sessions() as session:
        total = await session.scalar(
            select(func.sum(SpendLedger.amount_minor)).where(SpendLedger.grant_id == grant_id)
        )
    assert total == 300

    before_loss = int(registry.clock())
    registry.clock.advance(1)
    await wipe(settings)
    # A proof made before the loss may have been used already: refused, never guessed.
    assert await pay(iat=before_loss) == "dpop_replay"
    # Other verifiers restore their recent spends first: no budget is rebuilt for a moment.
    assert await pay() == "unavailable"
    registry.clock.advance(SEED_GRACE)
    # The budget counter is rebuilt from the ledger: 3.00 of 5.00 spent, two more fit.
    assert [await pay() for _ in range(3)] == ["allowed", "allowed", "budget_exhausted"]


async def paid(shop: Merchant, agent: Any, url: str, iat: int | None = None) -> str:
    amount = {"value": "1.00", "currency": EUR}
    body = verify_body(agent, url, action="pay", amount=amount, iat=iat)
    response = await shop.verify(body)
    if response.status_code == 503:
        return "unavailable"
    decision = response.json()
    return "allowed" if decision["allowed"] else str(decision["reason"])


async def test_spends_not_yet_in_the_ledger_outlive_a_cache_that_lost_its_data(
    registry: RegistryClient, verifier_http: httpx.AsyncClient, settings: Settings
) -> None:
    """The cache loses its data after three spends were answered and before the worker wrote
    them: the verifier that accepted them restores them into the stream and counts them, so
    the ledger gets all three and the rebuilt budget has room for two more, not five."""
    budget = {"budget": {"value": "5.00", "currency": EUR, "period": "day"}}
    shop, _, agent, grant_id = await shop_with_grant(
        registry, verifier_http, lambda r: api(r, ["pay"], limits=budget)
    )
    url = shop.resource + "/pay"
    assert [await paid(shop, agent, url) for _ in range(3)] == ["allowed"] * 3
    registry.clock.advance(1)
    await wipe(settings)  # nothing drained yet
    assert await paid(shop, agent, url) == "unavailable"  # noticed, restored, not seeded yet
    worker = worker_for(registry)
    assert await worker.drain_once(block_ms=10) == 3
    sessions: Any = registry.app.state.registry.sessions
    async with sessions() as session:
        total = await session.scalar(
            select(func.sum(SpendLedger.amount_minor)).where(SpendLedger.grant_id == grant_id)
        )
    assert total == 300
    registry.clock.advance(SEED_GRACE)
    outcomes = [await paid(shop, agent, url) for _ in range(3)]
    assert outcomes == ["allowed", "allowed", "budget_exhausted"]
    assert await worker.drain_once(block_ms=10) == 2


async def test_revocations_outlive_a_cache_that_lost_its_data(
    registry: RegistryClient,
    verifier_http: httpx.AsyncClient,
    settings: Settings,
    verifier_database_url: str,
) -> None:
    shop, _, agent, grant_id = await shop_with_grant(registry, verifier_http)
    token = agent.access_token or ""
    assert (await registry.admin("POST", f"/grants/{grant_id}/revoke")).status_code == 200

    async def revoked_at(http: httpx.AsyncClient) -> bool:
        caller = Merchant(http, shop.resource, shop.client_id, shop.secret)
        return await is_inactive(caller, token)

    await eventually(lambda: revoked_at(verifier_http))
    await wipe(settings)
    assert await revoked_at(verifier_http)  # the running verifier keeps its set
    fresh = create_verifier(
        settings.model_copy(update={"database_url": verifier_database_url}), clock=registry.clock
    )
    async with fresh.running():
        transport = httpx.ASGITransport(app=fresh)
        async with httpx.AsyncClient(transport=transport, base_url="http://v2") as http:
            assert await revoked_at(http)  # a new verifier loads the set from the database


async def test_unpublished_revocations_are_announced_by_the_worker(
    registry: RegistryClient, verifier_http: httpx.AsyncClient
) -> None:
    shop, _, agent, _ = await shop_with_grant(registry, verifier_http)
    token = agent.access_token or ""
    jti = (await shop.introspect(token)).json()["jti"]
    sessions: Any = registry.app.state.registry.sessions
    now = int(registry.clock())
    async with sessions() as session, session.begin():  # committed, but the publish was lost
        session.add(Revocation(kind="token", subject=jti, created_at=now, expires_at=now + 300))
    registry.clock.advance(3)
    await worker_for(registry).housekeeping()
    await eventually(lambda: is_inactive(shop, token))
    async with sessions() as session:
        pending = await session.scalar(
            select(func.count()).where(Revocation.published_at.is_(None))
        )
    assert pending == 0


async def test_a_dropped_subscription_resynchronises(
    registry: RegistryClient,
    verifier: VerifierApp,
    verifier_http: httpx.AsyncClient,
    settings: Settings,
) -> None:
    shop, _, agent, grant_id = await shop_with_grant(registry, verifier_http)
    token = agent.access_token or ""
    assert (await shop.introspect(token)).json()["active"] is True
    cache = RedisCache(settings.redis_url)
    try:
        await cache.client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    finally:
        await cache.close()
    assert (await registry.admin("POST", f"/grants/{grant_id}/revoke")).status_code == 200

    async def answered_inactive() -> bool:
        response = await shop.introspect(token)
        assert response.status_code in (200, 503), response.text  # 503 while resyncing
        return bool(response.status_code == 200 and response.json() == {"active": False})

    await eventually(answered_inactive)


async def test_the_verifier_role_reads_only_what_it_needs(verifier_database_url: str) -> None:
    if not verifier_database_url.startswith("postgresql"):
        pytest.skip("SQLite has no roles")
    plain = verifier_database_url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(plain)
    try:
        assert await connection.fetchval("SELECT count(*) FROM revocations") >= 0
        assert await connection.fetchval("SELECT count(activates_at) FROM signing_keys") >= 0
        forbidden = [
            "SELECT sealed_private_key FROM signing_keys",
            "SELECT created_at FROM revocations",  # not in any of the verifier's queries
            "SELECT token_hash FROM refresh_tokens",
            "SELECT public_key FROM passkeys",
            "SELECT hash FROM audit_events",
            "SELECT id_hash FROM browser_sessions",
        ]
        for statement in forbidden:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.fetchval(statement)
        writes = [
            "INSERT INTO revocations (kind, subject, created_at) VALUES ('grant', 'x', 1)",
            "DELETE FROM revocations",
            "UPDATE resource_servers SET secret_hash = 'x'",
        ]
        for statement in writes:
            with pytest.raises(
                (asyncpg.InsufficientPrivilegeError, asyncpg.ReadOnlySQLTransactionError)
            ):
                await connection.execute(statement)
    finally:
        await connection.close()
