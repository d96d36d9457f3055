"""Tests that fail Redis over: each starts its own primary, replica and Sentinel on free ports
(``redis-server --sentinel``), and the registry and verifier of the test reach Redis through
the Sentinel (``redis+sentinel://``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sentinel import Group, sentinel_group


@pytest.fixture
def group(tmp_path: Path) -> Iterator[Group]:
    """(primary, replica, Sentinel)."""
    with sentinel_group(tmp_path) as servers:
        yield servers


@pytest.fixture
def redis_url(group: Group) -> str:
    return group[2].url()
