"""Small shared helpers: identifiers, secret hashing, timestamps."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime


def new_id(prefix: str) -> str:
    """An opaque identifier with a type prefix (``usr_``, ``agt_``, ``rs_``, ``grt_``)."""
    return prefix + secrets.token_urlsafe(16)


def new_secret() -> str:
    """A 256-bit bearer secret (tokens shown once and stored only as a hash)."""
    return secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    """SHA-256 of a high-entropy secret (no slow KDF needed for 256 random bits)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same_secret(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(secret_hash(secret), stored_hash)


def rfc3339(epoch: int | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat().replace("+00:00", "Z")
