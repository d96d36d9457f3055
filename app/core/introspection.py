"""RFC 7662 introspection responses, built fail-closed.

The response starts as ``{"active": false}`` and only becomes active after every check has
passed; any failure returns exactly that inactive body with no other member (RFC 7662 §2.2,
§4: no hints about *why* a token is inactive).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from app.core.capabilities import claimed_at
from app.core.dpop import DPOP_ALGS
from app.core.errors import InvalidToken, www_authenticate
from app.core.jwk import PublicJWK
from app.core.tokens import AccessTokenClaims, verify_access_token


def inactive() -> dict[str, Any]:
    """A fresh inactive response (never a shared mutable dict)."""
    return {"active": False}


def active_response(claims: AccessTokenClaims) -> dict[str, Any]:
    """The active response members for a verified token (RFC 7662 §2.2, RFC 9449 §6.2,
    RFC 8693 §4.1, RFC 9396 §9.2)."""
    body: dict[str, Any] = {
        "active": True,
        "iss": claims.iss,
        "sub": claims.sub,
        "aud": claims.aud,
        "client_id": claims.client_id,
        "act": claims.act,
        "exp": claims.exp,
        "iat": claims.iat,
        "jti": claims.jti,
        "token_type": claims.token_type,
        "authorization_details": claimed_at(claims.authorization_details, claims.aud),
        "grant_id": claims.grant_id,
        "auth_time": claims.auth_time,
    }
    if claims.jkt is not None:
        body["cnf"] = {"jkt": claims.jkt}
    if claims.scope is not None:
        body["scope"] = claims.scope
    return body


_CHALLENGE_ERROR = {
    "invalid_token": "invalid_token",
    "expired": "invalid_token",
    "revoked": "invalid_token",
    "audience_mismatch": "invalid_token",
    "dpop_key_mismatch": "invalid_token",
    "invalid_dpop_proof": "invalid_dpop_proof",
    "dpop_replay": "invalid_dpop_proof",
}
_DESCRIPTIONS = {
    "invalid_token": "The access token is invalid.",
    "expired": "The access token has expired.",
    "revoked": "The access token has been revoked.",
    "audience_mismatch": "The access token is for another resource server.",
    "dpop_key_mismatch": "The DPoP proof is not signed by the token's key.",
    "invalid_dpop_proof": "The DPoP proof is invalid.",
    "dpop_replay": "The DPoP proof has been used before.",
    "insufficient_capability": "The token does not allow this action.",
    "outside_time_window": "The token does not allow requests at this time.",
    "amount_exceeds_limit": "The amount exceeds the token's limit.",
    "rate_limited": "The grant's request rate is exhausted.",
    "budget_exhausted": "The grant's budget is exhausted.",
}


def denial(reason: str) -> dict[str, Any]:
    """A negative ``/verify`` decision: the reason and the challenge a resource server answers
    with (``invalid_token``, ``invalid_dpop_proof`` or ``insufficient_scope``)."""
    challenge = www_authenticate(
        "DPoP",
        error=_CHALLENGE_ERROR.get(reason, "insufficient_scope"),
        description=_DESCRIPTIONS[reason],
        algs=DPOP_ALGS[:2],
    )
    return {"allowed": False, "reason": reason, "www_authenticate": challenge}


def allowed_decision(claims: AccessTokenClaims, capability: Mapping[str, Any]) -> dict[str, Any]:
    """A positive ``/verify`` decision: who acts for whom, under which grant, and the one
    capability that allowed the request."""
    body: dict[str, Any] = {
        "allowed": True,
        "sub": claims.sub,
        "act": claims.act,
        "client_id": claims.client_id,
        "grant_id": claims.grant_id,
        "aud": claims.aud,
        "jti": claims.jti,
        "exp": claims.exp,
        "auth_time": claims.auth_time,
        "authorization_details": [dict(capability)],
    }
    if claims.scope is not None:
        body["scope"] = claims.scope
    return body


def is_active(
    claims: AccessTokenClaims,
    *,
    caller_resource: str,
    is_revoked: Callable[[AccessTokenClaims], bool],
    bearer_accepted: bool = False,
) -> bool:
    """Whether the introspection answer for a verified token is active: it is for the
    caller's audience (RFC 7662 §2.2 "not allowed to introspect" otherwise), it is
    DPoP-bound unless the caller accepts Bearer tokens (``bearer_accepted``: it registered
    ``dpop_required: false``), and ``is_revoked`` says no. ``is_revoked`` must raise, not
    return ``False``, when revocation state is unknown: the caller turns that into 503."""
    if claims.aud != caller_resource or (claims.jkt is None and not bearer_accepted):
        return False
    return not is_revoked(claims)


def introspect(
    token: str,
    *,
    issuer: str,
    keys: Mapping[str, PublicJWK],
    now: int,
    caller_resource: str,
    is_revoked: Callable[[AccessTokenClaims], bool],
    leeway: int = 0,
    bearer_accepted: bool = False,
) -> dict[str, Any]:
    """Introspect ``token`` for the resource server ``caller_resource`` (the verifier runs
    :func:`is_active` on its cache of verified tokens). A token that fails verification is
    inactive."""
    try:
        claims = verify_access_token(token, issuer=issuer, keys=keys, now=now, leeway=leeway)
    except InvalidToken:
        return inactive()
    if not is_active(
        claims,
        caller_resource=caller_resource,
        is_revoked=is_revoked,
        bearer_accepted=bearer_accepted,
    ):
        return inactive()
    return active_response(claims)
