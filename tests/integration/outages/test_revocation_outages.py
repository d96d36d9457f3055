"""Revocations made while Redis stalls, restarts or loses its data are never answered
active or allowed, during the outage or after it, and warm tokens work again within 2 s
(threat model, hardening rule 2). Each test starts its own redis-server on a free port."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest
from sqlalchemy.engine import make_url

from app.cache.redis import RedisCache
from app.registry.app import create_app as create_registry
from app.registry.services.revocation import run_heartbeats
from app.settings import Settings
from app.verifier.app import create_app as create_verifier
from app.worker.process import run_worker
from tests.support.processes import RedisServer, TcpProxy
from tests.support.registry import AgentClient, RegistryClient
from tests.support.verifier import Merchant, api, granted_agent, shop_with_grant, verify_body

RECOVERY = 2.0
BOUND = 1.0  # AGENTAUTH_REVOCATION_STALENESS_BOUND, the default


async def introspection(shop: Merchant, token: str) -> bool | None:
    """True/False from an introspection, None for a 503."""
    response = await shop.introspect(token)
    if response.status_code == 503:
        assert response.json()["error"] == "temporarily_unavailable"
        return None
    assert response.status_code == 200, response.text
    return bool(response.json()["active"])


async def never_active_while(
    shop: Merchant, token: str, outage: Callable[[asyncio.Event], Awaitable[object]]
) -> None:
    """Run ``outage`` while introspecting ``token`` in a loop. Once ``outage`` sets the
    event (its revocation was answered 200), no answer that started more than the staleness
    bound later is active: the view may lag by that bound, never more."""
    revoked = asyncio.Event()
    done = asyncio.Event()
    answers: list[bool | None] = []
    revoked_at = 0.0

    async def watch() -> None:
        nonlocal revoked_at
        while not done.is_set():
            if revoked.is_set() and not revoked_at:
                revoked_at = time.monotonic()
            late = bool(revoked_at) and time.monotonic() - revoked_at > BOUND
            answer = await introspection(shop, token)
            if late:
                answers.append(answer)
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    try:
        await outage(revoked)
    finally:
        done.set()
        await watcher
    assert True not in answers


async def recovers(
    shop: Merchant, warm: AgentClient, doomed: AgentClient, *, revoked: bool = True
) -> float:
    """Seconds until ``warm`` is served again (introspection and a /verify with a fresh
    proof); ``doomed`` is never active or allowed meanwhile, nor afterwards."""
    started = time.monotonic()
    url = shop.resource + "/orders"
    while time.monotonic() - started < RECOVERY:
        if revoked:
            assert await introspection(shop, doomed.access_token or "") in (False, None)
        if await introspection(shop, warm.access_token or ""):
            decision = await shop.verify(verify_body(warm, url, action="read"))
            if decision.status_code == 200 and decision.json()["allowed"]:
                if not revoked:
                    return time.monotonic() - started
                denied = await shop.verify(verify_body(doomed, url, action="read"))
                assert denied.json()["reason"] == "revoked"
                assert await introspection(shop, doomed.access_token or "") is False
                return time.monotonic() - started
            assert decision.status_code in (200, 503), decision.text
        await asyncio.sleep(0.02)
    raise AssertionError(f"warm token not served again within {RECOVERY} s")


async def two_grants(
    registry: RegistryClient, verifier_http: httpx.AsyncClient
) -> tuple[Merchant, AgentClient, AgentClient, str]:
    """One shop; an agent whose grant is revoked (and that grant) and a warm agent."""
    shop, _, doomed, grant_id = await shop_with_grant(registry, verifier_http)
    warm, _ = await granted_agent(registry, await registry.human(), [api(shop.resource)])
    assert await introspection(shop, doomed.access_token or "") is True
    assert await introspection(shop, warm.access_token or "") is True
    return shop, doomed, warm, grant_id


async def test_a_redis_stall_never_hides_a_revocation(
    registry: RegistryClient, verifier_http: httpx.AsyncClient, redis_process: RedisServer
) -> None:
    shop, doomed, warm, grant_id = await two_grants(registry, verifier_http)

    async def outage(revoked: asyncio.Event) -> None:
        redis_process.stall()
        try:
            response = await registry.admin("POST", f"/grants/{grant_id}/revoke")
            assert response.status_code == 200  # committed; the publish timed out
            revoked.set()
            await asyncio.sleep(1.5)
        finally:
            redis_process.resume()

    await never_active_while(shop, doomed.access_token or "", outage)
    await recovers(shop, warm, doomed)


async def test_a_redis_restart_never_hides_a_revocation(
    registry: RegistryClient, verifier_http: httpx.AsyncClient, redis_process: RedisServer
) -> None:
    shop, doomed, warm, grant_id = await two_grants(registry, verifier_http)

    async def outage(revoked: asyncio.Event) -> None:
        redis_process.stop()
        try:
            response = await registry.admin("POST", f"/grants/{grant_id}/revoke")
            assert response.status_code == 200
            revoked.set()
            await asyncio.sleep(1.5)
        finally:
            redis_process.start()  # same port, no data

    await never_active_while(shop, doomed.access_token or "", outage)
    await recovers(shop, warm, doomed)


async def test_a_redis_flush_never_hides_a_revocation(
    registry: RegistryClient, verifier_http: httpx.AsyncClient, redis_process: RedisServer
) -> None:
    shop, doomed, warm, grant_id = await two_grants(registry, verifier_http)
    cache = RedisCache(redis_process.url)

    async def outage(revoked: asyncio.Event) -> None:
        await cache.client.flushall()
        response = await registry.admin("POST", f"/grants/{grant_id}/revoke")
        assert response.status_code == 200
        revoked.set()
        await asyncio.sleep(1.5)

    try:
        await never_active_while(shop, doomed.access_token or "", outage)
    finally:
        await cache.close()
    await recovers(shop, warm, doomed)


async def test_a_verifier_cut_off_from_heartbeats_and_database_answers_503(
    registry: RegistryClient,
    verifier_http: httpx.AsyncClient,
    redis_process: RedisServer,
    settings: Settings,
    verifier_database_url: str,
) -> None:
    """Stale beyond the bound (no heartbeat, no database to confirm the view): every
    decision is 503, then warm tokens work again within 2 s of the outage's end."""
    if not verifier_database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server to cut off")
    shop, doomed, warm, _ = await two_grants(registry, verifier_http)
    proxy = TcpProxy(make_url(verifier_database_url).port or 5432)
    proxy.start()
    url = make_url(verifier_database_url).set(port=proxy.port).render_as_string(False)
    cut_off = create_verifier(settings.model_copy(update={"database_url": url}))
    try:
        async with cut_off.running():
            transport = httpx.ASGITransport(app=cut_off)
            async with httpx.AsyncClient(transport=transport, base_url="http://v2") as http:
                caller = Merchant(http, shop.resource, shop.client_id, shop.secret)
                assert await introspection(caller, warm.access_token or "") is True
                redis_process.stall()
                proxy.cut()
                try:
                    await asyncio.sleep(settings.revocation_staleness_bound + 0.3)
                    assert await introspection(caller, warm.access_token or "") is None
                    decision = await caller.verify(
                        verify_body(warm, shop.resource + "/orders", action="read")
                    )
                    assert decision.status_code == 503
                    ready = await http.get("/readyz")
                    assert ready.status_code == 503
                    assert ready.json()["checks"]["revocations"] is False
                finally:
                    redis_process.resume()
                    proxy.restore()
                await recovers(caller, warm, doomed, revoked=False)
    finally:
        proxy.stop()


async def test_the_registry_and_worker_stop_while_a_heartbeat_is_stuck_in_redis(
    settings: Settings, redis_process: RedisServer
) -> None:
    """Shutdown of the registry and the worker ends, within a bound, while their heartbeats
    are waiting for an answer from a stalled Redis."""
    registry = create_registry(settings)
    stop = asyncio.Event()
    lifespan = registry.router.lifespan_context(registry)
    await lifespan.__aenter__()
    running = asyncio.create_task(run_worker(settings, stop))
    await asyncio.sleep(0.3)  # both are beating
    redis_process.stall()
    try:
        await asyncio.sleep(0.3)  # a beat of each is now waiting for an answer
        stop.set()
        await asyncio.wait_for(lifespan.__aexit__(None, None, None), timeout=15)
        await asyncio.wait_for(running, timeout=15)
    finally:
        redis_process.resume()


async def test_a_heartbeat_loop_stops_on_its_event_at_any_moment(
    registry: RegistryClient,
) -> None:
    """Stopped at random moments, often in the middle of a publish, the loop always ends
    (a cancelled one can carry on: redis-py absorbs a cancellation during a command)."""
    assert registry.app is not None
    state = registry.app.state.registry
    for _ in range(40):
        stop = asyncio.Event()
        beating = asyncio.create_task(run_heartbeats(state.cache, state.sessions, 0.05, stop))
        await asyncio.sleep(random.uniform(0, 0.06))
        stop.set()
        await asyncio.wait_for(beating, timeout=5)
