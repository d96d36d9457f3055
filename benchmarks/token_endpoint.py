"""Load benchmark of ``POST /token`` (token exchange, client credentials on a standing grant,
refresh) against a real registry.

Starts ``agentauth serve registry`` on 127.0.0.1 with a fresh PostgreSQL database and the
local Redis, enrols a human with a software passkey, registers an agent, obtains approved
grants through the real endpoints, then drives pre-built requests (each with its own client
assertion and DPoP proof, signed before the clock starts) with the fixed-rate, coordinated-
omission-free generator in ``loadgen.py``, and a saturation run for throughput. A raw-ASGI
"hello" server measured the same way gives the floor. Every run is bounded and repeated.

    .venv/bin/python benchmarks/token_endpoint.py                 # defaults: 100 req/s, 3 runs
    .venv/bin/python benchmarks/token_endpoint.py --json
    .venv/bin/python benchmarks/token_endpoint.py --cases exchange   # one case only

By default the registry is pinned to CPU 0 and the generator to CPU 1 (PostgreSQL and Redis
are not pinned); ``--workers 2 --server-cpus 0,1`` runs two registry workers on both CPUs and
leaves the generator unpinned. Each saturation run also reports the CPU time one request cost
in the registry, PostgreSQL and Redis (from ``/proc``).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import loadgen  # noqa: E402

from app.store.migrate import upgrade  # noqa: E402
from tests.factories import Agent  # noqa: E402
from tests.support.databases import postgres_database, redis_server  # noqa: E402
from tests.support.webauthn import SoftwareAuthenticator  # noqa: E402

CIBA = "urn:openid:params:grant-type:ciba"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
CASES = ("exchange", "client_credentials", "refresh", "hello")
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SHOP = "https://shop.bench.example/api"
BANK = "https://bank.bench.example"
WARM_UP = 500  # unreported requests at full speed before each case: every pool connection open
DETAILS = [
    {
        "type": "api",
        "locations": [SHOP],
        "actions": ["read", "pay"],
        "limits": {"max_amount": {"value": "50.00", "currency": "EUR"}},
    },
    {"type": "api", "locations": [BANK], "actions": ["read"]},
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(base: str, path: str = "/readyz", timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(base + path, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{base}{path} not ready after {timeout} s")


@contextlib.contextmanager
def server(
    command: list[str], env: dict[str, str], base: str, ready: str, cpus: str = "0"
) -> Iterator[int]:
    """Run ``command`` pinned to ``cpus`` until the block ends; yields its process id. Its
    output goes to a log file (``AGENTAUTH_BENCH_LOGS``, default the system temp directory):
    a pipe nobody reads would block the server once full."""
    logs = Path(os.environ.get("AGENTAUTH_BENCH_LOGS", tempfile.gettempdir()))
    log_path = logs / f"agentauth-bench-{Path(command[0]).name}-{os.getpid()}-{len(command)}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own commands
            ["/usr/bin/taskset", "-c", cpus, *command],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(base, ready)
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Bench:
    base: str
    admin: str
    http: httpx.Client
    agent: Agent
    human_browser: httpx.Client
    authenticator: SoftwareAuthenticator
    csrf: str = ""

    def form(self, **params: Any) -> dict[str, Any]:
        now = int(time.time())
        return {
            "client_assertion_type": ASSERTION,
            "client_assertion": self.agent.assertion(iat=now, exp=now + 120, aud=self.base),
            **params,
        }

    def proof(self) -> str:
        return self.agent.dpop(htu=f"{self.base}/token", iat=int(time.time()))

    def token(self, **params: Any) -> dict[str, Any]:
        response = self.http.post(
            "/token",
            content=urlencode(self.form(**params)),
            headers={"Content-Type": "application/x-www-form-urlencoded", "DPoP": self.proof()},
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def approved_refresh_token(self) -> str:
        started = self.http.post(
            "/bc-authorize",
            content=urlencode(
                self.form(authorization_details=json.dumps(DETAILS), grant_lifetime="3600")
            ),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        started.raise_for_status()
        auth_req_id = started.json()["auth_req_id"]
        headers = {"X-CSRF-Token": self.csrf}
        options = self.human_browser.post(
            f"/ui/api/requests/{auth_req_id}/approve/options", headers=headers
        ).json()
        credential = self.authenticator.get(options, origin=self.base)
        approved = self.human_browser.post(
            f"/ui/api/requests/{auth_req_id}/approve",
            json={"credential": credential},
            headers=headers,
        )
        approved.raise_for_status()
        return str(self.token(grant_type=CIBA, auth_req_id=auth_req_id)["refresh_token"])

    def request(self, **params: Any) -> loadgen.Request:
        return loadgen.Request(
            "POST",
            "/token",
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "DPoP": self.proof(),
            },
            urlencode(self.form(**params)).encode(),
        )


def bootstrap(base: str, admin: str) -> Bench:
    http = httpx.Client(base_url=base, timeout=10)
    auth = {"Authorization": f"Bearer {admin}"}
    for resource in (SHOP, BANK):
        http.post(
            "/admin/resource-servers", json={"name": resource, "resource": resource}, headers=auth
        ).raise_for_status()
    created = http.post("/admin/humans", json={"display_name": "Bench"}, headers=auth).json()
    browser = httpx.Client(base_url=base, timeout=10)
    authenticator = SoftwareAuthenticator()
    options = browser.post(
        "/ui/api/passkeys/register/options", json={"invite_token": created["invite_token"]}
    ).json()
    credential = authenticator.create(options, origin=base)
    browser.post(
        "/ui/api/passkeys/register/verify",
        json={"invite_token": created["invite_token"], "credential": credential},
    ).raise_for_status()
    csrf = browser.get("/ui/api/session").json()["csrf_token"]
    token = browser.post(
        "/ui/api/enrollment-tokens", json={}, headers={"X-CSRF-Token": csrf}
    ).json()
    agent = Agent()
    registered = http.post(
        "/register",
        json={"client_name": "bench", "jwks": {"keys": [agent.public.to_dict()]}},
        headers={"Authorization": f"Bearer {token['token']}"},
    )
    registered.raise_for_status()
    agent.client_id = registered.json()["client_id"]
    return Bench(base, admin, http, agent, browser, authenticator, csrf)


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    found, todo = {pid}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def cpu_seconds(server_pid: int) -> dict[str, float]:
    """CPU time (user + system) used so far by the server's process tree, PostgreSQL and
    Redis, read from ``/proc``; the difference across a run divided by its requests is the
    CPU each request cost in each process."""
    server = _descendants(server_pid)
    ticks = os.sysconf("SC_CLK_TCK")
    totals = {"server": 0.0, "postgres": 0.0, "redis": 0.0}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, _, rest = (entry / "stat").read_text().rpartition(")")
        except OSError:
            continue
        fields = rest.split()
        used = (int(fields[11]) + int(fields[12])) / ticks
        name = head.partition("(")[2]
        if int(entry.name) in server:
            totals["server"] += used
        elif name == "postgres":
            totals["postgres"] += used
        elif name.startswith("redis-server"):
            totals["redis"] += used
    return totals


def run_case(
    name: str,
    port: int,
    build: Any,
    args: argparse.Namespace,
    *,
    cpu: int | None = 1,
    saturation_connections: int = 32,
    warmup_seconds: float = 0,
    warmup_saturation: int = 0,
    server_pid: int | None = None,
) -> dict[str, Any]:
    """Fixed-rate runs (latency) and saturation runs (throughput), each ``args.runs`` times,
    after an unreported warm-up of ``warmup_seconds`` at the fixed rate. ``cpu`` pins the
    generator (``None``: unpinned, when the server uses every CPU). With ``server_pid``, the
    CPU each saturation request cost in the server, PostgreSQL and Redis is reported too.
    ``warmup_saturation`` requests sent at full speed first open every pooled connection."""
    if warmup_seconds:
        warm = [build() for _ in range(int(args.rate * warmup_seconds))]
        loadgen.run_fixed_rate("127.0.0.1", port, warm, args.rate, connections=32, cpu=cpu)
    if warmup_saturation:
        warm = [build() for _ in range(warmup_saturation)]
        loadgen.run_saturation(
            "127.0.0.1", port, warm, connections=saturation_connections, duration_limit=30, cpu=cpu
        )
    fixed, saturated, cpu_ms = [], [], []
    count = int(args.rate * args.duration)
    for _ in range(args.runs):
        requests = [build() for _ in range(count)]
        fixed.append(
            loadgen.run_fixed_rate("127.0.0.1", port, requests, args.rate, connections=32, cpu=cpu)
        )
        requests = [build() for _ in range(args.saturation_requests)]
        before = cpu_seconds(server_pid) if server_pid else {}
        saturated.append(
            loadgen.run_saturation(
                "127.0.0.1",
                port,
                requests,
                connections=saturation_connections,
                duration_limit=args.duration * 2,
                cpu=cpu,
            )
        )
        if server_pid and saturated[-1].completed:
            after = cpu_seconds(server_pid)
            done = saturated[-1].completed
            cpu_ms.append({k: round(1000 * (after[k] - before[k]) / done, 2) for k in after})
    print(f"\n{name}")
    for result in (*fixed, *saturated):
        print(f"  {result.summary()}")
    for used in cpu_ms:
        shares = ", ".join(f"{process} {ms}" for process, ms in used.items())
        print(f"  CPU per saturation request (ms): {shares}")
    return {
        "fixed_rate": loadgen.summarize_runs(fixed),
        "saturation_rate": [round(r.achieved_rate, 1) for r in saturated],
        "cpu_ms_per_request": cpu_ms,
        "statuses": [dict(r.status_counts) for r in (*fixed, *saturated)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--saturation-requests", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--server-cpus", default="0", help="taskset CPU list for the registry")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated subset to run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cases = set(args.cases.split(","))

    port, hello_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    admin = secrets.token_urlsafe(32)
    results: dict[str, Any] = {"config": vars(args)}
    with postgres_database() as database_url, redis_server() as redis_url:
        upgrade(database_url)
        env = {
            **os.environ,
            "AGENTAUTH_ISSUER": base,
            "AGENTAUTH_DATABASE_URL": database_url,
            "AGENTAUTH_REDIS_URL": redis_url,
            "AGENTAUTH_ADMIN_TOKEN": admin,
            "AGENTAUTH_CACHE_NAMESPACE": f"bench-{secrets.token_hex(4)}",
            "AGENTAUTH_KEY_ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            # The limits stay on (their Redis round trip is part of the path), just high.
            "AGENTAUTH_RATE_LIMIT_SCALE": "10000",
        }
        agentauth = str(Path(sys.executable).parent / "agentauth")
        command = [
            agentauth,
            "serve",
            "registry",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ]
        # The generator gets CPU 1 to itself only when the registry leaves it free.
        generator_cpu = None if args.workers > 1 or args.server_cpus != "0" else 1
        with server(command, env, base, "/readyz", args.server_cpus) as pid:
            bench = bootstrap(base, admin)
            if "exchange" in cases:
                auth_req_id = approve_grant(bench)
                subject = bench.token(grant_type=CIBA, auth_req_id=auth_req_id)["access_token"]
                results["exchange"] = run_case(
                    "token exchange (re-audience)",
                    port,
                    lambda: bench.request(
                        grant_type=EXCHANGE,
                        subject_token=subject,
                        subject_token_type=ACCESS,
                        resource=BANK,
                    ),
                    args,
                    cpu=generator_cpu,
                    warmup_saturation=WARM_UP,
                    server_pid=pid,
                )
            if "client_credentials" in cases:
                approve_grant(bench, standing="true")
                results["client_credentials"] = run_case(
                    "client_credentials (standing grant)",
                    port,
                    lambda: bench.request(grant_type="client_credentials", resource=SHOP),
                    args,
                    cpu=generator_cpu,
                    warmup_saturation=WARM_UP,
                    server_pid=pid,
                )
            if "refresh" in cases:
                needed = (int(args.rate * args.duration) + args.saturation_requests) * args.runs
                print(f"\npreparing {needed + WARM_UP} approved grants for the refresh runs ...")
                pool = [bench.approved_refresh_token() for _ in range(needed + WARM_UP)]
                results["refresh"] = run_case(
                    "refresh_token (rotation)",
                    port,
                    lambda: bench.request(grant_type="refresh_token", refresh_token=pool.pop()),
                    args,
                    cpu=generator_cpu,
                    warmup_saturation=WARM_UP,
                    server_pid=pid,
                )
    if "hello" in cases:
        hello_base = f"http://127.0.0.1:{hello_port}"
        hello = [sys.executable, str(ROOT / "benchmarks" / "hello.py"), "--port", str(hello_port)]
        with server(hello, dict(os.environ), hello_base, "/"):
            results["hello"] = run_case(
                "raw ASGI hello (floor)", hello_port, lambda: loadgen.Request("GET", "/", {}), args
            )
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for name in (n for n in CASES if n in results):
            fixed, rates = results[name]["fixed_rate"], results[name]["saturation_rate"]
            p99 = fixed["p99_ms"]
            print(
                f"{name:18s} p50 {fixed['p50_ms']['median']:.1f} ms, p99 {p99['median']:.1f} ms"
                f" (range {p99['min']:.1f}-{p99['max']:.1f}) at {args.rate:g}/s;"
                f" saturation {statistics.median(rates):.0f} req/s (runs {rates})"
            )


def approve_grant(bench: Bench, details: list[dict[str, Any]] = DETAILS, **params: str) -> str:
    """Request a grant for ``details`` (with ``params``, such as ``standing``) and approve it
    with the human's passkey."""
    started = bench.http.post(
        "/bc-authorize",
        content=urlencode(bench.form(authorization_details=json.dumps(details), **params)),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ).json()
    headers = {"X-CSRF-Token": bench.csrf}
    options = bench.human_browser.post(
        f"/ui/api/requests/{started['auth_req_id']}/approve/options", headers=headers
    ).json()
    credential = bench.authenticator.get(options, origin=bench.base)
    bench.human_browser.post(
        f"/ui/api/requests/{started['auth_req_id']}/approve",
        json={"credential": credential},
        headers=headers,
    ).raise_for_status()
    return str(started["auth_req_id"])


if __name__ == "__main__":
    main()
