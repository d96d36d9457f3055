"""Each process reads only its own settings: the verifier never holds a registry or worker
secret, and production asks each process only for what it reads."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.settings import RegistrySettings, Settings, VerifierSettings, WorkerSettings

SECRETS = {
    "AGENTAUTH_ADMIN_TOKEN": "a" * 40,
    "AGENTAUTH_KEY_ENCRYPTION_KEY": "A" * 43 + "=",
    "AGENTAUTH_DPOP_NONCE_SECRET": "n" * 40,
    "AGENTAUTH_AUDIT_S3_SECRET_ACCESS_KEY": "s3-secret",
}
PRODUCTION = {
    "AGENTAUTH_ENVIRONMENT": "production",
    "AGENTAUTH_ISSUER": "https://auth.example.com",
    "AGENTAUTH_VERIFIER_URL": "https://verify.example.com",
    "AGENTAUTH_REDIS_URL": "redis://redis:6379/0",
    "AGENTAUTH_DATABASE_URL": "postgresql+asyncpg://verifier@db/agentauth",
}


def test_the_verifier_holds_no_secret_of_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    held = VerifierSettings().model_dump()
    assert not {name.removeprefix("AGENTAUTH_").lower() for name in SECRETS} & set(held)
    assert "audit_signing_key" not in held
    worker = WorkerSettings().model_dump()
    assert {"admin_token", "key_encryption_key", "dpop_nonce_secret"}.isdisjoint(worker)
    assert RegistrySettings().admin_token is not None


def test_production_asks_each_process_for_its_own_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    VerifierSettings()  # loads: it needs no secret
    WorkerSettings()
    with pytest.raises(ValueError, match="AGENTAUTH_ADMIN_TOKEN must be set in production"):
        RegistrySettings()
    with pytest.raises(ValueError, match="AGENTAUTH_KEY_ENCRYPTION_KEY must be set"):
        Settings()


def test_config_check_for_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    checked = CliRunner().invoke(app, ["config", "check", "--process", "verifier"])
    assert checked.exit_code == 0, checked.output
    assert "AGENTAUTH_ADMIN_TOKEN" not in checked.output
    everything = CliRunner().invoke(app, ["config", "check"])
    assert everything.exit_code == 1
    assert "AGENTAUTH_ADMIN_TOKEN must be set in production" in everything.output
    unknown = CliRunner().invoke(app, ["config", "check", "--process", "shop"])
    assert unknown.exit_code == 2


def test_the_verifier_token_cache_bound_is_a_bounded_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError

    from app.cache.memory import MemoryCache
    from app.verifier.state import build_verifier

    monkeypatch.setenv("AGENTAUTH_TOKEN_CACHE_ENTRIES", "2000")
    settings = VerifierSettings()
    verifier = build_verifier(settings, MemoryCache(), clock=lambda: 0.0)
    assert verifier.tokens._cache._max_entries == 2000
    monkeypatch.setenv("AGENTAUTH_TOKEN_CACHE_ENTRIES", "10")
    with pytest.raises(ValidationError):
        VerifierSettings()
