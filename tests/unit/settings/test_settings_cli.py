"""Settings (production guard, TOK-21) and the command line."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from app import __version__
from app.cli import app
from app.core.jwk import parse_public_jwk
from app.core.keys import load_private_jwk
from app.settings import Settings, decode_key_encryption_key

KEK = base64.urlsafe_b64encode(b"k" * 32).decode().rstrip("=")
PRODUCTION = {
    "AGENTAUTH_ENVIRONMENT": "production",
    "AGENTAUTH_ISSUER": "https://auth.example.com",
    "AGENTAUTH_VERIFIER_URL": "https://verify.example.com",
    "AGENTAUTH_DATABASE_URL": "postgresql+asyncpg://agentauth@db/agentauth",
    "AGENTAUTH_REDIS_URL": "redis://cache:6379/0",
    "AGENTAUTH_ADMIN_TOKEN": "a" * 40,
    "AGENTAUTH_KEY_ENCRYPTION_KEY": KEK,
    "AGENTAUTH_DPOP_NONCE_SECRET": "n" * 40,
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("AGENTAUTH_"):
            monkeypatch.delenv(name)


def test_development_defaults() -> None:
    settings = Settings()
    assert settings.environment == "development"
    assert settings.issuer == "http://localhost:8080"
    assert settings.redis_url == "memory://"
    assert (settings.rp_id, settings.origin) == ("localhost", "http://localhost:8080")


def test_webauthn_overrides() -> None:
    settings = Settings(webauthn_rp_id="example.com", webauthn_origin="https://app.example.com")
    assert (settings.rp_id, settings.origin) == ("example.com", "https://app.example.com")


def test_production_accepts_a_complete_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.environment == "production"
    assert settings.admin_token is not None
    assert "a" * 40 not in repr(settings)  # secrets never printed


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("AGENTAUTH_ISSUER", "http://auth.example.com", "AGENTAUTH_ISSUER must use https"),
        (
            "AGENTAUTH_VERIFIER_URL",
            "http://verify.example.com",
            "AGENTAUTH_VERIFIER_URL must use https",
        ),
        ("AGENTAUTH_ADMIN_TOKEN", None, "AGENTAUTH_ADMIN_TOKEN must be set"),
        ("AGENTAUTH_KEY_ENCRYPTION_KEY", None, "AGENTAUTH_KEY_ENCRYPTION_KEY must be set"),
        ("AGENTAUTH_DPOP_NONCE_SECRET", None, "AGENTAUTH_DPOP_NONCE_SECRET must be set"),
        ("AGENTAUTH_REDIS_URL", "memory://", "AGENTAUTH_REDIS_URL"),
        ("AGENTAUTH_DATABASE_URL", "sqlite+aiosqlite:///x.db", "AGENTAUTH_DATABASE_URL"),
    ],
)
def test_production_guard_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str | None, message: str
) -> None:
    for key, setting in PRODUCTION.items():
        monkeypatch.setenv(key, setting)
    if value is None:
        monkeypatch.delenv(name)
    else:
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=message):
        Settings()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("issuer", "https://auth.example.com/"),
        ("issuer", "https://auth.example.com?x=1"),
        ("issuer", "auth.example.com"),
        ("key_encryption_key", "too-short"),
        ("key_encryption_key", "!!!!"),
        ("dpop_nonce_secret", "short"),
        ("admin_token", "short"),
        ("environment", "staging"),
        ("access_token_ttl", 10),
    ],
)
def test_invalid_values(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings(**{field: value})


def test_key_encryption_key_accepts_base64_and_base64url() -> None:
    raw = bytes(range(32))
    assert decode_key_encryption_key(base64.b64encode(raw).decode()) == raw
    assert decode_key_encryption_key(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == raw


# CLI ---------------------------------------------------------------------------------------------

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"agentauth {__version__}"


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_keys_generate_prints_a_private_jwk(alg: str) -> None:
    result = runner.invoke(app, ["keys", "generate", "--alg", alg])
    assert result.exit_code == 0
    _, public = load_private_jwk(json.loads(result.output))
    assert public.alg == alg


def test_keys_generate_public_only() -> None:
    result = runner.invoke(app, ["keys", "generate", "--public", "--kid", "agent-key-1"])
    jwk = json.loads(result.output)
    assert "d" not in jwk
    assert parse_public_jwk(jwk).kid == "agent-key-1"


def test_keys_generate_to_a_private_file(tmp_path: Path) -> None:
    target = tmp_path / "agent.jwk"
    result = runner.invoke(app, ["keys", "generate", "--out", str(target)])
    assert result.exit_code == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    private = json.loads(target.read_text())
    assert "d" in private
    assert "d" not in json.loads(result.stdout)
    again = runner.invoke(app, ["keys", "generate", "--out", str(target)])
    assert again.exit_code != 0  # never overwrites an existing key file


def test_keys_generate_refuses_unknown_alg() -> None:
    result = runner.invoke(app, ["keys", "generate", "--alg", "HS256"])
    assert result.exit_code == 2


def test_config_check(monkeypatch: pytest.MonkeyPatch) -> None:
    ok = runner.invoke(app, ["config", "check"])
    assert ok.exit_code == 0
    assert "AGENTAUTH_ISSUER=http://localhost:8080" in ok.output
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    shown = runner.invoke(app, ["config", "check"])
    assert shown.exit_code == 0
    assert "AGENTAUTH_ADMIN_TOKEN=(set)" in shown.output
    assert "a" * 40 not in shown.output
    monkeypatch.setenv("AGENTAUTH_ISSUER", "http://auth.example.com")
    bad = runner.invoke(app, ["config", "check"])
    assert bad.exit_code == 1
    assert "AGENTAUTH_ISSUER must use https in production" in bad.output
    monkeypatch.setenv("AGENTAUTH_CLOCK_SKEW", "999")
    assert "AGENTAUTH_CLOCK_SKEW" in runner.invoke(app, ["config", "check"]).output


def test_config_check_prints_each_production_problem_on_its_own_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AGENTAUTH_ISSUER", "http://auth.example.com")
    monkeypatch.setenv("AGENTAUTH_REDIS_URL", "memory://")
    errors = [
        line
        for line in runner.invoke(app, ["config", "check"]).output.splitlines()
        if line.startswith("error:")
    ]
    assert len(errors) == 2, errors
    assert any("AGENTAUTH_ISSUER must use https in production" in line for line in errors)
    assert any("AGENTAUTH_REDIS_URL must point at Redis" in line for line in errors)


def test_no_arguments_shows_help() -> None:
    result = runner.invoke(app, [])
    assert "keys" in result.output


def test_required_nonces_need_a_secret() -> None:
    with pytest.raises(ValidationError, match="AGENTAUTH_DPOP_REQUIRE_NONCE needs"):
        Settings(dpop_require_nonce=True)
    assert Settings(dpop_require_nonce=True, dpop_nonce_secret="n" * 40).dpop_require_nonce


def test_serve_refuses_a_private_cache_for_several_workers() -> None:
    result = runner.invoke(app, ["serve", "registry", "--workers", "2"])
    assert result.exit_code == 2
    assert "cannot be shared between processes" in result.output


@pytest.mark.parametrize("process", ["verifier", "worker"])
def test_verifier_and_worker_need_a_shared_cache(process: str) -> None:
    result = runner.invoke(app, ["serve", process])
    assert result.exit_code == 2
    assert "cannot be shared between processes" in result.output


def test_serve_names_the_processes_it_knows() -> None:
    result = runner.invoke(app, ["serve", "nonsense"])
    assert result.exit_code == 2
    assert "registry, verifier, worker" in result.output


def test_serve_refuses_unknown_processes() -> None:
    result = runner.invoke(app, ["serve", "gateway"])
    assert result.exit_code == 2
