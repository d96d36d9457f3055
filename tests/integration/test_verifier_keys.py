"""The verifier serves the registry's published keys from its first ready moment, even when
it started before the registry created any (issue: a fresh deployment served
``{"keys": []}`` until a token had passed). This module has its own database: it needs
one without keys."""

from __future__ import annotations

import httpx

from app.registry.app import create_app as create_registry
from app.settings import Settings
from app.verifier.app import create_app as create_verifier
from tests.support.clock import Clock
from tests.support.databases import own_database_fixtures
from tests.support.verifier import eventually

database_url, verifier_database_url = own_database_fixtures("keys")


async def test_a_verifier_that_started_first_serves_the_first_key_without_any_token(
    settings: Settings, clock: Clock, verifier_database_url: str
) -> None:
    verifier = create_verifier(
        settings.model_copy(update={"database_url": verifier_database_url}), clock=clock
    )
    async with verifier.running():
        transport = httpx.ASGITransport(app=verifier)
        async with httpx.AsyncClient(transport=transport, base_url="http://v") as http:
            early = await http.get("/readyz")
            assert early.status_code == 503
            assert early.json()["checks"]["keys"] is False  # not "loaded" with nothing to use
            assert (await http.get("/.well-known/jwks.json")).json() == {"keys": []}

            registry = create_registry(settings, clock=clock)
            async with registry.router.lifespan_context(registry):
                kid = registry.state.registry.keys.current(int(clock())).kid

                async def served() -> bool:
                    keys = (await http.get("/.well-known/jwks.json")).json()["keys"]
                    return [key["kid"] for key in keys] == [kid]

                await eventually(served, within=5)
                assert (await http.get("/readyz")).status_code == 200
