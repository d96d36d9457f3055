"""A bounded soak of the registry, the verifier and the worker as separate processes:
steady load with distinct tokens for ``--duration`` seconds, sampling each process's resident
memory and open file descriptors, to show they stay flat and the caches stay bounded.

    .venv/bin/python benchmarks/soak.py --duration 1800      # the documented 30-minute run
    .venv/bin/python benchmarks/soak.py --duration 60        # a quick look
    .venv/bin/python benchmarks/soak.py --duration 1200 --token-ttl 300   # caches turn over

Every ``--chunk`` seconds the registry issues ``--tokens-per-second`` new access tokens
(token exchange, each distinct), and the verifier answers ``--rate`` requests a second,
introspections of those new tokens and spends with them at ``/verify``. Only 127.0.0.1;
it stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import loadgen  # noqa: E402
import verifier as bench_verifier  # noqa: E402
from token_endpoint import bootstrap, free_port, server  # noqa: E402

from app.store.migrate import upgrade  # noqa: E402
from tests.support.databases import postgres_database, redis_server  # noqa: E402

TOKEN_CACHE_BOUND = 100_000  # app/verifier/tokens.py: VerifiedTokenCache(max_entries=...)


def family(pid: int) -> list[int]:
    """``pid`` and every process below it (uvicorn's workers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = dict(
                    line.split(":", 1) for line in (entry / "status").read_text().splitlines()
                )
            except (OSError, ValueError):
                continue
            children.setdefault(int(fields.get("PPid", "0").strip()), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def sample(pid: int) -> dict[str, int]:
    """Resident memory (KiB) and open file descriptors, summed over the process family."""
    rss = fds = 0
    for member in family(pid):
        try:
            status = (Path("/proc") / str(member) / "status").read_text()
            rss += int(next(ln for ln in status.splitlines() if ln.startswith("VmRSS")).split()[1])
            fds += len(os.listdir(f"/proc/{member}/fd"))
        except (OSError, StopIteration):
            continue
    return {"rss_kib": rss, "fds": fds}


def summary(samples: list[dict[str, int]]) -> dict[str, dict[str, int]]:
    return {
        key: {
            "start": samples[0][key],
            "peak": max(s[key] for s in samples),
            "end": samples[-1][key],
        }
        for key in ("rss_kib", "fds")
    }


def cached_tokens(http: Any) -> int:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith("agentauth_verifier_cached_tokens "):
            return int(float(line.split()[1]))
    return -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=1800.0, help="seconds")
    parser.add_argument("--chunk", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--rate", type=float, default=200.0, help="verifier requests a second")
    parser.add_argument("--tokens-per-second", type=float, default=20.0)
    parser.add_argument(
        "--token-ttl",
        type=int,
        default=3600,
        help="access-token lifetime in seconds (shorter than --duration: the caches turn over)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not 10 <= args.duration <= 7200:
        parser.error("--duration is bounded: 10 to 7200 seconds")
    if not 60 <= args.token_ttl <= 3600:
        parser.error("--token-ttl is bounded: 60 to 3600 seconds")

    import httpx

    registry_port, verifier_port = free_port(), free_port()
    base, verifier_base = f"http://127.0.0.1:{registry_port}", f"http://127.0.0.1:{verifier_port}"
    admin = secrets.token_urlsafe(32)
    agentauth = str(Path(sys.executable).parent / "agentauth")
    with postgres_database() as database_url, redis_server() as redis_url:
        upgrade(database_url)
        env, verifier_env = bench_verifier.stack_env(
            base=base,
            verifier_base=verifier_base,
            database_url=database_url,
            redis_url=redis_url,
            admin=admin,
            prefix="soak",
        )
        for environment in (env, verifier_env):
            environment["AGENTAUTH_ACCESS_TOKEN_TTL"] = str(args.token_ttl)
        commands = {
            "registry": [agentauth, "serve", "registry", "--port", str(registry_port)],
            "worker": [agentauth, "serve", "worker"],
        }
        verifier_cmd = [agentauth, "serve", "verifier", "--port", str(verifier_port)]
        with (
            server(commands["registry"], env, base, "/readyz", "0,1") as registry_pid,
            server(commands["worker"], env, base, "/readyz", "0,1") as worker_pid,
        ):
            bench = bootstrap(base, admin)
            created = bench.http.post(
                "/admin/resource-servers",
                json={"name": "soak shop", "resource": bench_verifier.SHOP},
                headers={"Authorization": f"Bearer {admin}"},
            ).json()
            auth = bench_verifier.basic(created["client_id"], created["client_secret"])
            subject = bench_verifier.grant(bench)["access_token"]
            with (
                server(verifier_cmd, verifier_env, verifier_base, "/readyz", "0,1") as v_pid,
                httpx.Client(base_url=verifier_base, timeout=10) as verifier_http,
            ):
                pids = {"registry": registry_pid, "verifier": v_pid, "worker": worker_pid}
                samples: dict[str, list[dict[str, int]]] = {name: [] for name in pids}
                outcomes: dict[int, int] = {}
                errors = issued = 0
                started = time.monotonic()
                while time.monotonic() - started < args.duration:
                    # A new subject token each chunk: exchanged tokens never outlive it.
                    subject = bench_verifier.grant(bench)["access_token"]
                    tokens = [
                        bench.token(
                            grant_type=bench_verifier.EXCHANGE,
                            subject_token=subject,
                            subject_token_type=bench_verifier.ACCESS,
                            resource=bench_verifier.SHOP,
                        )["access_token"]
                        for _ in range(int(args.tokens_per_second * args.chunk))
                    ]
                    issued += len(tokens)
                    requests = [
                        bench_verifier.introspect_request(tokens[i % len(tokens)], auth)
                        if i % 2
                        else bench_verifier.verify_request(bench, tokens[i % len(tokens)], auth)
                        for i in range(int(args.rate * args.chunk))
                    ]
                    result = loadgen.run_fixed_rate(
                        "127.0.0.1", verifier_port, requests, args.rate, connections=16
                    )
                    errors += result.errors
                    for status, count in result.status_counts.items():
                        outcomes[status] = outcomes.get(status, 0) + count
                    for name, pid in pids.items():
                        samples[name].append(sample(pid))
                cached = cached_tokens(verifier_http)
    report = {
        "config": vars(args),
        "seconds": round(time.monotonic() - started),
        "tokens_issued": issued,
        "verifier_answers": outcomes,
        "verifier_errors": errors,
        "verifier_cached_tokens": {"end": cached, "bound": TOKEN_CACHE_BOUND},
        "processes": {name: summary(values) for name, values in samples.items()},
    }
    if args.json:
        print(json.dumps(report, indent=2))
    for name, figures in report["processes"].items():
        rss, fds = figures["rss_kib"], figures["fds"]
        print(
            f"{name:9s} RSS KiB start {rss['start']} peak {rss['peak']} end {rss['end']};"
            f" fds start {fds['start']} peak {fds['peak']} end {fds['end']}"
        )
    print(
        f"tokens issued {issued}; verifier answers {outcomes}, errors {errors};"
        f" cached tokens {cached} (bound {TOKEN_CACHE_BOUND})"
    )


if __name__ == "__main__":
    main()
