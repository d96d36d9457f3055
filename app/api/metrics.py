"""A minimal Prometheus text-format registry (counters and latency histograms).

Kept dependency-free; labels are a small closed set (route templates, status codes, reasons),
never user input, so cardinality stays bounded.
"""

from __future__ import annotations

import hmac
import time
from bisect import bisect_left
from collections import defaultdict
from typing import Literal

from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
Labels = tuple[tuple[str, str], ...]


HTTP_DURATION = "agentauth_http_request_duration_seconds"


class Metrics:
    def __init__(self) -> None:
        self.counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self.histograms: dict[str, dict[Labels, list[float]]] = defaultdict(dict)
        self.sums: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self.help: dict[str, str] = {HTTP_DURATION: "Request latency by route."}
        self.gauges: dict[str, float] = {}

    def inc(self, name: str, help_text: str, value: float = 1.0, **labels: str) -> None:
        self.help[name] = help_text
        self.counters[name][tuple(sorted(labels.items()))] += value

    def gauge(self, name: str, help_text: str, value: float) -> None:
        self.help[name] = help_text
        self.gauges[name] = value

    def record_request(self, route: str, status: int | str, seconds: float) -> None:
        """One HTTP request: counted by route and status, timed by route."""
        self.inc(
            "agentauth_http_requests_total",
            "HTTP requests by route and status.",
            route=route,
            status=str(status),
        )
        self.observe(seconds, route=route)

    def observe(self, seconds: float, **labels: str) -> None:
        """Request latency (``agentauth_http_request_duration_seconds``)."""
        self.observe_named(HTTP_DURATION, "Request latency by route.", seconds, **labels)

    def observe_named(self, name: str, help_text: str, seconds: float, **labels: str) -> None:
        self.help[name] = help_text
        key = tuple(sorted(labels.items()))
        buckets = self.histograms[name].setdefault(key, [0.0] * (len(BUCKETS) + 1))
        buckets[bisect_left(BUCKETS, seconds)] += 1
        self.sums[name][key] += seconds

    def render(self) -> str:
        lines: list[str] = []
        for name, series in sorted(self.counters.items()):
            lines += [f"# HELP {name} {self.help[name]}", f"# TYPE {name} counter"]
            lines += [f"{name}{_labels(k)} {v}" for k, v in sorted(series.items())]
        for name, value in sorted(self.gauges.items()):
            lines += [f"# HELP {name} {self.help[name]}", f"# TYPE {name} gauge", f"{name} {value}"]
        for name in sorted({HTTP_DURATION, *self.histograms}):
            lines += [f"# HELP {name} {self.help[name]}", f"# TYPE {name} histogram"]
            for key, buckets in sorted(self.histograms[name].items()):
                cumulative = 0.0
                for bound, count in zip((*BUCKETS, float("inf")), buckets, strict=True):
                    cumulative += count
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    lines.append(f"{name}_bucket{_labels((*key, ('le', le)))} {cumulative}")
                lines.append(f"{name}_sum{_labels(key)} {self.sums[name][key]}")
                lines.append(f"{name}_count{_labels(key)} {cumulative}")
        return "\n".join(lines) + "\n"


def dependency_error(dependency: Literal["redis", "postgres"]) -> None:
    """One failed call to Redis or PostgreSQL (the dependency-errors alert counts these)."""
    METRICS.inc(
        "agentauth_dependency_errors_total",
        "Failed calls to Redis or PostgreSQL.",
        dependency=dependency,
    )


def _labels(items: Labels) -> str:
    if not items:
        return ""
    inner = ",".join(f'{k}="{v}"' for k, v in items)
    return "{" + inner + "}"


METRICS = Metrics()


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
            METRICS.record_request(
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
    return PlainTextResponse(METRICS.render(), media_type="text/plain; version=0.0.4")
