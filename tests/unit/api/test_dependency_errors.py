"""The dependency-errors counter (its alert fires on any increase) counts failed calls only,
once each, under one label per dependency."""

from __future__ import annotations

import json

from app.api.errors import exception_response, unavailable
from app.api.metrics import sample
from app.cache.base import CacheUnavailable
from app.store.sql import DatabaseUnavailable

NAME = "agentauth_dependency_errors_total"


def counts() -> dict[str, float]:
    return {name: sample(NAME, dependency=name) for name in ("redis", "postgres")}


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


def test_an_unreachable_cache_is_a_503_in_the_one_renderer() -> None:
    """No route converts a cache failure by hand: the shared renderer answers it."""
    before = counts()
    response = exception_response(CacheUnavailable("admission: connection refused"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert json.loads(bytes(response.body))["error"] == "temporarily_unavailable"
    assert counts().get("redis", 0) - before.get("redis", 0) == 1
