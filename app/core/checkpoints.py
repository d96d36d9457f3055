"""Signed audit checkpoints: the audit chain anchored outside the database.

A checkpoint says "event ``seq`` of ``issuer``'s audit log had hash ``hash`` at time ``at``",
signed (EdDSA) with a dedicated audit key that the database never holds. Whoever can write
the database can rewrite events and recompute the chain, but not forge a checkpoint: an
event whose hash no longer matches a checkpoint shows that everything up to it was rewritten
(the chain links each event to all before it).

A rewrite that recomputes the chain from event ``k`` on changes every hash from ``k``: the
checkpoints before ``k`` still match and every one after does not, so the first mismatch,
found by bisection, bounds the range that is no longer covered (:class:`Coverage`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.core.jwk import JWKError, PublicJWK, b64url_decode, b64url_encode, parse_public_jwk
from app.core.jws import JWSError, decode_jws, sign_compact

TYP = "audit-checkpoint+jwt"
_HASH = re.compile(r"^[0-9a-f]{64}$")


class CheckpointError(ValueError):
    """A checkpoint that is malformed or not signed by the audit key."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: str
    at: int


def audit_private_key(seed: str) -> Ed25519PrivateKey:
    """The audit key from its 32-byte seed, base64url (``AGENTAUTH_AUDIT_SIGNING_KEY``)."""
    try:
        raw = b64url_decode(seed)
    except JWKError:
        raise ValueError("the audit signing key must be base64url") from None
    if len(raw) != 32:
        raise ValueError("the audit signing key must be 32 bytes (an Ed25519 seed)")
    return Ed25519PrivateKey.from_private_bytes(raw)


def audit_public_key(raw: str) -> PublicJWK:
    """The audit key's public half from its 32 raw bytes, base64url
    (``AGENTAUTH_AUDIT_PUBLIC_KEY``), as a verification key."""
    try:
        return parse_public_jwk({"kty": "OKP", "crv": "Ed25519", "x": raw, "alg": "EdDSA"})
    except JWKError as exc:
        raise ValueError(f"the audit public key is not an Ed25519 key: {exc}") from None


def public_half(key: Ed25519PrivateKey) -> str:
    """base64url of the raw public key: what ``AGENTAUTH_AUDIT_PUBLIC_KEY`` is set to."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return b64url_encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def sign_checkpoint(checkpoint: Checkpoint, *, issuer: str, key: Ed25519PrivateKey) -> str:
    public = audit_public_key(public_half(key))
    header = {"alg": "EdDSA", "typ": TYP, "kid": public.jkt}
    payload = {"iss": issuer, "seq": checkpoint.seq, "hash": checkpoint.hash, "at": checkpoint.at}
    return sign_compact(header, payload, key)


def read_checkpoint(token: str, *, issuer: str, public: PublicJWK) -> Checkpoint:
    """Verify a checkpoint's signature and shape; raises :class:`CheckpointError`."""
    try:
        _, claims = decode_jws(
            token.strip(), typs=(TYP,), algs=("EdDSA",), resolve_key=lambda _: public
        )
    except JWSError as exc:
        raise CheckpointError(f"not signed by the audit key ({exc})") from None
    seq, digest, at = claims.get("seq"), claims.get("hash"), claims.get("at")
    if claims.get("iss") != issuer:
        raise CheckpointError("issued for another registry")
    if not isinstance(digest, str) or not _HASH.match(digest):
        raise CheckpointError("hash must be 64 hexadecimal characters")
    return Checkpoint(seq=_positive_int(seq, "seq"), hash=digest, at=_positive_int(at, "at"))


def _positive_int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise CheckpointError(f"{name} must be a positive integer")
    return value


@dataclass(frozen=True, slots=True)
class Coverage:
    """How a log compares with its checkpoints. Ranges are inclusive ``(first, last)``."""

    checkpoints: int
    covered_through: int  # highest seq a matching checkpoint vouches for (0: none)
    rewritten: tuple[int, int] | None = None  # events that no longer match a checkpoint
    uncovered: tuple[int, int] | None = None  # events newer than the last checkpoint
    invalid: str | None = None  # a checkpoint file that is not signed by the audit key
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.rewritten is None and self.invalid is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checkpoints": self.checkpoints,
            "covered_through": self.covered_through,
            "rewritten": list(self.rewritten) if self.rewritten else None,
            "uncovered": list(self.uncovered) if self.uncovered else None,
            "invalid": self.invalid,
            "reason": self.reason,
        }
