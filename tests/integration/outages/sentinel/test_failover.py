"""Redis Sentinel: the registry and the verifier find the Redis primary through a Sentinel
(``redis+sentinel://``). The primary is killed (SIGKILL) under steady load while a grant is
revoked; the Sentinel promotes the replica and both processes follow it. Warm tokens are
served again, the revocation is never answered active past the staleness bound, and no
answer is a server error other than 503."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import httpx

from tests.integration.outages.test_revocation_outages import (
    never_active_while,
    recovers,
    two_grants,
)
from tests.support.registry import RegistryClient
from tests.support.sentinel import Group, wait_for_failover
from tests.support.verifier import verify_body


async def test_a_failover_under_load_keeps_every_promise(
    registry: RegistryClient,
    verifier_http: httpx.AsyncClient,
    group: Group,
    record_property: Callable[[str, object], None],
) -> None:
    primary, _, sentinel = group
    shop, doomed, warm, grant_id = await two_grants(registry, verifier_http)
    statuses: Counter[int] = Counter()
    unavailable: list[float] = []  # when each 503 was answered
    stop = asyncio.Event()
    killed_at = 0.0

    async def load() -> None:
        """Introspection and /verify for the warm agent, back to back, all along."""
        url = shop.resource + "/orders"
        while not stop.is_set():
            introspected = await shop.introspect(warm.access_token or "")
            decision = await shop.verify(verify_body(warm, url, action="read"))
            for answer in (introspected, decision):
                statuses[answer.status_code] += 1
                if answer.status_code == 503:
                    unavailable.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def outage(revoked: asyncio.Event) -> None:
        nonlocal killed_at
        killed_at = time.monotonic()
        primary.stop()  # SIGKILL: no shutdown, no last replication
        response = await registry.admin("POST", f"/grants/{grant_id}/revoke")
        assert response.status_code == 200  # committed; the publish failed
        revoked.set()
        failover = await asyncio.to_thread(wait_for_failover, sentinel, primary.port)
        record_property("failover_seconds", round(failover, 2))
        record_property("killed_to_promoted_seconds", round(time.monotonic() - killed_at, 2))
        await asyncio.sleep(1.5)

    loader = asyncio.create_task(load())
    try:
        await never_active_while(shop, doomed.access_token or "", outage)
        recovery = await recovers(shop, warm, doomed)
    finally:
        stop.set()
        await loader
    record_property("recovery_after_outage_seconds", round(recovery, 2))
    record_property("answers", dict(statuses))
    if unavailable:
        record_property("last_503_after_kill_seconds", round(unavailable[-1] - killed_at, 2))
    assert not [status for status in statuses if status >= 500 and status != 503], statuses
    assert statuses[200] > 0
