"""Fault suite: AgentAuth's promises checked from the data while processes die and servers
fail under a steady mixed load.

The stack is real and separate: two registries, two verifiers and the worker
(``agentauth serve``), a private PostgreSQL cluster and a private Redis (append-only file,
``appendfsync always``), all on 127.0.0.1. The registries reach PostgreSQL and the verifiers
reach Redis through TCP proxies the suite can cut. A load balancer's part is played by the
driver: a request whose connection is refused goes to the other replica.

Each fault is one phase with grants of its own: load for ``--steady`` seconds, the fault
(one at a time), load for ``--observe`` seconds after it ended, then the checks:

* no ``/verify``, ``/introspect`` or ``/token`` said yes for a token of a grant whose
  revocation had been answered 200 more than ``--propagation-bound`` before it was asked;
* the ledger's total per grant never exceeds the budget, and every spend ``/verify``
  allowed is in it (the ledger holds at least the allowed spends and at most those plus the
  ones whose answer was lost or a 503);
* every ``/token`` 200 has its audit event, and ``agentauth audit verify`` passes;
* no 5xx other than 503, and no 503 or failed request later than ``--recovery-bound``
  seconds after the fault ended; the recovery time itself is reported.

    .venv/bin/python benchmarks/chaos.py                      # every fault, full rates
    .venv/bin/python benchmarks/chaos.py --faults redis-stall,cut-registry-postgres
    .venv/bin/python benchmarks/chaos.py --scale 0.3 --json   # a third of the rates

It stops by itself (every phase is bounded) and exits 1 when an invariant does not hold.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import redis
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from token_endpoint import (  # noqa: E402
    ACCESS,
    CIBA,
    EXCHANGE,
    Bench,
    approve_grant,
    bootstrap,
)

from app.store.migrate import upgrade  # noqa: E402
from app.store.roles import ensure_readonly_role  # noqa: E402
from tests.support.postgres import Cluster, private_cluster  # noqa: E402
from tests.support.processes import RedisServer, Service, TcpProxy, free_port  # noqa: E402

SHOP = "https://shop.chaos.example/api"  # the resource server the load pays at
PAY_URL = SHOP + "/pay"
BUDGET_MINOR = 300  # 3.00 EUR a day per grant: spends of 0.01 to 0.20 exhaust it in a phase
MAX_IN_FLIGHT = 400  # per stream; past it a scheduled request is recorded as "skipped"
TIMEOUT = 5.0  # the driver's per-request timeout: a hung answer is a failure, never a wait
FAULTS = (
    "kill-registry",
    "kill-verifier",
    "kill-worker",
    "redis-kill",
    "redis-flushall",
    "redis-stall",
    "redis-full",
    "postgres-restart",
    "postgres-read-only",
    "cut-verifier-redis",
    "cut-registry-postgres",
)


@dataclass
class Config:
    verify_rate: float = 300.0
    introspect_rate: float = 300.0
    token_rate: float = 30.0
    revoke_rate: float = 2.0
    steady: float = 3.0
    outage: float = 5.0  # how long a stall, a cut or a write failure lasts
    observe: float = 8.0
    recovery_bound: float = 5.0
    propagation_bound: float = 0.1
    spend_grants: int = 6
    faults: tuple[str, ...] = FAULTS
    seed: int = 7

    def scaled(self, factor: float) -> Config:
        rates = {
            name: getattr(self, name) * factor
            for name in ("verify_rate", "introspect_rate", "token_rate", "revoke_rate")
        }
        return Config(**{**asdict(self), **rates})


# --- the stack ------------------------------------------------------------------------------


@dataclass
class Stack:
    registries: list[Service]
    verifiers: list[Service]
    worker: Service
    redis: RedisServer
    postgres: Cluster
    database_url: str
    registry_postgres: TcpProxy  # what the registries connect through
    verifier_redis: TcpProxy  # what the verifiers connect through
    merchant_auth: str = ""
    env: dict[str, str] = field(default_factory=dict)

    @property
    def processes(self) -> list[Service]:
        return [*self.registries, *self.verifiers, self.worker]


@contextmanager
def running_stack(workdir: Path, staleness_bound: float = 0.1) -> Iterator[Stack]:
    with ExitStack() as cleanup:
        postgres = cleanup.enter_context(private_cluster())
        asyncio.run(_execute(postgres.url(), "CREATE DATABASE agentauth"))
        database_url = postgres.url(database="agentauth")
        upgrade(database_url)
        role, password = f"agentauth_ro_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
        asyncio.run(ensure_readonly_role(database_url, role, password))
        readonly = make_url(database_url).set(username=role, password=password)
        redis_server = RedisServer(workdir, persistent=True)
        redis_server.start()
        cleanup.callback(redis_server.stop)
        registry_postgres, verifier_redis = TcpProxy(postgres.port), TcpProxy(redis_server.port)
        for proxy in (registry_postgres, verifier_redis):
            proxy.start()
            cleanup.callback(proxy.stop)
        ports = [free_port() for _ in range(4)]
        issuer = f"http://127.0.0.1:{ports[0]}"
        common = {
            "AGENTAUTH_ISSUER": issuer,
            "AGENTAUTH_VERIFIER_URL": f"http://127.0.0.1:{ports[2]}",
            "AGENTAUTH_REDIS_URL": redis_server.url,
            "AGENTAUTH_ADMIN_TOKEN": secrets.token_urlsafe(32),
            "AGENTAUTH_CACHE_NAMESPACE": "chaos",
            "AGENTAUTH_KEY_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "AGENTAUTH_RATE_LIMIT_SCALE": "10000",
            "AGENTAUTH_ACCESS_TOKEN_TTL": "3600",
            "AGENTAUTH_LOG_LEVEL": "WARNING",
            # A verifier not confirmed current for 100 ms answers 503: the propagation bound
            # the suite checks is the verifier's own promise, whatever fault stops the push.
            "AGENTAUTH_REVOCATION_HEARTBEAT_INTERVAL": f"{staleness_bound * 0.3:.3f}",
            "AGENTAUTH_REVOCATION_STALENESS_BOUND": str(staleness_bound),
        }
        through_proxy = make_url(database_url).set(port=registry_postgres.port)
        registry_env = {**common, "AGENTAUTH_DATABASE_URL": through_proxy.render_as_string(False)}
        verifier_env = {
            **common,
            "AGENTAUTH_DATABASE_URL": readonly.render_as_string(False),
            "AGENTAUTH_REDIS_URL": f"redis://127.0.0.1:{verifier_redis.port}/0",
        }
        worker_env = {**common, "AGENTAUTH_DATABASE_URL": database_url}
        registries = [
            Service("registry", registry_env, workdir / f"registry{i}.log", ports[i])
            for i in range(2)
        ]
        verifiers = [
            Service("verifier", verifier_env, workdir / f"verifier{i}.log", ports[2 + i])
            for i in range(2)
        ]
        worker = Service("worker", worker_env, workdir / "worker.log")
        stack = Stack(
            registries, verifiers, worker, redis_server, postgres, database_url,
            registry_postgres, verifier_redis, env=common,
        )  # fmt: skip
        for service in stack.processes:
            service.start()
            cleanup.callback(service.stop)
        yield stack


async def _execute(url: str, statement: str, *args: Any) -> Any:
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return await connection.fetch(statement, *args)
    finally:
        await connection.close()


# --- grants and the driver's view of them ---------------------------------------------------


@dataclass
class Grant:
    id: str
    tokens: list[str]
    refresh_token: str | None
    victim: bool  # revoked during its phase
    refreshing: bool = False
    revoked_at: float | None = None  # when the revocation's 200 arrived


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def approved_grants(bench: Bench, count: int, victims: int) -> list[Grant]:
    details = [
        {
            "type": "api",
            "locations": [SHOP],
            "actions": ["read", "pay"],
            "limits": {
                "max_amount": {"value": "1.00", "currency": "EUR"},
                "budget": {
                    "value": f"{BUDGET_MINOR / 100:.2f}",
                    "currency": "EUR",
                    "period": "day",
                },
            },
        }
    ]
    grants = []
    for index in range(count):
        issued = bench.token(grant_type=CIBA, auth_req_id=approve_grant(bench, details))
        access = issued["access_token"]
        grants.append(
            Grant(_claims(access)["grant_id"], [access], issued["refresh_token"], index < victims)
        )
    return grants


# --- records --------------------------------------------------------------------------------


@dataclass
class Record:
    kind: str  # verify, introspect, refresh, exchange, revoke
    grant: str
    sent: float  # time.monotonic() when it was sent
    done: float
    outcome: str  # yes, no, 503, failed (no answer), 5xx:<status>, error:<status>, skipped
    reason: str = ""  # why a "no": the decision's reason, the token endpoint's error
    amount: int = 0  # minor units asked for at /verify
    jti: str = ""  # the access token a /token 200 issued


class Driver:
    """Sends one phase's mixed load and records every answer."""

    def __init__(self, stack: Stack, bench: Bench, grants: list[Grant], config: Config) -> None:
        self.stack, self.bench, self.grants, self.config = stack, bench, grants, config
        self.records: list[Record] = []
        self.random = random.Random(config.seed)
        self.victims = [grant for grant in grants if grant.victim]
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        self.registries = [
            httpx.AsyncClient(base_url=s.url, timeout=TIMEOUT, limits=limits)
            for s in stack.registries
        ]
        self.verifiers = [
            httpx.AsyncClient(base_url=s.url, timeout=TIMEOUT, limits=limits)
            for s in stack.verifiers
        ]
        self.turn = 0
        self.until = float("inf")  # the load stops at this time.monotonic(); set while running

    @property
    def issued(self) -> list[str]:
        """The ``jti`` of every access token ``/token`` issued in this phase."""
        return [r.jti for r in self.records if r.jti]

    async def close(self) -> None:
        for client in (*self.registries, *self.verifiers):
            await client.aclose()

    async def _send(
        self, pool: list[httpx.AsyncClient], method: str, path: str, **kwargs: Any
    ) -> httpx.Response | None:
        """One request, to the next replica; a refused connection (nothing was sent) goes to
        the other one, as a load balancer would. ``None``: no answer."""
        self.turn += 1
        for attempt in range(2):
            client = pool[(self.turn + attempt) % len(pool)]
            try:
                return await client.request(method, path, **kwargs)
            except httpx.ConnectError:
                continue
            except httpx.HTTPError:
                return None
        return None

    def _record(
        self, kind: str, grant: str, sent: float, response: httpx.Response | None,
        yes: Callable[[httpx.Response], bool], **extra: Any,
    ) -> Record:  # fmt: skip
        if response is None:
            outcome = "failed"
        elif response.status_code == 503:
            outcome = "503"
        elif response.status_code >= 500:
            outcome = f"5xx:{response.status_code}"
        elif response.status_code == 200:
            outcome = "yes" if yes(response) else "no"
        elif response.status_code in (400, 401) and kind in ("refresh", "exchange"):
            outcome = "no"  # refused by the token endpoint (a revoked grant, a spent token)
        else:
            outcome = f"error:{response.status_code}"
        reason = ""
        if outcome == "no" and response is not None:
            body = response.json()
            reason = str(body.get("reason") or body.get("error") or "inactive")
            if kind in ("refresh", "exchange"):
                reason += f" ({body.get('error_description', '')[:60]})"
        record = Record(kind, grant, sent, time.monotonic(), outcome, reason=reason, **extra)
        self.records.append(record)
        return record

    def _pick(self) -> tuple[Grant, str]:
        grant = self.random.choice(self.grants)
        return grant, self.random.choice(grant.tokens)

    async def verify(self) -> None:
        grant, token = self._pick()
        amount = self.random.randint(1, 20)
        proof = self.bench.agent.dpop(
            htm="POST", htu=PAY_URL, iat=int(time.time()), access_token=token
        )
        body = {
            "token": token, "dpop": proof, "method": "POST", "url": PAY_URL, "action": "pay",
            "amount": {"value": f"{amount / 100:.2f}", "currency": "EUR"},
        }  # fmt: skip
        headers = {"Authorization": self.stack.merchant_auth}
        sent = time.monotonic()
        response = await self._send(self.verifiers, "POST", "/verify", json=body, headers=headers)
        self._record("verify", grant.id, sent, response, _allowed, amount=amount)

    async def introspect(self) -> None:
        grant, token = self._pick()
        headers = {
            "Authorization": self.stack.merchant_auth,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        sent = time.monotonic()
        response = await self._send(
            self.verifiers, "POST", "/introspect", content=urlencode({"token": token}),
            headers=headers,
        )  # fmt: skip
        self._record("introspect", grant.id, sent, response, _active)

    async def token(self) -> None:
        """Refresh (rotation) and token exchange, in turn."""
        self.turn += 1
        chains = [g for g in self.grants if g.refresh_token is not None and not g.refreshing]
        if self.turn % 2 and chains:
            grant = self.random.choice(chains)
            params = {"grant_type": "refresh_token", "refresh_token": grant.refresh_token}
            kind = "refresh"
        else:
            grant, subject = self._pick()
            params = {
                "grant_type": EXCHANGE, "subject_token": subject,
                "subject_token_type": ACCESS, "resource": SHOP,
            }  # fmt: skip
            kind = "exchange"
        headers = {"Content-Type": "application/x-www-form-urlencoded", "DPoP": self.bench.proof()}
        grant.refreshing = grant.refreshing or kind == "refresh"
        sent = time.monotonic()
        response = await self._send(
            self.registries, "POST", "/token", content=urlencode(self.bench.form(**params)),
            headers=headers,
        )  # fmt: skip
        issued = response.json() if response is not None and response.status_code == 200 else {}
        jti = _claims(issued["access_token"])["jti"] if issued else ""
        self._record(kind, grant.id, sent, response, lambda _: True, jti=jti)
        if issued:
            grant.tokens.append(issued["access_token"])
        if kind == "refresh":
            # A lost answer may have rotated the token: using the old one again would be a
            # reuse (and revoke the grant), so the chain ends unless the answer arrived.
            grant.refresh_token = issued.get("refresh_token")
            grant.refreshing = False

    async def revoke(self) -> None:
        if not self.victims:
            return
        grant = self.victims.pop(0)
        headers = {"Authorization": f"Bearer {self.stack.env['AGENTAUTH_ADMIN_TOKEN']}"}
        sent = time.monotonic()
        response = await self._send(
            self.registries, "POST", f"/admin/grants/{grant.id}/revoke", headers=headers
        )
        record = self._record("revoke", grant.id, sent, response, lambda _: True)
        if record.outcome == "yes":
            grant.revoked_at = record.done

    async def run(self) -> None:
        streams = [
            (self.config.verify_rate, self.verify, "verify"),
            (self.config.introspect_rate, self.introspect, "introspect"),
            (self.config.token_rate, self.token, "token"),
            (self.config.revoke_rate, self.revoke, "revoke"),
        ]
        await asyncio.gather(
            *(self._paced(rate, action, kind) for rate, action, kind in streams if rate)
        )

    async def _paced(self, rate: float, action: Callable[[], Awaitable[None]], kind: str) -> None:
        """Open loop: request ``i`` starts at ``start + i / rate`` whatever the answers."""
        in_flight: set[asyncio.Task[None]] = set()
        start, index = time.monotonic(), 0
        while (at := start + index / rate) < self.until:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            if len(in_flight) < MAX_IN_FLIGHT:
                task = asyncio.create_task(action())
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            else:
                now = time.monotonic()
                self.records.append(Record(kind, "", now, now, "skipped"))
            index += 1
        if in_flight:
            await asyncio.wait(in_flight, timeout=TIMEOUT + 1)


def _allowed(response: httpx.Response) -> bool:
    return bool(response.json().get("allowed"))


def _active(response: httpx.Response) -> bool:
    return bool(response.json().get("active"))


# --- faults ---------------------------------------------------------------------------------


def _redis_client(stack: Stack) -> redis.Redis:
    return redis.Redis(port=stack.redis.port, socket_timeout=5)


def _redis_command(stack: Stack, *command: Any) -> None:
    client = _redis_client(stack)
    try:
        client.execute_command(*command)
    finally:
        client.close()


def _postgres_read_only(stack: Stack, on: bool) -> None:
    statements = ["SET default_transaction_read_only = off"]
    if on:
        statements.append("ALTER SYSTEM SET default_transaction_read_only = on")
    else:
        statements.append("ALTER SYSTEM RESET default_transaction_read_only")

    async def apply() -> None:
        connection = await asyncpg.connect(stack.postgres.url().replace("+asyncpg", ""))
        try:
            for statement in statements:
                await connection.execute(statement)
            await connection.execute("SELECT pg_reload_conf()")
        finally:
            await connection.close()

    asyncio.run(apply())


def inject(stack: Stack, fault: str, outage: float) -> str:
    """Inject ``fault`` and end it (restart, resume, restore); returns what was done."""
    if fault.startswith("kill-"):
        service = {
            "kill-registry": stack.registries[0],
            "kill-verifier": stack.verifiers[0],
            "kill-worker": stack.worker,
        }[fault]
        service.kill()
        service.start()
        return f"SIGKILL to {service.name} (one of its replicas), restarted at once"
    if fault == "redis-kill":
        assert stack.redis.process is not None
        stack.redis.process.kill()
        stack.redis.process.wait(timeout=10)
        stack.redis.start()
        return "SIGKILL to redis-server, restarted from its append-only file"
    if fault == "redis-flushall":
        _redis_command(stack, "FLUSHALL")
        return "FLUSHALL: every key in Redis deleted"
    if fault == "postgres-restart":
        stack.postgres.restart()
        return "PostgreSQL restarted (pg_ctl restart -m fast: every connection closed)"
    begin, end, what = _outages(stack)[fault]
    begin()
    time.sleep(outage)
    end()
    return what.format(seconds=f"{outage:g}")


Action = Callable[[], None]


def _outages(stack: Stack) -> dict[str, tuple[Action, Action, str]]:
    """The faults that last ``outage`` seconds: how each begins, how it ends, what it is."""

    def maxmemory(value: str) -> Action:
        return lambda: _redis_command(stack, "CONFIG", "SET", "maxmemory", value)

    return {
        "redis-stall": (
            stack.redis.stall, stack.redis.resume,
            "SIGSTOP to redis-server for {seconds} s, then SIGCONT",
        ),
        "redis-full": (
            maxmemory("1"), maxmemory("0"),
            "Redis refuses every write (maxmemory reached, noeviction) for {seconds} s",
        ),
        "postgres-read-only": (
            lambda: _postgres_read_only(stack, True), lambda: _postgres_read_only(stack, False),
            "PostgreSQL refuses every write (read-only transactions) for {seconds} s",
        ),
        "cut-verifier-redis": (
            stack.verifier_redis.cut, stack.verifier_redis.restore,
            "network between the verifiers and Redis cut for {seconds} s",
        ),
        "cut-registry-postgres": (
            stack.registry_postgres.cut, stack.registry_postgres.restore,
            "network between the registries and PostgreSQL cut for {seconds} s",
        ),
    }  # fmt: skip


# --- checks ---------------------------------------------------------------------------------


@dataclass
class PhaseReport:
    fault: str
    action: str
    requests: dict[str, int]
    outcomes: dict[str, dict[str, int]]
    fault_seconds: float
    recovery_seconds: float
    late_failures: int
    violations: list[str]
    ledger: dict[str, int]

    @property
    def ok(self) -> bool:
        return not self.violations


def revocation_violations(records: list[Record], grants: list[Grant], bound: float) -> list[str]:
    revoked = {g.id: g.revoked_at for g in grants if g.revoked_at is not None}
    found = []
    for record in records:
        at = revoked.get(record.grant)
        if (
            at is not None
            and record.kind != "revoke"
            and record.outcome == "yes"
            and record.sent > at + bound
        ):
            found.append(
                f"{record.kind} said yes for grant {record.grant}"
                f" {record.sent - at:.3f} s after its revocation was answered"
            )
    return found


def answered_spends(records: list[Record]) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Per grant, the amounts ``/verify`` allowed, and those whose answer was lost or a 503
    (the spend may or may not have been counted)."""
    allowed: dict[str, list[int]] = defaultdict(list)
    unknown: dict[str, list[int]] = defaultdict(list)
    for record in records:
        if record.kind == "verify" and record.outcome == "yes":
            allowed[record.grant].append(record.amount)
        elif record.kind == "verify" and record.outcome in ("503", "failed"):
            unknown[record.grant].append(record.amount)
    return allowed, unknown


def compare_ledger(
    records: list[Record], ledger: dict[str, tuple[int, int]], grants: list[str]
) -> list[str]:
    """``ledger``: per grant, the count and sum of its rows. Each grant's total is within the
    budget, and holds every allowed spend and at most the unanswered ones besides."""
    allowed, unknown = answered_spends(records)
    found = []
    for grant in grants:
        count, total = ledger.get(grant, (0, 0))
        if total > BUDGET_MINOR:
            found.append(f"grant {grant}: ledger {total} over the budget {BUDGET_MINOR}")
        low_count, low_sum = len(allowed[grant]), sum(allowed[grant])
        high_count, high_sum = low_count + len(unknown[grant]), low_sum + sum(unknown[grant])
        if not (low_count <= count <= high_count and low_sum <= total <= high_sum):
            found.append(
                f"grant {grant}: ledger {count} spends / {total}, allowed {low_count} / {low_sum}"
                f", unanswered or 503 {len(unknown[grant])} / {sum(unknown[grant])}"
            )
    return found


async def ledger_violations(
    stack: Stack, records: list[Record], grants: list[Grant]
) -> tuple[list[str], dict[str, int]]:
    """Wait for the worker to drain (up to 15 s), then compare the ledger with the answers."""
    allowed, _ = answered_spends(records)
    ids = [g.id for g in grants]
    query = (
        "SELECT grant_id, count(*), coalesce(sum(amount_minor), 0) FROM spend_ledger"
        " WHERE grant_id = ANY($1::text[]) GROUP BY grant_id"
    )
    deadline = time.monotonic() + 15
    while True:
        found = await _execute(stack.database_url, query, ids)
        rows = {r[0]: (int(r[1]), int(r[2])) for r in found}
        if all(rows.get(g, (0, 0))[1] >= sum(allowed[g]) for g in ids):
            break
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    summary = {
        "allowed_spends": sum(len(v) for v in allowed.values()),
        "allowed_minor": sum(sum(v) for v in allowed.values()),
        "ledger_spends": sum(c for c, _ in rows.values()),
        "ledger_minor": sum(t for _, t in rows.values()),
        "grants_at_budget": sum(1 for _, t in rows.values() if t > BUDGET_MINOR - 20),
    }
    return compare_ledger(records, rows, ids), summary


def audit_violations(stack: Stack, issued: list[str]) -> list[str]:
    query = "SELECT data::jsonb ->> 'jti' FROM audit_events WHERE event LIKE 'token.%'"
    rows = asyncio.run(_execute(stack.database_url, query))
    logged = {row[0] for row in rows}
    missing = [jti for jti in issued if jti not in logged]
    found = [f"{len(missing)} tokens issued without their audit event"] if missing else []
    env = {**os.environ, **stack.env, "AGENTAUTH_DATABASE_URL": stack.database_url}
    done = subprocess.run(  # noqa: S603 - our own command
        [str(Path(sys.executable).parent / "agentauth"), "audit", "verify", "--json"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        found.append(f"agentauth audit verify failed: {done.stdout[-500:]}{done.stderr[-500:]}")
    return found


def _failed(record: Record) -> bool:
    return record.outcome in ("503", "failed", "skipped") or record.outcome.startswith(
        ("5xx", "error")
    )


def summarize(
    fault: str, action: str, records: list[Record], started: float, ended: float,
    config: Config, violations: list[str], ledger: dict[str, int],
) -> PhaseReport:  # fmt: skip
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    for record in records:
        outcomes[record.kind][f"no:{record.reason}" if record.reason else record.outcome] += 1
    late = [r for r in records if _failed(r) and r.sent > ended + config.recovery_bound]
    after = [r.sent - ended for r in records if _failed(r) and r.sent >= ended]
    problems = list(violations)
    server_errors = [r for r in records if r.outcome.startswith("5xx")]
    if server_errors:
        problems.append(f"{len(server_errors)} answers were 5xx other than 503")
    if late:
        problems.append(
            f"{len(late)} requests failed more than {config.recovery_bound:g} s after the fault"
            f" ended ({Counter(r.outcome for r in late).most_common(3)})"
        )
    return PhaseReport(
        fault=fault,
        action=action,
        requests={kind: sum(c.values()) for kind, c in outcomes.items()},
        outcomes={kind: dict(c) for kind, c in outcomes.items()},
        fault_seconds=round(ended - started, 3),
        recovery_seconds=round(max(after, default=0.0), 3),
        late_failures=len(late),
        violations=problems,
        ledger=ledger,
    )


# --- the run --------------------------------------------------------------------------------


async def run_phase(
    stack: Stack, bench: Bench, grants: list[Grant], config: Config, fault: str
) -> tuple[PhaseReport, list[str]]:
    """The phase's report and the ``jti`` of every token issued during it."""
    driver = Driver(stack, bench, grants, config)
    loop = asyncio.get_running_loop()
    try:
        load = asyncio.create_task(driver.run())  # until the fault is over, plus ``observe``
        await asyncio.sleep(config.steady)
        started = time.monotonic()
        action = await loop.run_in_executor(None, inject, stack, fault, config.outage)
        ended = time.monotonic()
        driver.until = ended + config.observe
        await load
    finally:
        await driver.close()
    violations = revocation_violations(driver.records, grants, config.propagation_bound)
    ledger_found, ledger = await ledger_violations(stack, driver.records, grants)
    report = summarize(
        fault, action, driver.records, started, ended, config, violations + ledger_found, ledger
    )
    return report, driver.issued


def run(config: Config, workdir: Path, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every fault of ``config`` in turn against one stack; the report of each."""
    victims = max(2, int(config.revoke_rate * (config.steady + config.outage + config.observe)) + 2)
    with ExitStack() as cleanup, running_stack(workdir, config.propagation_bound) as stack:
        bench = bootstrap(stack.registries[0].url, stack.env["AGENTAUTH_ADMIN_TOKEN"])
        bench.base = stack.env["AGENTAUTH_ISSUER"]
        for client in (bench.http, bench.human_browser):
            cleanup.callback(client.close)
        created = bench.http.post(
            "/admin/resource-servers",
            json={"name": "chaos shop", "resource": SHOP},
            headers={"Authorization": f"Bearer {stack.env['AGENTAUTH_ADMIN_TOKEN']}"},
        )
        assert created.status_code == 201, created.text
        created = created.json()
        secret = f"{created['client_id']}:{created['client_secret']}"
        stack.merchant_auth = "Basic " + base64.b64encode(secret.encode()).decode()
        log(f"approving {len(config.faults) * (victims + config.spend_grants)} grants")
        pools = [
            approved_grants(bench, victims + config.spend_grants, victims) for _ in config.faults
        ]
        issued = [_claims(t)["jti"] for grants in pools for g in grants for t in g.tokens]
        phases = []
        for fault, grants in zip(config.faults, pools, strict=True):
            report, tokens = asyncio.run(run_phase(stack, bench, grants, config, fault))
            issued += tokens
            log(
                f"{fault:22s} {sum(report.requests.values()):6d} requests, recovery"
                f" {report.recovery_seconds:5.2f} s, {'ok' if report.ok else report.violations}"
            )
            phases.append(report)
        audit = audit_violations(stack, issued)
        return {
            "config": asdict(config),
            "phases": [asdict(p) | {"ok": p.ok} for p in phases],
            "audit": {"tokens_checked": len(issued), "violations": audit},
            "ok": all(p.ok for p in phases) and not audit,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Config()
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated, in order")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every rate")
    for name in ("steady", "outage", "observe", "recovery_bound", "propagation_bound"):
        flag = "--" + name.replace("_", "-")
        parser.add_argument(flag, type=float, default=getattr(defaults, name), help="seconds")
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    parser.add_argument("--logs", type=Path, help="keep the processes' logs in this directory")
    args = parser.parse_args()
    faults = tuple(name for name in args.faults.split(",") if name)
    unknown = sorted(set(faults) - set(FAULTS))
    if unknown:
        parser.error(f"unknown faults: {', '.join(unknown)} (known: {', '.join(FAULTS)})")
    config = Config(
        steady=args.steady, outage=args.outage, observe=args.observe,
        recovery_bound=args.recovery_bound, propagation_bound=args.propagation_bound,
        faults=faults,
    ).scaled(args.scale)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="agentauth-chaos-") as workdir:
        logs = args.logs or Path(workdir)
        logs.mkdir(parents=True, exist_ok=True)
        report = run(config, logs)
    if args.json:
        print(json.dumps(report, indent=2))
    print("all invariants held" if report["ok"] else "INVARIANTS BROKEN")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
