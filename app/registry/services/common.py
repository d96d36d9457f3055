"""Small shared helpers: identifiers, secret hashing, timestamps."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from app.core.client_auth import secret_hash

__all__ = ["new_id", "new_secret", "rfc3339", "secret_hash"]


def new_id(prefix: str) -> str:
    """An opaque identifier with a type prefix (``usr_``, ``agt_``, ``rs_``, ``grt_``)."""
    return prefix + secrets.token_urlsafe(16)


def new_secret() -> str:
    """A 256-bit bearer secret (tokens shown once and stored only as a hash)."""
    return secrets.token_urlsafe(32)


def rfc3339(epoch: int | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat().replace("+00:00", "Z")
