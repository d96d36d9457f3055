"""A registry and a verifier as ``agentauth serve`` processes on a fresh PostgreSQL database
(the verifier on its read-only role) and Redis, for tests that drive them from outside:
a browser, or a client nobody here wrote."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.store.migrate import upgrade
from tests.support.clock import WallClock
from tests.support.databases import postgres_database, readonly_role, redis_server
from tests.support.processes import Service, free_port
from tests.support.registry import RegistryClient


@dataclass
class Site:
    registry: Service
    verifier: Service
    base: str  # what a browser opens: http://localhost:<registry port>


@contextmanager
def running_site(
    workdir: Path, *, admin_token: str, issuer: str | None = None, **settings: str
) -> Iterator[Site]:
    """Both processes on free ports; ``issuer`` defaults to ``base``, and the metadata's
    introspection endpoint names the verifier as ``http://localhost:<port>``."""
    port, verifier_port = free_port(), free_port()
    base = f"http://localhost:{port}"
    with ExitStack() as stack:
        database_url = stack.enter_context(postgres_database())
        upgrade(database_url)
        readonly = stack.enter_context(readonly_role(database_url))
        common = {
            "AGENTAUTH_ISSUER": issuer or base,
            "AGENTAUTH_VERIFIER_URL": f"http://localhost:{verifier_port}",
            "AGENTAUTH_WEBAUTHN_ORIGIN": base,
            "AGENTAUTH_WEBAUTHN_RP_ID": "localhost",
            "AGENTAUTH_REDIS_URL": stack.enter_context(redis_server()),
            "AGENTAUTH_ADMIN_TOKEN": admin_token,
            "AGENTAUTH_CACHE_NAMESPACE": f"site-{secrets.token_hex(4)}",
            "AGENTAUTH_KEY_ENCRYPTION_KEY": base64.urlsafe_b64encode(
                secrets.token_bytes(32)
            ).decode(),
            **settings,
        }
        registry = Service(
            "registry", {**common, "AGENTAUTH_DATABASE_URL": database_url},
            workdir / "registry.log", port,
        )  # fmt: skip
        verifier = Service(
            "verifier", {**common, "AGENTAUTH_DATABASE_URL": readonly},
            workdir / "verifier.log", verifier_port,
        )  # fmt: skip
        registry.start()
        stack.callback(registry.stop)
        verifier.start()
        stack.callback(verifier.stop)
        yield Site(registry, verifier, base)


def site_fixtures(
    name: str, *, admin_token: str, issuer: str | None = None, **settings: str
) -> tuple[Any, Any]:
    """A module's ``site`` (one stack per module) and ``operator`` (an admin client of it)
    fixtures: ``site, operator = site_fixtures("browser", admin_token=...)``; ``settings``
    are more ``AGENTAUTH_*`` variables for both processes."""

    @pytest.fixture(scope="module")
    def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
        workdir = tmp_path_factory.mktemp(name)
        with running_site(workdir, admin_token=admin_token, issuer=issuer, **settings) as running:
            yield running

    @pytest.fixture
    async def operator(site: Site) -> AsyncIterator[RegistryClient]:
        async with httpx.AsyncClient(base_url=site.registry.url, timeout=10) as http:
            client = RegistryClient(
                http=http, app=None, clock=WallClock(), admin_token=admin_token, base_url=site.base
            )
            yield client
            await client.close()

    return site, operator
