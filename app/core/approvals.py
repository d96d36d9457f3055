"""Binding a passkey approval to exactly one grant request (docs/protocol.md "Approvals").

The WebAuthn challenge is ``random(32) || SHA-256(JCS(request))``: the random half keeps it
unpredictable and single-use (WebAuthn §13.4.3), the digest half binds the signature to the
canonical request the human saw. Anyone holding the stored request, challenge and assertion
can recompute the digest later. JCS is RFC 8785.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any

from app.core.jcs import canonicalize

RANDOM_BYTES = 32
CHALLENGE_BYTES = RANDOM_BYTES + 32


def request_digest(request: Mapping[str, Any]) -> bytes:
    """``SHA-256(JCS(request))``: the half of the challenge that binds the request."""
    return hashlib.sha256(canonicalize(request)).digest()


def new_challenge(request: Mapping[str, Any]) -> bytes:
    """A fresh 64-byte approval challenge for ``request``."""
    return secrets.token_bytes(RANDOM_BYTES) + request_digest(request)


def challenge_binds(challenge: bytes, request: Mapping[str, Any]) -> bool:
    """True when ``challenge`` was made for exactly ``request`` (recomputed, constant time)."""
    if len(challenge) != CHALLENGE_BYTES:
        return False
    return hmac.compare_digest(challenge[RANDOM_BYTES:], request_digest(request))
