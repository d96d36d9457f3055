"""RFC 9068 JWT access tokens: minting and verification.

Tokens carry ``sub`` (the human), ``act`` (RFC 8693 §4.1, outermost = current actor),
``client_id`` (the presenting agent), one ``aud``, ``cnf.jkt`` (RFC 9449 §6.1),
``authorization_details`` (RFC 9396 §9.1), ``grant_id`` and ``auth_time``.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.core.errors import InvalidToken
from app.core.jwk import JWKError, PublicJWK
from app.core.jws import JWSError, decode_jws, sign_compact
from app.core.keys import SigningKey

ACCESS_TOKEN_TYP = "at+jwt"  # noqa: S105 - a protocol identifier, not a secret
# RFC 9068 §4: the verifier accepts "at+jwt" and "application/at+jwt" and nothing else.
ACCEPTED_ACCESS_TOKEN_TYPS = frozenset({"at+jwt", "application/at+jwt"})
ACCESS_TOKEN_ALGS = frozenset({"ES256", "EdDSA", "Ed25519"})
MAX_ACT_DEPTH = 16
ACT_MEMBERS = frozenset({"sub", "iss", "client_id", "act"})
_JKT = re.compile(r"^[A-Za-z0-9_-]{43}$")


def new_jti() -> str:
    """A unique token identifier (128 random bits)."""
    return secrets.token_urlsafe(16)


def actor_depth(act: Mapping[str, Any]) -> int:
    """Number of delegation hops below the outermost actor (``{"sub": A}`` → 0)."""
    depth = 0
    inner = act.get("act")
    while isinstance(inner, Mapping):
        depth += 1
        inner = inner.get("act")
    return depth


def actors(act: object) -> list[str]:
    """Every agent in a delegation chain, outermost first (``act.sub``, ``act.act.sub``, …)."""
    out = []
    while isinstance(act, Mapping):
        sub = act.get("sub")
        if isinstance(sub, str):
            out.append(sub)
        act = act.get("act")
    return out


def _validate_act(act: object, level: int = 0) -> dict[str, Any]:
    """RFC 8693 §4.1: an object of identity claims, possibly nesting a prior actor."""
    if level > MAX_ACT_DEPTH or not isinstance(act, dict):
        raise ValueError("act must be a JSON object of bounded depth")
    if not isinstance(act.get("sub"), str) or not act["sub"] or not ACT_MEMBERS.issuperset(act):
        raise ValueError("act needs a sub and only identity members")
    if any(not isinstance(act[k], str) for k in ("iss", "client_id") if k in act):
        raise ValueError("act identity members must be strings")
    if "act" in act:
        _validate_act(act["act"], level + 1)
    return act


@dataclass(frozen=True, slots=True)
class AccessTokenClaims:
    """The claims of an access token we issue (docs/protocol.md "Access tokens")."""

    iss: str
    sub: str
    aud: str
    client_id: str
    act: dict[str, Any]
    iat: int
    exp: int
    jkt: str | None  # None: a Bearer token (only for resource servers that accept them)
    grant_id: str
    auth_time: int
    authorization_details: list[dict[str, Any]]
    jti: str = field(default_factory=new_jti)
    scope: str | None = None

    @property
    def delegation_depth(self) -> int:
        return actor_depth(self.act)

    def to_jwt_claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": self.iss,
            "sub": self.sub,
            "aud": self.aud,
            "client_id": self.client_id,
            "act": self.act,
            "iat": self.iat,
            "exp": self.exp,
            "jti": self.jti,
            "authorization_details": self.authorization_details,
            "grant_id": self.grant_id,
            "auth_time": self.auth_time,
        }
        if self.jkt is not None:
            claims["cnf"] = {"jkt": self.jkt}
        if self.scope is not None:
            claims["scope"] = self.scope
        return claims

    @property
    def token_type(self) -> str:
        """``DPoP`` for a sender-constrained token, ``Bearer`` otherwise (RFC 9449 §7.1)."""
        return "Bearer" if self.jkt is None else "DPoP"

    @classmethod
    def from_jwt_claims(cls, claims: Mapping[str, Any]) -> AccessTokenClaims:
        """Type-check decoded claims; raises ``ValueError`` naming the first bad claim."""
        strings = ("iss", "sub", "aud", "client_id", "jti", "grant_id")
        for name in strings:
            if not isinstance(claims.get(name), str) or not claims[name]:
                raise ValueError(f"claim {name} missing or not a non-empty string")
        for name in ("iat", "exp", "auth_time"):
            value = claims.get(name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"claim {name} missing or not an integer")
        cnf = claims.get("cnf")
        jkt = None
        if cnf is not None:
            if not isinstance(cnf, dict) or not isinstance(cnf.get("jkt"), str):
                raise ValueError("claim cnf must carry a jkt")
            if not _JKT.match(cnf["jkt"]):
                raise ValueError("cnf.jkt is not a SHA-256 thumbprint")
            jkt = cnf["jkt"]
        details = claims.get("authorization_details")
        if not isinstance(details, list) or not all(
            isinstance(d, dict) and isinstance(d.get("type"), str) for d in details
        ):
            raise ValueError("claim authorization_details must be an array of objects")
        scope = claims.get("scope")
        if scope is not None and not isinstance(scope, str):
            raise ValueError("claim scope must be a string")
        return cls(
            iss=claims["iss"],
            sub=claims["sub"],
            aud=claims["aud"],
            client_id=claims["client_id"],
            act=_validate_act(claims.get("act")),
            iat=claims["iat"],
            exp=claims["exp"],
            jti=claims["jti"],
            jkt=jkt,
            grant_id=claims["grant_id"],
            auth_time=claims["auth_time"],
            authorization_details=details,
            scope=scope,
        )


class TokenExpired(InvalidToken):
    """RFC 6750 §3.1 ``invalid_token`` because ``exp`` has passed (the verifier reports it as
    its own ``expired`` reason)."""

    default_description = "The access token has expired."

    def __init__(self) -> None:
        super().__init__(detail="access token expired")


def mint_access_token(claims: AccessTokenClaims, key: SigningKey) -> str:
    """Sign ``claims`` as an RFC 9068 access token (header ``typ: at+jwt``, ``kid``)."""
    header = {"typ": ACCESS_TOKEN_TYP, "alg": key.alg, "kid": key.kid}
    return sign_compact(header, claims.to_jwt_claims(), key.private_key)


def verify_access_token(
    token: str,
    *,
    issuer: str,
    keys: Mapping[str, PublicJWK],
    now: int,
    leeway: int = 0,
    audience: str | None = None,
) -> AccessTokenClaims:
    """Verify an access token per RFC 9068 §4 and return its claims.

    ``typ`` must be ``at+jwt``; ``alg`` must be on the access-token allow-list and match the
    key named by ``kid`` in ``keys`` (never a key from the token itself); ``iss`` must equal
    ``issuer`` exactly; ``exp``, ``iat`` and ``nbf`` are checked against ``now`` with
    ``leeway`` seconds of skew; ``aud`` must equal ``audience`` when one is given. Every
    failure raises :class:`InvalidToken` with the reason in ``detail`` only.
    """

    def resolve(header: Mapping[str, Any]) -> PublicJWK:
        kid = header.get("kid")
        key = keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise JWKError("unknown kid")
        return key

    try:
        _, raw = decode_jws(
            token,
            typs=ACCEPTED_ACCESS_TOKEN_TYPS,
            algs=ACCESS_TOKEN_ALGS,
            resolve_key=resolve,
            trusted_signer=True,  # only our own published keys resolve
        )
        claims = AccessTokenClaims.from_jwt_claims(raw)
    except (JWSError, ValueError) as exc:
        raise InvalidToken(detail=f"access token rejected: {exc}") from None
    nbf = raw.get("nbf")
    if claims.iss != issuer:
        raise InvalidToken(detail="access token issuer mismatch")
    if claims.exp + leeway <= now:
        raise TokenExpired()
    if claims.iat > now + leeway or (
        nbf is not None and (not isinstance(nbf, int) or nbf > now + leeway)
    ):
        raise InvalidToken(detail="access token not yet valid")
    if audience is not None and claims.aud != audience:
        raise InvalidToken(detail="access token audience mismatch")
    return claims
