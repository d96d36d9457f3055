"""Process settings from ``AGENTAUTH_*`` environment variables (docs/configuration.md).

Development defaults make ``agentauth dev`` work with no configuration. With
``AGENTAUTH_ENVIRONMENT=production`` the settings refuse to load unless the issuer is https
and the secrets and real backends are configured; each refusal names the variable to set.
Settings are built by the caller (``Settings()``), never at import time.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.checkpoints import audit_private_key, audit_public_key

Environment = Literal["development", "production"]
SigningAlg = Literal["ES256", "EdDSA"]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def decode_key_encryption_key(value: str) -> bytes:
    """``KEY_ENCRYPTION_KEY`` is 32 bytes (AES-256-GCM), base64url or base64 encoded."""
    padded = value + "=" * (-len(value) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
    except (binascii.Error, ValueError):
        raise ValueError("AGENTAUTH_KEY_ENCRYPTION_KEY must be base64 of 32 bytes") from None
    if len(raw) != 32:
        raise ValueError("AGENTAUTH_KEY_ENCRYPTION_KEY must be base64 of 32 bytes")
    return raw


class Settings(BaseSettings):
    """Settings shared by the registry, the verifier and the worker."""

    model_config = SettingsConfigDict(env_prefix="AGENTAUTH_", extra="ignore", frozen=True)

    environment: Environment = "development"
    issuer: str = "http://localhost:8080"
    verifier_url: str = "http://localhost:8081"
    database_url: str = "sqlite+aiosqlite:///./agentauth.db"
    redis_url: str = "memory://"
    admin_token: SecretStr | None = None
    metrics_token: SecretStr | None = None
    trusted_proxies: str = ""
    audit_checkpoints: str | None = None
    audit_s3_endpoint: str = "https://s3.amazonaws.com"
    audit_s3_region: str = "us-east-1"
    audit_s3_access_key_id: str | None = None
    audit_s3_secret_access_key: SecretStr | None = None
    audit_checkpoint_interval: int = Field(default=300, ge=1, le=86_400)
    audit_signing_key: SecretStr | None = None
    audit_public_key: str | None = None
    key_encryption_key: SecretStr | None = None
    dpop_nonce_secret: SecretStr | None = None
    webauthn_rp_id: str | None = None
    webauthn_origin: str | None = None

    signing_alg: SigningAlg = "ES256"
    access_token_ttl: int = Field(default=300, ge=30, le=3600)
    clock_skew: int = Field(default=5, ge=0, le=60)
    dpop_max_age: int = Field(default=300, ge=10, le=600)
    dpop_require_nonce: bool = False
    cache_namespace: str = Field(default="agentauth", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    rate_limit_scale: float = Field(default=1.0, gt=0, le=1_000_000)
    key_reload_seconds: float = Field(default=30, ge=0.1, le=3600)
    key_prepublish_seconds: int = Field(default=3600, ge=0, le=30 * 86400)
    invite_ttl: int = Field(default=7 * 86400, ge=300, le=30 * 86400)
    database_pool_size: int = Field(default=20, ge=1, le=500)
    revocation_heartbeat_interval: float = Field(default=0.25, ge=0.05, le=5)
    revocation_staleness_bound: float = Field(default=1.0, ge=0.1, le=60)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    otel_endpoint: str | None = None

    @field_validator("issuer", "verifier_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) URL")
        if parts.query or parts.fragment or value.endswith("/"):
            raise ValueError("must have no query, fragment or trailing slash")
        return value

    @field_validator("key_encryption_key")
    @classmethod
    def _kek(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            decode_key_encryption_key(value.get_secret_value())
        return value

    @field_validator("audit_signing_key")
    @classmethod
    def _audit_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            audit_private_key(value.get_secret_value())
        return value

    @field_validator("audit_public_key")
    @classmethod
    def _audit_public(cls, value: str | None) -> str | None:
        if value is not None:
            audit_public_key(value)
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

    @field_validator("dpop_nonce_secret", "admin_token", "metrics_token")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        return value

    @model_validator(mode="after")
    def _nonce_needs_secret(self) -> Settings:
        if self.dpop_require_nonce and self.dpop_nonce_secret is None:
            raise ValueError("AGENTAUTH_DPOP_REQUIRE_NONCE needs AGENTAUTH_DPOP_NONCE_SECRET")
        return self

    @model_validator(mode="after")
    def _bucket_needs_credentials(self) -> Settings:
        location = self.audit_checkpoints or ""
        if location.startswith("s3://"):
            bucket = location[5:].split("/", 1)[0]
            if not bucket or not (self.audit_s3_access_key_id and self.audit_s3_secret_access_key):
                raise ValueError(
                    "AGENTAUTH_AUDIT_CHECKPOINTS=s3://bucket/prefix needs a bucket,"
                    " AGENTAUTH_AUDIT_S3_ACCESS_KEY_ID and AGENTAUTH_AUDIT_S3_SECRET_ACCESS_KEY"
                )
        return self

    @model_validator(mode="after")
    def _checkpoints_need_a_key(self) -> Settings:
        if self.audit_checkpoints is not None and not (
            self.audit_signing_key or self.audit_public_key
        ):
            raise ValueError(
                "AGENTAUTH_AUDIT_CHECKPOINTS needs AGENTAUTH_AUDIT_SIGNING_KEY (to write"
                " checkpoints) or AGENTAUTH_AUDIT_PUBLIC_KEY (to check them)"
            )
        return self

    @model_validator(mode="after")
    def _heartbeats_fit_the_bound(self) -> Settings:
        if self.revocation_staleness_bound <= 2 * self.revocation_heartbeat_interval:
            raise ValueError(
                "AGENTAUTH_REVOCATION_STALENESS_BOUND must be more than twice"
                " AGENTAUTH_REVOCATION_HEARTBEAT_INTERVAL"
            )
        return self

    @model_validator(mode="after")
    def _production_guard(self) -> Settings:
        if self.environment != "production":
            return self
        problems = []
        for url_name in ("issuer", "verifier_url"):
            if not getattr(self, url_name).startswith("https://"):
                problems.append(f"AGENTAUTH_{url_name.upper()} must use https in production")
        for secret in ("admin_token", "key_encryption_key", "dpop_nonce_secret"):
            if getattr(self, secret) is None:
                problems.append(f"AGENTAUTH_{secret.upper()} must be set in production")
        if self.redis_url.startswith("memory://"):
            problems.append("AGENTAUTH_REDIS_URL must point at Redis in production (not memory://)")
        if self.database_url.startswith("sqlite"):
            problems.append("AGENTAUTH_DATABASE_URL must point at PostgreSQL in production")
        if problems:  # one per line: `config check` and the processes print them as they are
            raise ValueError("\n".join(problems))
        return self

    @property
    def rp_id(self) -> str:
        """WebAuthn relying-party id: ``WEBAUTHN_RP_ID`` or the issuer's host."""
        return self.webauthn_rp_id or (urlsplit(self.issuer).hostname or "localhost")

    @property
    def origin(self) -> str:
        """WebAuthn origin: ``WEBAUTHN_ORIGIN`` or the issuer's origin."""
        return self.webauthn_origin or _origin(self.issuer)
