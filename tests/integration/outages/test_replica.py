"""The verifier on a streaming replica (a real one: a private primary and a hot standby made
with pg_basebackup): cold reads come from the replica; a replica that lags never hides a
revocation (the verifier answers 503 until the replica has replayed the primary's last
heartbeat, then recovers); a stopped replica fails closed, then recovers. The registry uses
the primary only."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import make_url

from app.store.migrate import upgrade
from tests.integration.outages.test_revocation_outages import (
    RECOVERY,
    introspection,
    never_active_while,
    recovers,
)
from tests.support.databases import readonly_role
from tests.support.postgres import Cluster, execute, primary_and_replica, wait_for_replay
from tests.support.processes import RedisServer
from tests.support.registry import AgentClient, RegistryClient
from tests.support.verifier import Merchant, api, granted_agent, shop_with_grant


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[Cluster, Cluster]]:
    with primary_and_replica() as pair:
        yield pair


@pytest.fixture(scope="module")
def database_url(clusters: tuple[Cluster, Cluster]) -> str:
    primary, _ = clusters
    upgrade(primary.url())
    return primary.url()


@pytest.fixture(scope="module")
def verifier_database_url(database_url: str, clusters: tuple[Cluster, Cluster]) -> Iterator[str]:
    """The read-only role, created on the primary, used on the replica."""
    _, replica = clusters
    with readonly_role(database_url) as url:
        yield make_url(url).set(port=replica.port).render_as_string(hide_password=False)


async def _ready(
    registry: RegistryClient, verifier_http: httpx.AsyncClient, clusters: tuple[Cluster, Cluster]
) -> tuple[Merchant, AgentClient, AgentClient, str]:
    """One shop, an agent whose grant the test revokes (and that grant), and a warm agent,
    both introspected active once the replica holds what the registry just wrote (a resource
    server the replica has not replayed yet is unknown to the verifier: 401)."""
    primary, replica = clusters
    shop, _, doomed, grant_id = await shop_with_grant(registry, verifier_http)
    warm, _ = await granted_agent(registry, await registry.human(), [api(shop.resource)])
    await wait_for_replay(primary, replica)
    assert await introspection(shop, doomed.access_token or "") is True
    assert await introspection(shop, warm.access_token or "") is True
    return shop, doomed, warm, grant_id


async def test_cold_reads_come_from_the_replica(
    registry: RegistryClient, verifier_http: httpx.AsyncClient, clusters: tuple[Cluster, Cluster]
) -> None:
    shop, _doomed, warm, _ = await _ready(registry, verifier_http, clusters)
    _, replica = clusters
    assert await execute(replica.url(), "SELECT pg_is_in_recovery()") is True
    assert await introspection(shop, warm.access_token or "") is True


async def test_a_lagging_replica_never_hides_a_revocation(
    registry: RegistryClient,
    verifier_http: httpx.AsyncClient,
    clusters: tuple[Cluster, Cluster],
    redis_process: RedisServer,
) -> None:
    """Replay paused, then the revocation committed while Redis is down (so neither the
    event nor the cache's log carries it, and the cache comes back empty): the verifier can
    learn it only from the database, and the replica has not seen it. The verifier must not
    take the replica's silence for "not revoked"."""
    shop, doomed, warm, grant_id = await _ready(registry, verifier_http, clusters)
    primary, replica = clusters

    async def outage(revoked: asyncio.Event) -> None:
        await execute(replica.url(), "SELECT pg_wal_replay_pause()")
        try:
            redis_process.stop()
            try:
                response = await registry.admin("POST", f"/grants/{grant_id}/revoke")
                assert response.status_code == 200  # committed on the primary
                revoked.set()
            finally:
                redis_process.start()  # same port, no data
            await asyncio.sleep(2.0)
            # replay still paused: by now the answer is 503, never a stale "active"
            assert await introspection(shop, doomed.access_token or "") is None
        finally:
            await execute(replica.url(), "SELECT pg_wal_replay_resume()")

    await never_active_while(shop, doomed.access_token or "", outage)
    await wait_for_replay(primary, replica)
    await recovers(shop, warm, doomed)


async def test_a_stopped_replica_fails_closed_and_recovers(
    registry: RegistryClient,
    verifier_http: httpx.AsyncClient,
    clusters: tuple[Cluster, Cluster],
) -> None:
    shop, _doomed, warm, _ = await _ready(registry, verifier_http, clusters)
    primary, replica = clusters
    replica.stop()
    try:
        # warm tokens need no database; a token the verifier has not seen needs the keys
        # and the grant it already holds, so a new caller is the cold read that must fail
        assert await introspection(shop, warm.access_token or "") is True
        stranger = await registry.resource_server("https://stranger.example.com/api")
        other = Merchant(
            verifier_http, stranger["resource"], stranger["client_id"], stranger["client_secret"]
        )
        refused = await other.introspect(warm.access_token or "")
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"] == "temporarily_unavailable"
    finally:
        replica.start()
    await wait_for_replay(primary, replica)
    deadline = time.monotonic() + RECOVERY  # the pool's broken connections are discarded first
    while (again := await other.introspect(warm.access_token or "")).status_code == 503:
        assert time.monotonic() < deadline, "the verifier did not read the replica again"
        await asyncio.sleep(0.05)
    assert again.status_code == 200, again.text
    assert await introspection(shop, warm.access_token or "") is True
