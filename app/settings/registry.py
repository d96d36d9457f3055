"""The registry's settings: its secrets (the admin token, the key-encryption key, the DPoP
nonce secret), WebAuthn and key policy, on top of the shared and audit settings."""

from __future__ import annotations

import base64
import binascii
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from app.settings.audit import AuditSettings
from app.settings.common import CommonSettings, long_secret

SigningAlg = Literal["ES256", "EdDSA"]
RegistrationPolicy = Literal["closed", "enrollment-token", "open-public"]


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


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class RegistrySettings(CommonSettings, AuditSettings):
    """What ``agentauth serve registry`` reads."""

    admin_token: SecretStr | None = Field(
        default=None,
        description=(
            "operator bearer token, at least 32 characters; the admin API is closed without it"
        ),
    )
    key_encryption_key: SecretStr | None = Field(
        default=None,
        description=(
            "32 bytes, base64 or base64url; encrypts signing keys at rest (AES-256-GCM); in "
            "development a local `.agentauth-kek` file is used when unset"
        ),
    )
    dpop_nonce_secret: SecretStr | None = Field(
        default=None,
        description="at least 32 characters; shared by all replicas for stateless DPoP nonces",
    )
    dpop_require_nonce: bool = Field(
        default=False,
        description="require server nonces in DPoP proofs (needs `DPOP_NONCE_SECRET`)",
    )
    webauthn_rp_id: str | None = Field(
        default=None,
        description="WebAuthn relying-party id (unset: the issuer's host)",
    )
    webauthn_origin: str | None = Field(
        default=None,
        description="WebAuthn origin (unset: the issuer's origin)",
    )
    signing_alg: SigningAlg = Field(
        default="ES256",
        description="`ES256` or `EdDSA` for new signing keys",
    )
    rate_limit_scale: float = Field(
        default=1.0,
        gt=0,
        le=1_000_000,
        description=(
            "multiplies every per-address and per-client rate limit (see api.md); raise it for "
            "load tests (behind a proxy, set `AGENTAUTH_TRUSTED_PROXIES` instead)"
        ),
    )
    key_reload_seconds: float = Field(
        default=30,
        ge=0.1,
        le=3600,
        description=(
            "how often each registry worker reloads the key set (keep it well below the "
            "pre-publication period)"
        ),
    )
    key_prepublish_seconds: int = Field(
        default=3600,
        ge=0,
        le=30 * 86400,
        description="default period a rotated key is published before it signs (0 to 30 days)",
    )
    invite_ttl: int = Field(
        default=7 * 86400,
        ge=300,
        le=30 * 86400,
        description="lifetime of a human's invite link in seconds (5 minutes to 30 days)",
    )

    registration_policy: RegistrationPolicy = Field(
        default="enrollment-token",
        description=(
            "who may use `POST /register`: `enrollment-token` (an initial access token), "
            "`open-public` (also public clients without one; `agentauth dev` sets it) or "
            "`closed` (nobody)"
        ),
    )
    authorization_grant_lifetime: int = Field(
        default=86400,
        ge=300,
        le=90 * 86400,
        description=(
            "how long a grant approved through `/authorize` lasts, in seconds (its refresh "
            "tokens end with it)"
        ),
    )
    client_metadata_ca_file: str | None = Field(
        default=None,
        description=(
            "PEM file of certificate authorities trusted, besides the system's, when fetching "
            "Client ID Metadata Documents (a private CA)"
        ),
    )
    client_metadata_allow_private: bool = Field(
        default=False,
        description=(
            "fetch Client ID Metadata Documents from http, loopback and private addresses "
            "(development only; refused in production)"
        ),
    )

    @field_validator("key_encryption_key")
    @classmethod
    def _kek(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            decode_key_encryption_key(value.get_secret_value())
        return value

    @field_validator("dpop_nonce_secret", "admin_token")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        return long_secret(value)

    @model_validator(mode="after")
    def _nonce_needs_secret(self) -> Self:
        if self.dpop_require_nonce and self.dpop_nonce_secret is None:
            raise ValueError("AGENTAUTH_DPOP_REQUIRE_NONCE needs AGENTAUTH_DPOP_NONCE_SECRET")
        return self

    def production_problems(self) -> list[str]:
        problems = super().production_problems()
        for secret in ("admin_token", "key_encryption_key", "dpop_nonce_secret"):
            if getattr(self, secret) is None:
                problems.append(f"AGENTAUTH_{secret.upper()} must be set in production")
        if self.client_metadata_allow_private:
            problems.append("AGENTAUTH_CLIENT_METADATA_ALLOW_PRIVATE must be false in production")
        return problems

    @property
    def rp_id(self) -> str:
        """WebAuthn relying-party id: ``WEBAUTHN_RP_ID`` or the issuer's host."""
        return self.webauthn_rp_id or (urlsplit(self.issuer).hostname or "localhost")

    @property
    def origin(self) -> str:
        """WebAuthn origin: ``WEBAUTHN_ORIGIN`` or the issuer's origin."""
        return self.webauthn_origin or _origin(self.issuer)
