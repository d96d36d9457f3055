"""DPoP at the token endpoint: verify the proof, then record its ``jti`` exactly once."""

from __future__ import annotations

from starlette.requests import Request

from app.api import metrics
from app.cache.base import Once
from app.core.dpop import DPoPProof, replay_entry, verify_proof
from app.core.errors import InvalidDPoPProof, OAuthError
from app.registry.state import RegistryState


def verify_dpop(registry: RegistryState, request: Request, path: str, now: int) -> DPoPProof:
    """RFC 9449 §4.3 at ``issuer + path``; the URL comes from configuration, never from the
    request's Host or X-Forwarded-* headers (docs/protocol.md "DPoP"). Records nothing."""
    values = request.headers.getlist("dpop")
    if not values:
        raise InvalidDPoPProof("A DPoP proof is required.")
    settings = registry.settings
    try:
        return verify_proof(
            values,
            method=request.method,
            url=settings.issuer + path,
            now=now,
            nonces=registry.nonces,
            require_nonce=settings.dpop_require_nonce,
            max_age=settings.dpop_max_age,
        )
    except OAuthError as exc:
        metrics.DPOP_FAILURES.labels(exc.error).inc()
        raise


def proof_replay_key(registry: RegistryState, proof: DPoPProof) -> Once:
    """Where and how long a proof is remembered: as long as it could be accepted."""
    key, ttl = replay_entry(proof, registry.settings.dpop_max_age)
    return Once(key, ttl, proof.iat)


def replayed_proof() -> InvalidDPoPProof:
    metrics.DPOP_FAILURES.labels("replay").inc()
    return InvalidDPoPProof("The DPoP proof has already been used.")
