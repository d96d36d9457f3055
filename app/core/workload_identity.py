"""Workload identity JWTs from trusted issuers (RFC 7523 §3; SPIFFE JWT-SVIDs, Kubernetes
service-account tokens, a CI system's OIDC tokens).

An operator trusts an issuer for a set of audiences and a subject pattern; a workload then
proves who it is with a JWT its platform issued. This module judges such a JWT against one
trusted issuer and that issuer's published keys: what the JWT says of itself decides nothing
until its signature, issuer, audience, lifetime and subject have all been checked.

Subject patterns are matched whole: ``*`` stands for one segment (any characters but ``/`` and
``:``), ``**`` for any characters; everything else is literal. So
``system:serviceaccount:jobs:*`` is every service account of the ``jobs`` namespace and
``spiffe://example.org/ns/jobs/**`` every SPIFFE ID under that path.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from app.core.client_auth import int_claim
from app.core.jwk import JWKError, PublicJWK, b64url_decode
from app.core.jws import JWSError, decode_jws, split_compact, unverified_header
from app.core.strict_json import JSONError, parse_json_object

# Platform tokens carry no ``typ`` or ``JWT``; a token of another kind (an access token, a
# DPoP proof, an ID-JAG, a transaction token) is never a workload's identity (RFC 8725 §3.11).
WORKLOAD_JWT_TYPS: tuple[str | None, ...] = (None, "JWT")
WORKLOAD_JWT_ALGS = ("ES256", "RS256", "PS256", "EdDSA", "Ed25519")
MAX_SUBJECT_CHARS = 512
MAX_PATTERN_CHARS = 512
MAX_JTI_CHARS = 256


class WorkloadJWTError(ValueError):
    """The JWT is not an acceptable identity from this issuer."""


class UnknownKey(WorkloadJWTError):
    """The JWT's ``kid`` is not among the issuer's keys as last fetched."""


@dataclass(frozen=True, slots=True)
class TrustedIssuer:
    """What the operator trusts an issuer for."""

    issuer: str
    audiences: frozenset[str]  # an acceptable ``aud`` names one of these
    subject_pattern: str
    max_lifetime: int  # seconds from now to ``exp`` at most (platform tokens live an hour)


@dataclass(frozen=True, slots=True)
class WorkloadIdentity:
    """A verified workload JWT: who it names, and what single use needs (``jti`` may be
    absent: SPIFFE JWT-SVIDs are cached and reused by design)."""

    issuer: str
    subject: str
    exp: int
    iat: int | None
    jti: str | None


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(\*\*|\*)", pattern)
    regex = "".join(
        ".+" if part == "**" else "[^/:]+" if part == "*" else re.escape(part) for part in parts
    )
    return re.compile(regex)


def check_subject_pattern(pattern: object) -> str:
    """A subject pattern an operator may register: a non-empty string of printable ASCII
    without spaces, at most 512 characters, never only wildcards."""
    if (
        not isinstance(pattern, str)
        or not 0 < len(pattern) <= MAX_PATTERN_CHARS
        or not all(0x21 <= ord(c) <= 0x7E for c in pattern)
    ):
        raise ValueError(f"a subject pattern is 1 to {MAX_PATTERN_CHARS} printable characters")
    if not pattern.replace("*", "").strip("/:"):
        raise ValueError("a subject pattern names at least one literal segment")
    return pattern


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether ``subject`` matches ``pattern`` whole (see the module's description)."""
    return _compiled(pattern).fullmatch(subject) is not None


def unverified_claim(token: str, name: str) -> str | None:
    """A string claim of a JWT *before* verification, only to find which issuer's keys to
    use; ``None`` when the token is malformed or the claim is not a string."""
    try:
        _, payload_b64, _ = split_compact(token)
        value = parse_json_object(b64url_decode(payload_b64)).get(name)
    except (JWSError, JWKError, JSONError):
        return None
    return value if isinstance(value, str) else None


def _int(claims: Mapping[str, Any], name: str) -> int | None:
    try:
        return int_claim(claims, name)
    except ValueError as exc:
        raise WorkloadJWTError(str(exc)) from None


def _audience_ok(aud: object, accepted: Collection[str]) -> bool:
    if isinstance(aud, str):
        return aud in accepted
    if isinstance(aud, list) and 0 < len(aud) <= 10 and all(isinstance(a, str) for a in aud):
        return any(a in accepted for a in aud)
    return False


def _keys_for(token: str, keys: Sequence[PublicJWK]) -> list[PublicJWK]:
    kid = unverified_header(token).get("kid")
    if kid is None:
        return list(keys)
    return [key for key in keys if key.kid == kid]


def verify_workload_jwt(
    token: str,
    *,
    trusted: TrustedIssuer,
    keys: Sequence[PublicJWK],
    now: int,
    leeway: int = 0,
) -> WorkloadIdentity:
    """Verify ``token`` as an identity issued by ``trusted`` and signed by one of ``keys``.

    Checks: a compact JWS with an allowed ``alg`` and ``typ`` absent or ``JWT``; a key named by
    ``kid`` (or, with no ``kid``, any of the issuer's keys); ``iss`` equal to the issuer;
    ``aud`` naming one of the trusted audiences; ``exp`` present, in the future and at most
    ``max_lifetime`` ahead; ``nbf`` and ``iat`` not in the future; ``sub`` matching the
    pattern. Raises :class:`WorkloadJWTError` (unknown ``kid`` included: the caller may refresh
    the issuer's keys once and try again)."""
    try:
        candidates = _keys_for(token, keys)
    except JWSError as exc:
        raise WorkloadJWTError(f"not a JWT: {exc}") from None
    if not candidates:
        raise UnknownKey("kid names none of the issuer's keys")
    claims: dict[str, Any] | None = None
    failure: JWSError | None = None
    for key in candidates:

        def this_key(_: Mapping[str, Any], key: PublicJWK = key) -> PublicJWK:
            return key

        try:
            _, claims = decode_jws(
                token, typs=WORKLOAD_JWT_TYPS, algs=WORKLOAD_JWT_ALGS, resolve_key=this_key
            )
            break
        except (JWSError, JWKError) as exc:
            failure = JWSError(str(exc))
    if claims is None:
        raise WorkloadJWTError(f"signature: {failure}")
    return _identity(claims, trusted, now, leeway)


def _identity(
    claims: Mapping[str, Any], trusted: TrustedIssuer, now: int, leeway: int
) -> WorkloadIdentity:
    if claims.get("iss") != trusted.issuer:
        raise WorkloadJWTError("iss is not the trusted issuer")
    if not _audience_ok(claims.get("aud"), trusted.audiences):
        raise WorkloadJWTError("aud names none of the audiences this issuer is trusted for")
    exp = _int(claims, "exp")
    if exp is None or exp + leeway <= now:
        raise WorkloadJWTError("exp missing or in the past")
    if exp > now + trusted.max_lifetime + leeway:
        raise WorkloadJWTError("exp too far in the future")
    nbf, iat = _int(claims, "nbf"), _int(claims, "iat")
    if nbf is not None and nbf > now + leeway:
        raise WorkloadJWTError("not yet valid")
    if iat is not None and iat > now + leeway:
        raise WorkloadJWTError("iat in the future")
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_CHARS:
        raise WorkloadJWTError("sub missing or too long")
    if not subject_matches(trusted.subject_pattern, subject):
        raise WorkloadJWTError("sub does not match the issuer's subject pattern")
    jti = claims.get("jti")
    if jti is not None and (not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_CHARS):
        raise WorkloadJWTError("jti is not a string of 1 to 256 characters")
    return WorkloadIdentity(trusted.issuer, subject, exp, iat, jti)
