"""Fresh databases for a test run.

PostgreSQL and Redis come from ``AGENTAUTH_TEST_DATABASE_URL`` / ``AGENTAUTH_TEST_REDIS_URL``,
else from the local servers on 127.0.0.1, else from testcontainers where a Docker engine
exists. Each run creates its own database and drops it afterwards: nothing depends on
leftovers.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Literal

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from app.store.migrate import upgrade
from app.store.roles import ensure_readonly_role

LOCAL_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(_plain(url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _postgres_server(stack: ExitStack) -> str:
    configured = os.environ.get("AGENTAUTH_TEST_DATABASE_URL")
    if configured:
        return configured
    if _reachable(5432):
        return LOCAL_POSTGRES
    from testcontainers.postgres import PostgresContainer  # only where Docker exists

    container = stack.enter_context(PostgresContainer("postgres:16-alpine", driver="asyncpg"))
    return str(container.get_connection_url())


@contextmanager
def postgres_database() -> Iterator[str]:
    """Create ``agentauth_test_<random>`` and drop it afterwards; yields its asyncpg URL."""
    with ExitStack() as stack:
        admin_url = _postgres_server(stack)
        name = f"agentauth_test_{secrets.token_hex(6)}"
        asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
        try:
            yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
        finally:
            asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def readonly_role(database_url: str) -> Iterator[str]:
    """The verifier's read-only role on ``database_url`` (created, then dropped); yields the
    URL that connects as that role."""
    role, password = f"agentauth_ro_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    asyncio.run(ensure_readonly_role(database_url, role, password))
    try:
        yield (
            make_url(database_url)
            .set(username=role, password=password)
            .render_as_string(hide_password=False)
        )
    finally:
        asyncio.run(_admin(database_url, f'DROP OWNED BY "{role}"'))
        asyncio.run(_admin(database_url, f'DROP ROLE "{role}"'))


@contextmanager
def redis_server() -> Iterator[str]:
    configured = os.environ.get("AGENTAUTH_TEST_REDIS_URL")
    if configured or _reachable(6379):
        yield configured or LOCAL_REDIS
        return
    from testcontainers.redis import RedisContainer

    with RedisContainer("redis:7-alpine") as container:
        yield f"redis://{container.get_container_host_ip()}:{container.get_exposed_port(6379)}/0"


@contextmanager
def migrated_database(kind: str, workdir: Path) -> Iterator[str]:
    """A fresh database migrated from scratch: ``postgresql`` (created and dropped) or
    ``sqlite`` (a file in ``workdir``)."""
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / 'agentauth.db'}"
        upgrade(url)
        yield url
        return
    with postgres_database() as url:
        upgrade(url)
        yield url


def own_database_fixtures(
    name: str, scope: Literal["session", "module"] = "module"
) -> tuple[Any, Any]:
    """``database_url`` and ``verifier_database_url`` fixtures: a fresh database migrated
    from scratch, on PostgreSQL (production) and on SQLite (the embedded default), and the
    URL the verifier uses (a read-only role on PostgreSQL; SQLite has no roles). The
    integration tests share one pair for the session; a module that needs a database of its
    own (it rewrites, prunes or must start empty) declares another::

        database_url, verifier_database_url = own_database_fixtures("audit")
    """

    @pytest.fixture(scope=scope, params=["postgresql", "sqlite"])
    def database_url(
        request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[str]:
        with migrated_database(request.param, tmp_path_factory.mktemp(name)) as url:
            yield url

    @pytest.fixture(scope=scope)
    def verifier_database_url(database_url: str) -> Iterator[str]:
        if not database_url.startswith("postgresql"):
            yield database_url
            return
        with readonly_role(database_url) as url:
            yield url

    return database_url, verifier_database_url
