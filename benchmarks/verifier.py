"""Load benchmark of the verifier: warm ``/introspect``, ``/verify`` with a DPoP proof and an
envelope (per-transaction maximum plus a budget counted in Redis), revocation propagation
and memory over a long bounded run.

Starts, on 127.0.0.1, ``agentauth serve registry``, ``agentauth serve verifier --workers N``
(through the read-only PostgreSQL role) and ``agentauth serve worker`` on a fresh PostgreSQL
database and the local Redis; enrols a human with a software passkey, registers a resource
server and an agent and gets an approved grant through the real endpoints. Requests are
pre-built (every ``/verify`` carries its own freshly signed DPoP proof) and driven by the
coordinated-omission-free generator in ``loadgen.py``: fixed-rate runs for latency,
closed-loop runs for throughput, each repeated. A raw-ASGI "hello" server measured the same
way is the floor. Revocation latency is the time from the registry's 200 to the verifier's
first ``{"active": false}``.

    .venv/bin/python benchmarks/verifier.py                       # all cases, 3 runs each
    .venv/bin/python benchmarks/verifier.py --memory-duration 300 # the 5-minute memory run
    .venv/bin/python benchmarks/verifier.py --json
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import loadgen  # noqa: E402
import token_endpoint  # noqa: E402
from token_endpoint import CIBA, Bench, approve_grant, bootstrap, free_port, server  # noqa: E402

from app.store.migrate import upgrade  # noqa: E402
from app.store.roles import ensure_readonly_role  # noqa: E402
from tests.support.databases import postgres_database, redis_server  # noqa: E402
from tests.support.processes import RedisServer  # noqa: E402
from tests.support.sentinel import ReplicaServer, replicating  # noqa: E402

SHOP = "https://pay.bench.example/api"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
PAY_URL = SHOP + "/payments"
DETAILS = [
    {
        "type": "api",
        "locations": [SHOP],
        "actions": ["read", "pay"],
        "limits": {
            "max_amount": {"value": "50.00", "currency": "EUR"},
            "budget": {"value": "100000000.00", "currency": "EUR", "period": "day"},
        },
    }
]


def grant(bench: Bench) -> dict[str, Any]:
    return bench.token(grant_type=CIBA, auth_req_id=approve_grant(bench, DETAILS))


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def introspect_request(token: str, auth: str) -> loadgen.Request:
    return loadgen.Request(
        "POST",
        "/introspect",
        {"Content-Type": "application/x-www-form-urlencoded", "Authorization": auth},
        urlencode({"token": token}).encode(),
    )


def verify_request(bench: Bench, token: str, auth: str, *, spend: bool = True) -> loadgen.Request:
    proof = bench.agent.dpop(htm="POST", htu=PAY_URL, iat=int(time.time()), access_token=token)
    body: dict[str, Any] = {"token": token, "dpop": proof, "method": "POST", "url": PAY_URL}
    if spend:
        body |= {"action": "pay", "amount": {"value": "0.01", "currency": "EUR"}}
    else:
        body |= {"action": "read"}
    return loadgen.Request(
        "POST",
        "/verify",
        {"Content-Type": "application/json", "Authorization": auth},
        json.dumps(body).encode(),
    )


def run_case(name: str, port: int, build: Any, args: argparse.Namespace) -> dict[str, Any]:
    # The verifier uses both CPUs: the generator stays unpinned. The 3-second warm-up covers
    # first-use paths (key import, a budget counter seeded from the ledger, connection pools).
    return token_endpoint.run_case(
        name, port, build, args, cpu=None, saturation_connections=64, warmup_seconds=3
    )


def revocation_latency(
    bench: Bench, verifier: httpx.Client, auth: str, subject: str, count: int
) -> dict[str, float]:
    """Revoke ``count`` distinct access tokens one by one; per token, the time from the
    registry's 200 to the verifier's first inactive answer (polled back to back)."""
    form = {"Content-Type": "application/x-www-form-urlencoded", "Authorization": auth}

    def active(token: str) -> bool:
        answer = verifier.post("/introspect", content=urlencode({"token": token}), headers=form)
        return bool(answer.json()["active"])

    samples = []
    for _ in range(count):
        token = bench.token(
            grant_type=EXCHANGE, subject_token=subject, subject_token_type=ACCESS, resource=SHOP
        )["access_token"]
        if not active(token):
            raise RuntimeError("a fresh token is not active at the verifier")
        revoke = bench.http.post(
            "/revoke",
            content=urlencode(bench.form(token=token)),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        revoke.raise_for_status()
        answered = time.perf_counter()
        while active(token):
            if time.perf_counter() - answered > 5:
                raise RuntimeError("revocation not visible after 5 s")
        samples.append((time.perf_counter() - answered) * 1000)
    samples.sort()

    def pick(q: float) -> float:
        return samples[min(len(samples) - 1, int(q * len(samples)))]

    return {
        "count": len(samples),
        "p50_ms": round(pick(0.50), 2),
        "p99_ms": round(pick(0.99), 2),
        "max_ms": round(samples[-1], 2),
    }


def worker_rss(parent_pid: int) -> dict[int, int]:
    """Resident memory (KiB) of every process below ``parent_pid`` (uvicorn's workers)."""
    out: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(parent_pid) and "VmRSS" in fields:
            out[int(entry.name)] = int(fields["VmRSS"].split()[0])
    return out


def memory_run(
    bench: Bench, port: int, token: str, auth: str, args: argparse.Namespace, pid: int
) -> dict[str, Any]:
    """A bounded run of ``--memory-duration`` seconds alternating warm introspections and
    verifications at a fixed rate, in one-minute chunks (proofs must be fresh); RSS of each
    verifier worker is sampled after a warm-up chunk and at the end."""
    chunk = min(60.0, args.memory_duration)
    rate = args.memory_rate

    def one_chunk() -> None:
        requests = [
            verify_request(bench, token, auth) if i % 2 else introspect_request(token, auth)
            for i in range(int(rate * chunk))
        ]
        loadgen.run_fixed_rate("127.0.0.1", port, requests, rate, connections=32)

    one_chunk()  # warm-up
    start = worker_rss(pid)
    elapsed = 0.0
    while elapsed < args.memory_duration:
        one_chunk()
        elapsed += chunk
    end = worker_rss(pid)
    growth = {str(p): round(100 * (end[p] - start[p]) / start[p], 1) for p in start if p in end}
    return {"seconds": elapsed, "rate": rate, "rss_kib_start": start, "rss_kib_end": end,
            "growth_percent": growth}  # fmt: skip


def stack_env(
    *, base: str, verifier_base: str, database_url: str, redis_url: str, admin: str, prefix: str
) -> tuple[dict[str, str], dict[str, str]]:
    """The environment of the registry and the worker, and the verifier's (its read-only
    role, created here, in the database URL)."""
    import asyncio

    from sqlalchemy.engine import make_url

    role, password = f"agentauth_{prefix}_{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    asyncio.run(ensure_readonly_role(database_url, role, password))
    readonly = make_url(database_url).set(username=role, password=password)
    env = {
        **os.environ,
        "AGENTAUTH_ISSUER": base,
        "AGENTAUTH_VERIFIER_URL": verifier_base,
        "AGENTAUTH_DATABASE_URL": database_url,
        "AGENTAUTH_REDIS_URL": redis_url,
        "AGENTAUTH_ADMIN_TOKEN": admin,
        "AGENTAUTH_CACHE_NAMESPACE": f"{prefix}-{secrets.token_hex(4)}",
        "AGENTAUTH_KEY_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "AGENTAUTH_RATE_LIMIT_SCALE": "10000",
        "AGENTAUTH_ACCESS_TOKEN_TTL": "3600",
    }
    return env, {**env, "AGENTAUTH_DATABASE_URL": readonly.render_as_string(False)}


@contextmanager
def bench_redis(replicas: int) -> Iterator[str]:
    """The shared Redis, or a private primary with ``replicas`` replicas on free ports."""
    if not replicas:
        with redis_server() as url:
            yield url
        return
    with tempfile.TemporaryDirectory() as workdir:
        primary = RedisServer(Path(workdir))
        primary.start()
        followers = [ReplicaServer(Path(workdir), primary) for _ in range(replicas)]
        try:
            for follower in followers:
                follower.start()
                replicating(primary, follower)
            yield primary.url
        finally:
            for follower in followers:
                follower.stop()
            primary.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--saturation-requests", type=int, default=30000)
    parser.add_argument("--workers", type=int, default=2, help="verifier worker processes")
    parser.add_argument("--server-cpus", default="0,1", help="taskset CPU list for the verifier")
    parser.add_argument("--revocations", type=int, default=200)
    parser.add_argument("--memory-duration", type=float, default=0, help="seconds; 0 skips")
    parser.add_argument("--memory-rate", type=float, default=1000.0)
    parser.add_argument(
        "--spend-replicas",
        type=int,
        default=0,
        help="run a private Redis primary with this many replicas and make /verify wait for"
        " them (AGENTAUTH_SPEND_REPLICAS); 0 uses the shared Redis",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    registry_port, verifier_port, hello_port = free_port(), free_port(), free_port()
    base = f"http://127.0.0.1:{registry_port}"
    verifier_base = f"http://127.0.0.1:{verifier_port}"
    admin = secrets.token_urlsafe(32)
    results: dict[str, Any] = {"config": vars(args)}
    agentauth = str(Path(sys.executable).parent / "agentauth")
    with postgres_database() as database_url, bench_redis(args.spend_replicas) as redis_url:
        upgrade(database_url)
        env, verifier_env = stack_env(
            base=base,
            verifier_base=verifier_base,
            database_url=database_url,
            redis_url=redis_url,
            admin=admin,
            prefix="bench",
        )
        verifier_env["AGENTAUTH_SPEND_REPLICAS"] = str(args.spend_replicas)
        registry_cmd = [agentauth, "serve", "registry", "--port", str(registry_port)]
        verifier_cmd = [agentauth, "serve", "verifier", "--port", str(verifier_port)]
        verifier_cmd += ["--workers", str(args.workers)]
        worker_cmd = [agentauth, "serve", "worker"]
        with (
            server(registry_cmd, env, base, "/readyz", "0,1"),
            server(worker_cmd, env, base, "/readyz", "0,1"),
        ):
            bench = bootstrap(base, admin)
            created = bench.http.post(
                "/admin/resource-servers",
                json={"name": "bench shop", "resource": SHOP},
                headers={"Authorization": f"Bearer {admin}"},
            ).json()
            auth = basic(created["client_id"], created["client_secret"])
            token = grant(bench)["access_token"]
            with server(
                verifier_cmd, verifier_env, verifier_base, "/readyz", args.server_cpus
            ) as pid:
                results["introspect"] = run_case(
                    "warm /introspect", verifier_port, lambda: introspect_request(token, auth), args
                )
                results["verify"] = run_case(
                    "/verify (DPoP + capability + envelope with budget)",
                    verifier_port,
                    lambda: verify_request(bench, token, auth),
                    args,
                )
                results["verify_read"] = run_case(
                    "/verify (DPoP + capability, no amount)",
                    verifier_port,
                    lambda: verify_request(bench, token, auth, spend=False),
                    args,
                )
                with httpx.Client(base_url=verifier_base, timeout=10) as verifier:
                    results["revocation"] = revocation_latency(
                        bench, verifier, auth, token, args.revocations
                    )
                print(f"\nrevocation visible at the verifier: {results['revocation']}")
                if args.memory_duration:
                    results["memory"] = memory_run(bench, verifier_port, token, auth, args, pid)
                    print(f"memory: {results['memory']}")
    hello_base = f"http://127.0.0.1:{hello_port}"
    hello = [sys.executable, str(ROOT / "benchmarks" / "hello.py"), "--port", str(hello_port)]
    hello += ["--workers", str(args.workers)]
    with server(hello, dict(os.environ), hello_base, "/", args.server_cpus):
        results["hello"] = run_case(
            "raw ASGI hello (floor)", hello_port, lambda: loadgen.Request("GET", "/", {}), args
        )
    if args.json:
        print(json.dumps(results, indent=2))
    for name in ("introspect", "verify", "verify_read", "hello"):
        fixed, rates = results[name]["fixed_rate"], results[name]["saturation_rate"]
        p99 = fixed["p99_ms"]
        print(
            f"{name:11s} p50 {fixed['p50_ms']['median']:.2f} ms, p99 {p99['median']:.2f} ms"
            f" (range {p99['min']:.2f}-{p99['max']:.2f}), p99.9 {fixed['p999_ms']['median']:.2f}"
            f" ms at {args.rate:g}/s; saturation {statistics.median(rates):.0f} req/s"
            f" (runs {rates})"
        )


if __name__ == "__main__":
    main()
