"""The verifier's settings: only the shared ones. The verifier holds no registry or worker
secret (no admin token, key-encryption key, DPoP nonce secret or audit key), whatever the
environment it starts in says; import-linter keeps this module from reaching theirs."""

from __future__ import annotations

from pydantic import Field

from app.settings.common import CommonSettings


class VerifierSettings(CommonSettings):
    """What ``agentauth serve verifier`` reads."""

    spend_replicas: int = Field(
        default=0,
        ge=0,
        le=5,
        description=(
            "Redis replicas that must hold an accepted spend before `/verify` answers"
            " `allowed` for an amount (Redis `WAIT`); 0 answers once the primary has it. With"
            " 1 and a Sentinel-managed replica, a primary killed after the answer loses no"
            ' spend (docs/operations.md "Durability of spends")'
        ),
    )
    token_cache_entries: int = Field(
        default=100_000,
        ge=1_000,
        le=10_000_000,
        description=(
            "how many verified access tokens the verifier keeps in memory, each until it"
            " expires; past it the expired go, then the oldest half (memory per token:"
            ' docs/reliability.md "Soak")'
        ),
    )
    spend_replica_timeout_ms: int = Field(
        default=100,
        ge=1,
        le=5000,
        description=(
            "how long `/verify` waits for those replicas; past it the answer is `503` (the"
            " spend stays counted, never answered allowed while it could be lost)"
        ),
    )
