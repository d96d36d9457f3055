"""A registry and a verifier as ``agentauth serve`` processes on a fresh PostgreSQL database
(the verifier on its read-only role) and Redis, for tests that drive them from outside:
a browser, or a client nobody here wrote."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.store.migrate import upgrade
from tests.support.databases import postgres_database, readonly_role, redis_server
from tests.support.processes import Service, free_port


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
