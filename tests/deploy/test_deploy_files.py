"""The container image and the compose stack, checked structurally (no container engine
runs here): services, commands that exist in the CLI, variables that exist in the
settings, health checks and start-up order."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from app.cache.redis_urls import parse_sentinel_url
from app.cli import app
from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
AGENTAUTH_SERVICES = ("migrate", "registry", "verifier", "worker")
# Variables read outside the settings class, each by one documented command.
EXTRA_VARIABLES = {"AGENTAUTH_READONLY_PASSWORD", "AGENTAUTH_HEALTH_URL"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def known_variables() -> set[str]:
    return {f"AGENTAUTH_{name.upper()}" for name in Settings.model_fields} | EXTRA_VARIABLES


def test_the_stack_has_every_service_with_health_and_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "redis", *AGENTAUTH_SERVICES}
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    for name in ("registry", "verifier", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["registry"]["ports"] == ["8080:8080"]
    assert services["verifier"]["ports"] == ["8081:8081"]
    for name in ("registry", "verifier"):
        assert services[name]["environment"]["AGENTAUTH_HEALTH_URL"].endswith("/healthz")


@pytest.mark.parametrize("service", AGENTAUTH_SERVICES)
def test_each_command_exists_in_the_cli(compose: dict[str, Any], service: str) -> None:
    command = compose["services"][service]["command"]
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output


def test_the_verifier_connects_with_the_read_only_role(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "--readonly-role" in services["migrate"]["command"]
    role = services["migrate"]["command"][-1]
    assert f"://{role}:" in services["verifier"]["environment"]["AGENTAUTH_DATABASE_URL"]
    for name in ("registry", "worker", "migrate"):
        assert f"://{role}:" not in services[name]["environment"]["AGENTAUTH_DATABASE_URL"]


def test_every_variable_is_a_setting_and_secrets_come_from_the_env_file(
    compose: dict[str, Any],
) -> None:
    text = (ROOT / "docker-compose.yml").read_text() + (ROOT / ".env.example").read_text()
    used = set(re.findall(r"\bAGENTAUTH_[A-Z_]+", text))
    assert used <= known_variables(), used - known_variables()
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    for secret in (
        "AGENTAUTH_ADMIN_TOKEN",
        "AGENTAUTH_KEY_ENCRYPTION_KEY",
        "AGENTAUTH_DPOP_NONCE_SECRET",
        "POSTGRES_PASSWORD",
        "VERIFIER_DB_PASSWORD",
    ):
        assert secret in example  # fmt: skip
    compose_text = (ROOT / "docker-compose.yml").read_text()
    for name in example:  # each one reaches the services that read it, through ${...}
        assert "${" + name in compose_text, name
    for name in AGENTAUTH_SERVICES:
        assert "env_file" not in compose["services"][name], name


def test_the_image_is_multi_stage_non_root_with_a_health_check() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.count("\nFROM ") + dockerfile.startswith("FROM ") >= 2
    assert re.search(r"^USER 10001$", dockerfile, re.MULTILINE)
    assert "HEALTHCHECK" in dockerfile
    assert 'ENTRYPOINT ["agentauth"]' in dockerfile
    assert "org.opencontainers.image.title" in dockerfile
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    assert "pip install" not in final_stage  # built in the first stage only


def test_the_sentinel_override_points_every_process_at_a_sentinel_watching_redis(
    compose: dict[str, Any],
) -> None:
    """deploy/compose/sentinel.yml: a replica of the compose `redis`, a Sentinel monitoring
    it, and every AgentAuth service reaching Redis through a valid Sentinel URL."""
    override = yaml.safe_load((ROOT / "deploy" / "compose" / "sentinel.yml").read_text())
    services = override["services"]
    assert services["redis-replica"]["command"][1:4] == ["--replicaof", "redis", "6379"]
    sentinel_script = services["redis-sentinel"]["command"][0]
    assert "sentinel monitor agentauth redis 6379 1" in sentinel_script
    assert "--sentinel" in sentinel_script
    for name in AGENTAUTH_SERVICES:
        assert name in compose["services"]
        url = services[name]["environment"]["AGENTAUTH_REDIS_URL"]
        address = parse_sentinel_url(url)
        assert address.sentinels == (("redis-sentinel", 26379),)
        assert address.service == "agentauth"
        assert services[name]["depends_on"]["redis-sentinel"]["condition"] == "service_healthy"
