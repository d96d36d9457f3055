"""Every Prometheus metric the processes export, declared once (``prometheus_client``).

Labels are a small closed set (route templates, status codes, reasons, grant types, table
names), never user input, so cardinality stays bounded. Each process (and each uvicorn
worker) has its own registry, scraped at its ``/metrics``.
"""

from __future__ import annotations

import hmac
import time
from typing import Literal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

disable_created_metrics()  # type: ignore[no-untyped-call]  # no ``_created`` series: nothing here needs them
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
REGISTRY = CollectorRegistry(auto_describe=True)
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"

# every process
HTTP_REQUESTS = Counter(
    "agentauth_http_requests_total",
    "HTTP requests by route and status.",
    ["route", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "agentauth_http_request_duration_seconds",
    "Request latency by route.",
    ["route"],
    buckets=BUCKETS,
    registry=REGISTRY,
)
DEPENDENCY_ERRORS = Counter(
    "agentauth_dependency_errors_total",
    "Failed calls to Redis or PostgreSQL.",
    ["dependency"],
    registry=REGISTRY,
)
# the registry
TOKENS_ISSUED = Counter(
    "agentauth_tokens_issued_total",
    "Access tokens issued by grant type.",
    ["grant_type"],
    registry=REGISTRY,
)
DPOP_FAILURES = Counter(
    "agentauth_dpop_failures_total",
    "Rejected DPoP proofs by error.",
    ["reason"],
    registry=REGISTRY,
)
REVOCATIONS = Counter(
    "agentauth_revocations_total", "Revocations by kind.", ["kind"], registry=REGISTRY
)
SIGNING_KEY_AGE = Gauge(
    "agentauth_signing_key_age_seconds",
    "Age of the key that signs tokens now.",
    registry=REGISTRY,
)
AUDIT_CHAIN_OK = Gauge(
    "agentauth_audit_chain_ok", "1 when the last audit verification passed.", registry=REGISTRY
)
AUDIT_LAST_VERIFIED = Gauge(
    "agentauth_audit_last_verified_timestamp_seconds",
    "When the audit chain was last verified.",
    registry=REGISTRY,
)
# the worker
LEDGER_ENTRIES = Counter(
    "agentauth_ledger_entries_total", "Spends written to the ledger.", registry=REGISTRY
)
PRUNED_ROWS = Counter(
    "agentauth_pruned_rows_total", "Expired rows deleted.", ["table"], registry=REGISTRY
)
# the verifier
VERIFY_DECISIONS = Counter(
    "agentauth_verify_decisions_total",
    "/verify decisions by reason.",
    ["reason"],
    registry=REGISTRY,
)
TOKEN_CACHE = Counter(
    "agentauth_verifier_token_cache_total",
    "Verified-token cache lookups by result.",
    ["result"],
    registry=REGISTRY,
)
CACHED_TOKENS = Gauge(
    "agentauth_verifier_cached_tokens", "Verified tokens held.", registry=REGISTRY
)
REVOKED_ENTRIES = Gauge(
    "agentauth_verifier_revoked_entries", "Revocations held in process.", registry=REGISTRY
)
REVOCATION_RESYNCS = Counter(
    "agentauth_revocation_resyncs_total", "Revocation resyncs.", ["source"], registry=REGISTRY
)
REVOCATION_GAPS = Counter(
    "agentauth_revocation_gaps_total", "Sequence gaps filled from the log.", registry=REGISTRY
)
REVOCATION_LAG = Histogram(
    "agentauth_revocation_lag_seconds",
    "Time from the registry's publish to this verifier applying a revocation.",
    buckets=BUCKETS,
    registry=REGISTRY,
)


def record_request(route: str, status: int | str, seconds: float) -> None:
    """One HTTP request: counted by route and status, timed by route."""
    HTTP_REQUESTS.labels(route, str(status)).inc()
    HTTP_DURATION.labels(route).observe(seconds)


def dependency_error(dependency: Literal["redis", "postgres"]) -> None:
    """One failed call to Redis or PostgreSQL (the dependency-errors alert counts these)."""
    DEPENDENCY_ERRORS.labels(dependency).inc()


def sample(name: str, **labels: str) -> float:
    """The current value of one series (0 when it has none yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


class MetricsMiddleware:
    """Counts requests and observes latency by route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": "500"}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = str(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = scope.get("route")
            record_request(
                getattr(route, "path", "unmatched"), status["code"], time.perf_counter() - started
            )


def scrape(token: str | None, authorization: str | None) -> Response:
    """The ``/metrics`` answer: the text format, or 401 when ``token`` is set and the caller
    did not send ``Authorization: Bearer <token>`` (compared in constant time)."""
    if token is not None:
        scheme, _, sent = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            sent.strip().encode(), token.encode()
        ):
            return Response(
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="agentauth-metrics"'},
            )
    return Response(generate_latest(REGISTRY), media_type=TEXT_FORMAT)
