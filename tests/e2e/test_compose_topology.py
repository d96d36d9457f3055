"""The docker-compose topology without containers: the same commands and environment as
docker-compose.yml (migrate with the read-only role, registry, verifier on that role,
worker), pointed at the local PostgreSQL and Redis, and the full flow through it."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy.engine import make_url

from tests.support.clock import WallClock
from tests.support.databases import _admin, postgres_database, redis_server
from tests.support.processes import Service, free_port
from tests.support.registry import RegistryClient
from tests.support.verifier import eventually, is_inactive, shop_with_grant

ROOT = Path(__file__).resolve().parents[2]


def substitute(value: str, variables: dict[str, str]) -> str:
    """Compose's interpolation: ``${NAME}`` must be set, ``${NAME:-default}`` need not."""

    def value_of(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        return variables[name] if default is None else variables.get(name, default[2:])

    return re.sub(r"\$\{(\w+)(:-[^}]*)?\}", value_of, value)


def localise(url: str, database_url: str, redis_url: str) -> str:
    """postgres:5432/agentauth and redis:6379 become the local test servers."""
    if url.startswith("redis://redis:6379"):
        return redis_url
    parsed, local = make_url(url), make_url(database_url)
    user = "postgres" if parsed.username == "agentauth" else parsed.username
    moved = local.set(username=user, password=parsed.password if user != "postgres" else None)
    return moved.render_as_string(hide_password=False)


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[dict[str, Service]]:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    role = f"agentauth_verifier_{secrets.token_hex(3)}"
    variables = {
        "POSTGRES_PASSWORD": "owner-" + secrets.token_hex(8),
        "VERIFIER_DB_PASSWORD": "verifier-" + secrets.token_hex(8),
    }
    dot_env = {  # what .env holds: compose interpolates it into each service's environment
        **variables,
        "AGENTAUTH_ISSUER": "http://localhost",  # what the test clients sign for
        "AGENTAUTH_VERIFIER_URL": "http://localhost:8081",
        "AGENTAUTH_ADMIN_TOKEN": "admin-" + "c" * 40,
        "AGENTAUTH_KEY_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "AGENTAUTH_DPOP_NONCE_SECRET": "n" * 40,
        "AGENTAUTH_CACHE_NAMESPACE": f"compose-{secrets.token_hex(4)}",
    }
    with postgres_database() as database_url, redis_server() as redis_url:
        services: dict[str, Service] = {}

        def prepare(name: str) -> tuple[list[str], dict[str, str], int | None]:
            spec = compose["services"][name]
            command = [role if arg == "agentauth_verifier" else arg for arg in spec["command"]]
            port = None
            if "--port" in command:
                port = free_port()
                command[command.index("--port") + 1] = str(port)
            env = {}
            for key, value in spec["environment"].items():
                value = substitute(str(value).replace("agentauth_verifier", role), dot_env)
                backend = value.startswith(("postgresql", "redis://"))
                env[key] = localise(value, database_url, redis_url) if backend else value
            return command, env, port

        command, env, _ = prepare("migrate")
        migrated = subprocess.run(  # noqa: S603 - our own command
            [str(Path(sys.executable).parent / "agentauth"), *command],
            env={**os.environ, **env}, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        try:
            for name in ("registry", "verifier", "worker"):
                command, env, port = prepare(name)
                services[name] = Service(name, env, tmp_path / f"{name}.log", port, command)
                services[name].start()
            yield services
        finally:
            for service in services.values():
                service.stop()
            asyncio.run(_admin(database_url, f'DROP OWNED BY "{role}"'))
            asyncio.run(_admin(database_url, f'DROP ROLE "{role}"'))


async def test_the_compose_topology_runs_the_full_flow(topology: dict[str, Service]) -> None:
    registry_url = topology["registry"].url
    async with (
        httpx.AsyncClient(base_url=registry_url, timeout=10) as http,
        httpx.AsyncClient(base_url=topology["verifier"].url, timeout=10) as verifier,
    ):
        registry = RegistryClient(
            http=http, app=None, clock=WallClock(), admin_token="admin-" + "c" * 40,
            base_url=registry_url,
        )  # fmt: skip
        shop, _, agent, grant_id = await shop_with_grant(registry, verifier)
        token = agent.access_token or ""
        assert (await shop.introspect(token)).json()["active"] is True
        assert (await registry.admin("POST", f"/grants/{grant_id}/revoke")).status_code == 200
        await eventually(lambda: is_inactive(shop, token))
        ready = (await verifier.get("/readyz")).json()
        assert ready["checks"]["database"] is True  # through the read-only role
        await registry.close()


def test_only_the_registry_is_handed_the_registry_secrets() -> None:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    secrets_ = {
        "AGENTAUTH_ADMIN_TOKEN",
        "AGENTAUTH_KEY_ENCRYPTION_KEY",
        "AGENTAUTH_DPOP_NONCE_SECRET",
    }
    for name, service in compose["services"].items():
        assert "env_file" not in service, name  # a shared file would hand over everything
        handed = secrets_ & set(service.get("environment", {}))
        assert handed == (secrets_ if name == "registry" else set()), name
