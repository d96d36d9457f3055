"""The dependency-errors counter (its alert fires on any increase) counts failed calls only,
once each, under one label per dependency."""

from __future__ import annotations

from app.api.errors import exception_response, unavailable
from app.api.metrics import METRICS
from app.store.sql import DatabaseUnavailable

NAME = "agentauth_dependency_errors_total"


def counts() -> dict[str, float]:
    return {dict(k)["dependency"]: v for k, v in METRICS.counters[NAME].items()}


def test_only_failed_calls_are_counted_once_each() -> None:
    before = counts()
    throttled = unavailable("caller lookups are rate limited")
    assert throttled.status_code == 503
    assert throttled.headers["Retry-After"] == "1"
    assert counts() == before  # a throttle or a state being rebuilt is not a failed call
    unavailable("replay protection: down", "redis")
    response = exception_response(DatabaseUnavailable("connect: refused"))
    assert response.status_code == 503
    after = counts()
    assert after.get("redis", 0) - before.get("redis", 0) == 1
    assert after.get("postgres", 0) - before.get("postgres", 0) == 1
    assert set(after) <= {"redis", "postgres"}
