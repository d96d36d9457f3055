"""DPoP at the token endpoint: verify the proof, then record its ``jti`` exactly once."""

from __future__ import annotations

from starlette.requests import Request

from app.api import metrics
from app.cache.base import Once
from app.core.dpop import DPoPProof, NonceSource, replay_entry, verify_proof
from app.core.errors import InvalidDPoPProof, OAuthError
from app.settings.registry import RegistrySettings


def verify_dpop(
    settings: RegistrySettings,
    nonces: NonceSource | None,
    request: Request,
    path: str,
    now: int,
) -> DPoPProof:
    """RFC 9449 §4.3 at ``issuer + path``; the URL comes from configuration, never from the
    request's Host or X-Forwarded-* headers (docs/protocol.md "DPoP"). Records nothing."""
    values = request.headers.getlist("dpop")
    if not values:
        raise InvalidDPoPProof("A DPoP proof is required.")
    try:
        return verify_proof(
            values,
            method=request.method,
            url=settings.issuer + path,
            now=now,
            nonces=nonces,
            require_nonce=settings.dpop_require_nonce,
            max_age=settings.dpop_max_age,
        )
    except OAuthError as exc:
        metrics.DPOP_FAILURES.labels(exc.error).inc()
        raise


def proof_replay_key(proof: DPoPProof, max_age: int) -> Once:
    """Where and how long a proof is remembered: as long as it could be accepted (it is
    accepted up to ``max_age`` seconds after its ``iat``)."""
    key, ttl = replay_entry(proof, max_age)
    return Once(key, ttl, proof.iat)


def replayed_proof() -> InvalidDPoPProof:
    metrics.DPOP_FAILURES.labels("replay").inc()
    return InvalidDPoPProof("The DPoP proof has already been used.")
