"""A registry on a fresh PostgreSQL database and the local Redis, driven over ASGI."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from app.registry.app import create_app
from app.settings import Settings
from app.verifier.app import VerifierApp
from app.verifier.app import create_app as create_verifier
from tests.support.clock import Clock
from tests.support.databases import own_database_fixtures, redis_server
from tests.support.registry import RegistryClient

ISSUER = "http://localhost"
ADMIN_TOKEN = "admin-" + "x" * 40
KEK = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()  # one per test run


# Every integration test runs on PostgreSQL and on SQLite, one fresh database each.
database_url, verifier_database_url = own_database_fixtures("sqlite", scope="session")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(database_url: str, redis_url: str) -> Settings:
    return Settings(
        issuer=ISSUER,
        verifier_url="http://localhost:8081",
        database_url=database_url,
        redis_url=redis_url,
        cache_namespace=f"test-{secrets.token_hex(6)}",
        admin_token=ADMIN_TOKEN,
        key_encryption_key=KEK,
        dpop_nonce_secret="n" * 40,
        key_prepublish_seconds=0,
    )


@pytest.fixture
async def registry(settings: Settings, clock: Clock) -> AsyncIterator[RegistryClient]:
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            client = RegistryClient(http=http, app=app, clock=clock, admin_token=ADMIN_TOKEN)
            try:
                yield client
            finally:
                await client.close()


@pytest.fixture
async def verifier(
    settings: Settings, clock: Clock, verifier_database_url: str, registry: RegistryClient
) -> AsyncIterator[VerifierApp]:
    """A verifier on the same database (read-only role) and cache as ``registry``."""
    app = create_verifier(
        settings.model_copy(update={"database_url": verifier_database_url}), clock=clock
    )
    async with app.running():
        yield app


@pytest.fixture
async def verifier_http(verifier: VerifierApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=verifier)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8081") as http:
        yield http
