"""Tests that stall, restart or flush Redis: each runs its own redis-server on a free port,
which the registry and verifier of the test use instead of the shared one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import RedisServer, private_redis


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisServer]:
    with private_redis(tmp_path) as server:
        yield server


@pytest.fixture
def redis_url(redis_process: RedisServer) -> str:
    return redis_process.url
