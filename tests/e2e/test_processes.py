"""Registry, two verifiers and the worker as separate processes (``agentauth serve``), on
PostgreSQL (the verifiers through the read-only role and a proxy that can be cut) and a
private Redis that can be killed, restarted and flushed."""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from app.store.migrate import upgrade
from tests.support.clock import WallClock
from tests.support.databases import postgres_database, readonly_role
from tests.support.processes import RedisServer, Service, TcpProxy, free_port
from tests.support.registry import RegistryClient
from tests.support.verifier import Merchant, eventually, granted_agent, merchant, verify_body

ADMIN_TOKEN = "admin-" + "p" * 40


@dataclass
class Stack:
    registry: Service
    verifiers: list[Service]
    worker: Service
    redis: RedisServer
    proxy: TcpProxy
    database_url: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("stack")
    with postgres_database() as database_url, ExitStack() as cleanup:
        upgrade(database_url)
        role_url = make_url(cleanup.enter_context(readonly_role(database_url)))
        proxy = TcpProxy(role_url.port or 5432)
        proxy.start()
        readonly = role_url.set(host="127.0.0.1", port=proxy.port)
        redis = RedisServer(workdir)
        redis.start()
        common = {
            "AGENTAUTH_ISSUER": "http://localhost",
            "AGENTAUTH_REDIS_URL": redis.url,
            "AGENTAUTH_ADMIN_TOKEN": ADMIN_TOKEN,
            "AGENTAUTH_KEY_ENCRYPTION_KEY": base64.urlsafe_b64encode(
                secrets.token_bytes(32)
            ).decode(),
            "AGENTAUTH_CACHE_NAMESPACE": "e2e",
        }
        writer_env = {**common, "AGENTAUTH_DATABASE_URL": database_url}
        reader_env = {
            **common,
            "AGENTAUTH_DATABASE_URL": readonly.render_as_string(hide_password=False),
        }
        registry = Service("registry", writer_env, workdir / "registry.log", free_port())
        verifiers = [
            Service("verifier", reader_env, workdir / f"verifier{i}.log", free_port())
            for i in range(2)
        ]
        worker = Service("worker", writer_env, workdir / "worker.log")
        services = [registry, *verifiers, worker]
        try:
            for service in services:
                service.start()
            yield Stack(registry, verifiers, worker, redis, proxy, database_url)
        finally:
            for service in services:
                service.stop()
            redis.stop()
            proxy.stop()


@pytest.fixture
async def registry(stack: Stack) -> AsyncIterator[RegistryClient]:
    async with httpx.AsyncClient(base_url=stack.registry.url, timeout=10) as http:
        client = RegistryClient(
            http=http,
            app=None,
            clock=WallClock(),
            admin_token=ADMIN_TOKEN,
            base_url=stack.registry.url,
        )
        try:
            yield client
        finally:
            await client.close()


@pytest.fixture
async def verifiers(stack: Stack) -> AsyncIterator[list[httpx.AsyncClient]]:
    clients = [httpx.AsyncClient(base_url=v.url, timeout=10) for v in stack.verifiers]
    try:
        yield clients
    finally:
        for client in clients:
            await client.aclose()


def at(shop: Merchant, http: httpx.AsyncClient) -> Merchant:
    return Merchant(http, shop.resource, shop.client_id, shop.secret)


async def active(shop: Merchant, token: str) -> bool | None:
    """True/False from an introspection, None for a 503 (state not established)."""
    response = await shop.introspect(token)
    if response.status_code == 503:
        return None
    assert response.status_code == 200, response.text
    return bool(response.json()["active"])


async def test_revocation_reaches_every_verifier_process(
    registry: RegistryClient, verifiers: list[httpx.AsyncClient]
) -> None:
    shop = await merchant(registry, verifiers[0])
    alice = await registry.human()
    details = [{"type": "api", "locations": [shop.resource], "actions": ["read"]}]
    agent, grant_id = await granted_agent(registry, alice, details)
    token = agent.access_token or ""
    for http in verifiers:
        assert await active(at(shop, http), token) is True
    started = time.monotonic()
    assert (await registry.admin("POST", f"/grants/{grant_id}/revoke")).status_code == 200
    for http in verifiers:
        await eventually(lambda h=http: _is(at(shop, h), token, False), within=2.0)
    assert time.monotonic() - started < 2.0


async def _is(shop: Merchant, token: str, expected: bool) -> bool:
    return await active(shop, token) is expected


async def test_one_proof_sent_to_two_verifier_processes_is_accepted_once(
    registry: RegistryClient, verifiers: list[httpx.AsyncClient]
) -> None:
    shop = await merchant(registry, verifiers[0])
    alice = await registry.human()
    details = [{"type": "api", "locations": [shop.resource], "actions": ["read"]}]
    agent, _ = await granted_agent(registry, alice, details)
    for _ in range(5):
        body = verify_body(agent, shop.resource + "/x", action="read")
        responses = await asyncio.gather(*(at(shop, http).verify(body) for http in verifiers))
        reasons = sorted(r.json().get("reason", "allowed") for r in responses)
        assert reasons == ["allowed", "dpop_replay"]


async def _ledger_total(database_url: str, grant_id: str) -> int:
    connection = await asyncpg.connect(
        database_url.replace("postgresql+asyncpg://", "postgresql://")
    )
    try:
        total = await connection.fetchval(
            "SELECT coalesce(sum(amount_minor), 0) FROM spend_ledger WHERE grant_id = $1", grant_id
        )
    finally:
        await connection.close()
    return int(total)


async def test_killed_and_flushed_redis_never_resurrects_or_resets(
    stack: Stack, registry: RegistryClient, verifiers: list[httpx.AsyncClient]
) -> None:
    shop = await merchant(registry, verifiers[0])
    alice = await registry.human()
    budget = {"budget": {"value": "5.00", "currency": "EUR", "period": "day"}}
    details = [{"type": "api", "locations": [shop.resource], "actions": ["pay"], "limits": budget}]
    agent, grant_id = await granted_agent(registry, alice, details)
    doomed, _ = await granted_agent(registry, alice, details)
    doomed_jti = (await shop.introspect(doomed.access_token or "")).json()["jti"]
    revoked = await doomed.post("/revoke", doomed.form(token=doomed.access_token), dpop=None)
    assert revoked.status_code == 200
    for http in verifiers:
        await eventually(lambda h=http: _is(at(shop, h), doomed.access_token or "", False))

    async def pay(http: httpx.AsyncClient) -> str:
        amount = {"value": "1.00", "currency": "EUR"}
        body = verify_body(agent, shop.resource + "/pay", action="pay", amount=amount)
        response = await at(shop, http).verify(body)
        if response.status_code == 503:
            return "unavailable"
        decision = response.json()
        return "allowed" if decision["allowed"] else str(decision["reason"])

    assert [await pay(verifiers[i % 2]) for i in range(3)] == ["allowed"] * 3
    await eventually(lambda: _ledger_equals(stack.database_url, grant_id, 300))

    stack.redis.stop()  # killed: no answer may be "yes" while it is gone
    for http in verifiers:
        assert await active(at(shop, http), doomed.access_token or "") in (False, None)
        assert await pay(http) == "unavailable"
    stack.redis.start()  # back, empty
    for http in verifiers:
        await eventually(lambda h=http: _is(at(shop, h), agent.access_token or "", True), 10)
        assert await active(at(shop, http), doomed.access_token or "") is False
    # Redis came back empty: budgets are rebuilt from the ledger once the verifiers had time to
    # restore the spends they accepted lately (2 s, answered 503), never before.
    outcomes = [await settled_pay(pay, verifiers[0])]
    outcomes += [await pay(verifiers[i % 2]) for i in range(1, 3)]
    assert outcomes == ["allowed", "allowed", "budget_exhausted"], doomed_jti

    # Once the worker has drained them, spends are durable: a FLUSHALL forgets nothing.
    await eventually(lambda: _ledger_equals(stack.database_url, grant_id, 500))
    client = Redis.from_url(stack.redis.url)
    await client.flushall()
    await client.aclose()
    for http in verifiers:
        assert await active(at(shop, http), doomed.access_token or "") is False
        assert await settled_pay(pay, http) == "budget_exhausted"  # rebuilt from the ledger


async def settled_pay(pay: Any, http: httpx.AsyncClient, within: float = 10.0) -> str:
    """The first answer to a payment that is not 503 (while a budget cannot be rebuilt)."""
    deadline = asyncio.get_running_loop().time() + within
    while (outcome := await pay(http)) == "unavailable":
        assert asyncio.get_running_loop().time() < deadline, "still unavailable"
        await asyncio.sleep(0.1)
    return str(outcome)


async def _ledger_equals(database_url: str, grant_id: str, expected: int) -> bool:
    return await _ledger_total(database_url, grant_id) == expected


async def test_warm_verifier_survives_a_stopped_database_and_registry(
    stack: Stack, registry: RegistryClient, verifiers: list[httpx.AsyncClient]
) -> None:
    shop = await merchant(registry, verifiers[0])
    alice = await registry.human()
    details = [{"type": "api", "locations": [shop.resource], "actions": ["read"]}]
    agent, _ = await granted_agent(registry, alice, details)
    token = agent.access_token or ""
    for http in verifiers:
        assert await active(at(shop, http), token) is True
    stack.proxy.cut()
    stack.registry.stop()
    for http in verifiers:
        assert await active(at(shop, http), token) is True
        body = verify_body(agent, shop.resource + "/x", action="read")
        decision = (await at(shop, http).verify(body)).json()
        assert decision["allowed"] is True, decision
        jwks = await http.get("/.well-known/jwks.json")
        assert jwks.status_code == 200
        assert jwks.json()["keys"]
