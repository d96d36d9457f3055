"""Where signed audit checkpoints go and the key that signs or checks them: read by the
registry (``/admin/audit/verify``) and the worker (which writes them), never the verifier."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.checkpoints import audit_private_key, audit_public_key


class AuditSettings(BaseSettings):
    """The audit checkpoint settings, mixed into the registry's and the worker's."""

    model_config = SettingsConfigDict(env_prefix="AGENTAUTH_", extra="ignore", frozen=True)

    audit_checkpoints: str | None = Field(
        default=None,
        description=(
            "where signed audit checkpoints go, on storage the database cannot write: a "
            "directory, or `s3://bucket/prefix` (`agentauth dev`: "
            "`<data-dir>/audit-checkpoints`); unset, no checkpoints"
        ),
    )
    audit_s3_endpoint: str = Field(
        default="https://s3.amazonaws.com",
        description="S3 or S3-compatible endpoint for `s3://` checkpoints (path-style)",
    )
    audit_s3_region: str = Field(
        default="us-east-1",
        description="its region, for request signing",
    )
    audit_s3_access_key_id: str | None = Field(
        default=None,
        description="access key id for `s3://` checkpoints (put, get and list)",
    )
    audit_s3_secret_access_key: SecretStr | None = Field(
        default=None,
        description="its secret access key",
    )
    audit_checkpoint_interval: int = Field(
        default=300,
        ge=1,
        le=86_400,
        description=(
            "seconds between the worker's checkpoints of a growing audit chain (1 to 86400)"
        ),
    )
    audit_signing_key: SecretStr | None = Field(
        default=None,
        description=(
            "the audit key: an Ed25519 seed, 32 bytes base64url, held by the worker only "
            "(`agentauth audit keygen`)"
        ),
    )
    audit_public_key: str | None = Field(
        default=None,
        description=(
            "its public half (base64url), for `audit verify` where the signing key is not; unset,"
            " derived from the signing key"
        ),
    )

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

    @model_validator(mode="after")
    def _bucket_needs_credentials(self) -> Self:
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
    def _checkpoints_need_a_key(self) -> Self:
        if self.audit_checkpoints is not None and not (
            self.audit_signing_key or self.audit_public_key
        ):
            raise ValueError(
                "AGENTAUTH_AUDIT_CHECKPOINTS needs AGENTAUTH_AUDIT_SIGNING_KEY (to write"
                " checkpoints) or AGENTAUTH_AUDIT_PUBLIC_KEY (to check them)"
            )
        return self
