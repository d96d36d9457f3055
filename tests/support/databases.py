"""Fresh databases for a test run: the local PostgreSQL/Redis given by environment variables,
or testcontainers where a Docker engine exists. Nothing depends on leftovers."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(_plain(url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def postgres_database() -> Iterator[str]:
    """Create ``agentauth_test_<random>`` and drop it afterwards; yields its asyncpg URL."""
    admin_url = os.environ.get("AGENTAUTH_TEST_DATABASE_URL", DEFAULT_POSTGRES)
    name = f"agentauth_test_{secrets.token_hex(6)}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def redis_url() -> str:
    return os.environ.get("AGENTAUTH_TEST_REDIS_URL", DEFAULT_REDIS)
