"""The verifier's settings: only the shared ones. The verifier holds no registry or worker
secret (no admin token, key-encryption key, DPoP nonce secret or audit key), whatever the
environment it starts in says; import-linter keeps this module from reaching theirs."""

from __future__ import annotations

from app.settings.common import CommonSettings


class VerifierSettings(CommonSettings):
    """What ``agentauth serve verifier`` reads."""
