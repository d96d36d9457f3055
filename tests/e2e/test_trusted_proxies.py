"""Per-address limits key on the real client: ``X-Forwarded-For`` is believed only from the
proxies in ``AGENTAUTH_TRUSTED_PROXIES`` (threat model, hardening rule 6). A registry started
with ``agentauth serve`` as operators do, on SQLite and the in-process cache."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from app.store.migrate import upgrade
from tests.support.processes import Service, free_port

JUNK = 31  # one more than the 30 failed registrations an address may make a minute


@pytest.fixture
def registry_env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'agentauth.db'}"
    upgrade(url)
    return {
        "AGENTAUTH_ISSUER": "http://localhost",
        "AGENTAUTH_DATABASE_URL": url,
        "AGENTAUTH_REDIS_URL": "memory://",
        "AGENTAUTH_KEY_ENCRYPTION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    }


@contextmanager
def started(env: dict[str, str], log: Path) -> Iterator[Service]:
    service = Service("registry", env, log, free_port())
    service.start()
    try:
        yield service
    finally:
        service.stop()


def junk_from_many_addresses(url: str) -> list[int]:
    """Failed registrations, each claiming another client address."""
    with httpx.Client(base_url=url, timeout=10) as http:
        return [
            http.post(
                "/register", json={}, headers={"X-Forwarded-For": f"203.0.113.{i + 1}"}
            ).status_code
            for i in range(JUNK)
        ]


def test_forwarded_addresses_from_an_untrusted_peer_are_ignored(
    registry_env: dict[str, str], tmp_path: Path
) -> None:
    with started(registry_env, tmp_path / "registry.log") as service:
        statuses = junk_from_many_addresses(service.url)
        assert statuses == [401] * 30 + [429]  # one bucket: the TCP peer's


def test_forwarded_addresses_from_a_trusted_proxy_are_the_clients(
    registry_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**registry_env, "AGENTAUTH_TRUSTED_PROXIES": "127.0.0.1"}
    with started(env, tmp_path / "registry.log") as service:
        statuses = junk_from_many_addresses(service.url)
        assert statuses == [401] * JUNK  # one bucket per forwarded client
