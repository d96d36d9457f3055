"""Settings every process reads: where the registry, the verifier, the database and Redis
are, and the protocol timings they must agree on. No secret of the registry's or the
worker's lives here (docs/configuration.md "Which process reads what").

Development defaults make ``agentauth dev`` work with no configuration. With
``AGENTAUTH_ENVIRONMENT=production`` the settings refuse to load unless the URLs are https
and the real backends are configured; each refusal names the variable to set. Settings are
built by the caller, never at import time.
"""

from __future__ import annotations

import ipaddress
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.cache.redis_urls import SENTINEL_SCHEME, parse_sentinel_url

Environment = Literal["development", "production"]
MIN_SECRET_CHARS = 32


def long_secret(value: SecretStr | None) -> SecretStr | None:
    if value is not None and len(value.get_secret_value()) < MIN_SECRET_CHARS:
        raise ValueError(f"must be at least {MIN_SECRET_CHARS} characters")
    return value


class CommonSettings(BaseSettings):
    """Settings shared by the registry, the verifier and the worker."""

    model_config = SettingsConfigDict(env_prefix="AGENTAUTH_", extra="ignore", frozen=True)

    environment: Environment = Field(
        default="development",
        description="`development` or `production`",
    )
    issuer: str = Field(
        default="http://localhost:8080",
        description=(
            "registry base URL; exactly the `iss` of every token (no trailing slash, query or "
            "fragment)"
        ),
    )
    verifier_url: str = Field(
        default="http://localhost:8081",
        description="verifier base URL (advertised as the introspection endpoint)",
    )
    database_url: str = Field(
        default="sqlite+aiosqlite:///./agentauth.db",
        description="`postgresql+asyncpg://...` in production",
    )
    redis_url: str = Field(
        default="memory://",
        description=(
            "`redis://...`, or Sentinels that name the primary: `redis+sentinel://host:26379,"
            'host2:26379/<service>/<db>` (docs/operations.md "Redis high availability");'
            " `memory://` is the in-process development backend"
        ),
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description=(
            "bearer token for `/metrics` on both processes, at least 32 characters; unset, the "
            "endpoint is open (serve it on an internal port only)"
        ),
    )
    trusted_proxies: str = Field(
        default="",
        description=(
            "comma-separated addresses or networks of the reverse proxies in front (or `*`); only"
            " their `X-Forwarded-For`/`-Proto` is believed. Empty: none, the TCP peer is the "
            "client"
        ),
    )
    access_token_ttl: int = Field(
        default=300,
        ge=30,
        le=3600,
        description="access-token lifetime in seconds (30 to 3600)",
    )
    clock_skew: int = Field(
        default=5,
        ge=0,
        le=60,
        description="leeway in seconds for `exp`/`iat`/`nbf` checks (0 to 60)",
    )
    dpop_max_age: int = Field(
        default=300,
        ge=10,
        le=600,
        description="oldest accepted DPoP proof `iat`, in seconds (10 to 600)",
    )
    cache_namespace: str = Field(
        default="agentauth",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description=(
            "prefix of every Redis key and channel (several deployments can share one Redis)"
        ),
    )
    database_pool_size: int = Field(
        default=20,
        ge=1,
        le=500,
        description=(
            "PostgreSQL connections per registry worker process (no overflow: requests wait for a"
            " free connection); size `max_connections` for registry workers x this, + 2 per "
            "verifier worker, + 2 per worker"
        ),
    )
    revocation_heartbeat_interval: float = Field(
        default=0.25,
        ge=0.02,
        le=5,
        description=(
            "seconds between the registry's and the worker's heartbeats announcing the revocation"
            " log's head (0.02 to 5)"
        ),
    )
    revocation_staleness_bound: float = Field(
        default=1.0,
        ge=0.1,
        le=60,
        description=(
            "a verifier whose revocation view was last confirmed current longer ago than this "
            "many seconds answers 503 (0.1 to 60; keep it above the heartbeat interval)"
        ),
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO",
        description="`DEBUG`, `INFO`, `WARNING` or `ERROR`",
    )
    log_format: Literal["json", "text"] = Field(
        default="json",
        description=(
            "`json` (one object per line with `ts`, `level`, `logger`, `message`, `request_id`; "
            "tokens and credentials scrubbed) or `text` (plain lines, scrubbed the same way)"
        ),
    )
    otel_endpoint: str | None = Field(
        default=None,
        description=(
            "OTLP/HTTP traces endpoint (e.g. `http://otel-collector:4318/v1/traces`); tracing is "
            "off without it and needs the `otel` extra (`pip install 'agentauth-server[otel]'`)"
        ),
    )

    @field_validator("issuer", "verifier_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL")
        if parts.query or parts.fragment or value.endswith("/"):
            raise ValueError("must have no query, fragment or trailing slash")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if value.startswith(SENTINEL_SCHEME):
            parse_sentinel_url(value)  # its ValueError names what is wrong
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        """Comma-separated addresses or networks (``10.0.0.0/8``), or ``*``; empty: none."""
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        for entry in entries:
            if entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(f"{entry!r} is not an IP address or network") from None
        return ",".join(entries)

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        return long_secret(value)

    @model_validator(mode="after")
    def _heartbeats_fit_the_bound(self) -> Self:
        if self.revocation_staleness_bound <= 2 * self.revocation_heartbeat_interval:
            raise ValueError(
                "AGENTAUTH_REVOCATION_STALENESS_BOUND must be more than twice"
                " AGENTAUTH_REVOCATION_HEARTBEAT_INTERVAL"
            )
        return self

    def production_problems(self) -> list[str]:
        """What production refuses in these settings, one line each (subclasses add theirs)."""
        problems = []
        for url_name in ("issuer", "verifier_url"):
            if not getattr(self, url_name).startswith("https://"):
                problems.append(f"AGENTAUTH_{url_name.upper()} must use https in production")
        if self.redis_url.startswith("memory://"):
            problems.append("AGENTAUTH_REDIS_URL must point at Redis in production (not memory://)")
        if self.database_url.startswith("sqlite"):
            problems.append("AGENTAUTH_DATABASE_URL must point at PostgreSQL in production")
        return problems

    @model_validator(mode="after")
    def _production_guard(self) -> Self:
        if self.environment != "production":
            return self
        problems = self.production_problems()
        if problems:  # one per line: `config check` and the processes print them as they are
            raise ValueError("\n".join(problems))
        return self
