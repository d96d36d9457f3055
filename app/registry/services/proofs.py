"""DPoP at the token endpoint: verify the proof, then record its ``jti`` exactly once."""

from __future__ import annotations

from starlette.requests import Request

from app.api.errors import unavailable
from app.api.metrics import METRICS
from app.cache.base import CacheUnavailable
from app.core.dpop import DPoPProof, verify_proof
from app.core.errors import InvalidDPoPProof, OAuthError
from app.registry.state import Registry


async def check_dpop(registry: Registry, request: Request, path: str) -> DPoPProof:
    """RFC 9449 §4.3 at ``issuer + path``; the URL comes from configuration, never from the
    request's Host or X-Forwarded-* headers (checklist DP-19)."""
    values = request.headers.getlist("dpop")
    if not values:
        raise InvalidDPoPProof("A DPoP proof is required.")
    settings = registry.settings
    now = registry.now()
    try:
        proof = verify_proof(
            values,
            method=request.method,
            url=settings.issuer + path,
            now=now,
            nonces=registry.nonces,
            require_nonce=settings.dpop_nonce_required,
            max_age=settings.dpop_max_age,
            future_skew=60,
        )
    except OAuthError as exc:
        METRICS.inc(
            "agentauth_dpop_failures_total", "Rejected DPoP proofs by error.", reason=exc.error
        )
        raise
    try:
        first_use = await registry.cache.remember(
            f"dpop:{proof.replay_key}", settings.dpop_max_age + 60 + 1
        )
    except CacheUnavailable as exc:
        raise unavailable(str(exc)) from exc
    if not first_use:
        METRICS.inc(
            "agentauth_dpop_failures_total", "Rejected DPoP proofs by error.", reason="replay"
        )
        raise InvalidDPoPProof("The DPoP proof has already been used.")
    return proof
