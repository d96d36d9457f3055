"""The authorization server's own signing keys and the published JWK set.

A key's status is derived from time, never stored: a key is *next* before ``activates_at``
(published so caches learn it before it signs), *active* while it is the most recently
activated key, and *retired* once a newer key has activated. A retired key stays published
until every token it may have signed has expired (``retired_at + max_token_ttl``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.core.jwk import JWKError, PublicJWK, b64url_decode, b64url_encode, parse_public_jwk
from app.core.jws import PrivateKey

SIGNING_ALGS = ("ES256", "EdDSA")


class KeyStatus(StrEnum):
    NEXT = "next"
    ACTIVE = "active"
    RETIRED = "retired"


def _public_members(private_key: PrivateKey) -> dict[str, str]:
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        numbers = private_key.public_key().public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url_encode(numbers.x.to_bytes(32, "big")),
            "y": b64url_encode(numbers.y.to_bytes(32, "big")),
        }
    raw = private_key.public_key().public_bytes_raw()
    return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}


def public_jwk_for(private_key: PrivateKey, *, alg: str, kid: str | None = None) -> PublicJWK:
    """The validated public half of ``private_key`` (``kid`` defaults to its thumbprint)."""
    members: dict[str, Any] = {**_public_members(private_key), "alg": alg, "use": "sig"}
    public = parse_public_jwk(members)
    return parse_public_jwk({**members, "kid": kid or public.jkt})


def generate_private_key(alg: str = "ES256") -> PrivateKey:
    """A fresh private key for ``alg`` (ES256 → P-256, EdDSA → Ed25519)."""
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return Ed25519PrivateKey.generate()
    raise ValueError(f"unsupported signing algorithm {alg!r}; use one of {SIGNING_ALGS}")


def private_jwk(private_key: PrivateKey, *, alg: str, kid: str | None = None) -> dict[str, str]:
    """Serialise a private key as a JWK (for encrypted storage or an agent's key file)."""
    public = public_jwk_for(private_key, alg=alg, kid=kid)
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        d = private_key.private_numbers().private_value.to_bytes(32, "big")
    else:
        d = private_key.private_bytes_raw()
    return {**public.to_dict(), "use": "sig", "d": b64url_encode(d)}


def load_private_jwk(jwk: Mapping[str, Any]) -> tuple[PrivateKey, PublicJWK]:
    """Import a private JWK produced by :func:`private_jwk`; checks ``d`` matches the key."""
    d_value = jwk.get("d")
    if not isinstance(d_value, str):
        raise JWKError("private JWK needs d")
    d = b64url_decode(d_value)
    private_key: PrivateKey
    if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256" and len(d) == 32:
        private_key = ec.derive_private_key(int.from_bytes(d, "big"), ec.SECP256R1())
    elif jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519" and len(d) == 32:
        private_key = Ed25519PrivateKey.from_private_bytes(d)
    else:
        raise JWKError("unsupported private key")
    alg = jwk.get("alg") or ("ES256" if jwk.get("kty") == "EC" else "EdDSA")
    kid = jwk.get("kid")
    public = public_jwk_for(private_key, alg=str(alg), kid=kid if isinstance(kid, str) else None)
    if _public_members(private_key) != {k: jwk.get(k) for k in public.members}:
        raise JWKError("d does not match the public members")
    return private_key, public


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One of the server's signing keys. ``kid`` and ``alg`` come from ``public``."""

    private_key: PrivateKey
    public: PublicJWK
    activates_at: int

    @property
    def kid(self) -> str:
        assert self.public.kid is not None  # noqa: S101 - always set by public_jwk_for
        return self.public.kid

    @property
    def alg(self) -> str:
        assert self.public.alg is not None  # noqa: S101 - always set by public_jwk_for
        return self.public.alg


def new_signing_key(*, alg: str = "ES256", activates_at: int) -> SigningKey:
    """Generate a signing key that starts signing at ``activates_at``."""
    private_key = generate_private_key(alg)
    return SigningKey(private_key, public_jwk_for(private_key, alg=alg), activates_at)


def is_published(activates_at: int, activations: Sequence[int], now: int, max_ttl: int) -> bool:
    """A key stays published until ``max_ttl`` after a later key took over from it: every
    token it signed has expired by then."""
    later = [t for t in activations if activates_at < t <= now]
    return not later or min(later) + max_ttl > now


def published_public_keys(
    keys: Iterable[tuple[PublicJWK, int]], now: int, *, max_token_ttl: int
) -> list[PublicJWK]:
    """The verification keys among (public key, activation time) pairs: what a process that
    holds no private key (the verifier) publishes and accepts."""
    entries = list(keys)
    activations = [at for _, at in entries]
    return [key for key, at in entries if is_published(at, activations, now, max_token_ttl)]


class NoActiveKey(LookupError):
    """No signing key has activated yet."""


class SigningKeySet:
    """The server's keys and the statuses they have at a given time."""

    def __init__(self, keys: Iterable[SigningKey], *, max_token_ttl: int) -> None:
        # Deterministic order: activation time, then kid.
        self._keys = tuple(sorted(keys, key=lambda k: (k.activates_at, k.kid)))
        kids = [k.kid for k in self._keys]
        if len(set(kids)) != len(kids):
            raise ValueError("duplicate kid in signing key set")
        self._max_token_ttl = max_token_ttl

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        return self._keys

    def current(self, now: int) -> SigningKey:
        """The key that signs at ``now``: the most recently activated one."""
        active = [k for k in self._keys if k.activates_at <= now]
        if not active:
            raise NoActiveKey("no signing key is active yet")
        return active[-1]

    def status(self, key: SigningKey, now: int) -> KeyStatus:
        if key.activates_at > now:
            return KeyStatus.NEXT
        return KeyStatus.ACTIVE if key is self.current(now) else KeyStatus.RETIRED

    def published(self, now: int) -> tuple[SigningKey, ...]:
        """Next, active and retired keys that may still have signed a live token."""
        activations = [k.activates_at for k in self._keys]
        return tuple(
            k
            for k in self._keys
            if is_published(k.activates_at, activations, now, self._max_token_ttl)
        )

    def verification_keys(self, now: int) -> dict[str, PublicJWK]:
        """``kid`` → public key for every published key."""
        return {k.kid: k.public for k in self.published(now)}

    def jwks(self, now: int) -> dict[str, list[dict[str, str]]]:
        """The public JWK set document (RFC 7517 §5) served at ``jwks_uri``."""
        return {"keys": [{**k.public.to_dict(), "use": "sig"} for k in self.published(now)]}


def seal_private_key(key: SigningKey, kek: bytes) -> bytes:
    """AES-256-GCM encryption of the private JWK under ``kek``; the ``kid`` is bound as AAD."""
    plaintext = orjson.dumps(private_jwk(key.private_key, alg=key.alg, kid=key.kid))
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(kek).encrypt(nonce, plaintext, key.kid.encode())


def unseal_private_key(sealed: bytes, kek: bytes, *, kid: str, activates_at: int) -> SigningKey:
    """Decrypt a sealed key; raises ``ValueError`` when ``kek`` or ``kid`` do not match."""
    try:
        plaintext = AESGCM(kek).decrypt(sealed[:12], sealed[12:], kid.encode())
    except InvalidTag:
        raise ValueError(f"cannot decrypt signing key {kid}: wrong key-encryption key") from None
    private_key, public = load_private_jwk(orjson.loads(plaintext))
    return SigningKey(private_key, public, activates_at)
