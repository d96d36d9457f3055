"""Agent-signed JWTs: ``private_key_jwt`` client assertions (RFC 7523) and actor tokens.

Both are signed by one of the agent's registered keys, named by ``kid``. Each kind has its
own ``typ`` set so one can never be replayed as the other (RFC 8725 §3.11-§3.12), and both
return their ``jti`` so the caller records it once (RFC 7523 §3 item 7).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from app.core.errors import InvalidClient, InvalidRequest, OAuthError
from app.core.jwk import JWKError, PublicJWK, b64url_decode
from app.core.jws import JWSError, decode_jws, split_compact, unverified_header
from app.core.strict_json import JSONError, parse_json_object
from app.core.urns import CLIENT_ASSERTION_TYPE, JWT_TOKEN_TYPE

# Explicit "client-authentication+jwt" (RFC 7523bis), or absent/"JWT" for legacy
# clients. Any other explicit type (dpop+jwt, at+jwt, actor+jwt, ...) is refused.
CLIENT_ASSERTION_TYPS: tuple[str | None, ...] = (None, "JWT", "client-authentication+jwt")
ACTOR_TOKEN_TYP = "actor+jwt"  # noqa: S105 - a protocol identifier, not a secret
ACTOR_TOKEN_TYPE = JWT_TOKEN_TYPE
AGENT_JWT_ALGS = ("ES256", "EdDSA", "Ed25519")
MAX_ASSERTION_LIFETIME = 300
MAX_JTI_CHARS = 256
_JKT = re.compile(r"^[A-Za-z0-9_-]{43}$")


@dataclass(frozen=True, slots=True)
class AgentAssertion:
    """A verified client assertion or actor token."""

    client_id: str
    jti: str
    exp: int
    iat: int
    jkt: str | None = None  # actor tokens only: the DPoP key the actor will use


def secret_hash(secret: str) -> str:
    """SHA-256 of a high-entropy secret (256 random bits need no slow KDF): how client
    secrets, enrollment tokens, invites and refresh tokens are stored."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def same_secret(secret: str, stored_hash: str) -> bool:
    """Constant-time check of ``secret`` against a stored :func:`secret_hash`."""
    return hmac.compare_digest(secret_hash(secret), stored_hash)


def basic_credentials(header: str, challenge: Mapping[str, str]) -> tuple[str, str]:
    """``client_id`` and secret from an ``Authorization: Basic`` value (RFC 6749 §2.3.1: both
    parts are form-urlencoded before base64); malformed credentials are ``invalid_client``
    answered with ``challenge``."""
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClient(headers=challenge, detail="malformed Basic credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise InvalidClient(headers=challenge, detail="Basic credentials without a colon")
    return unquote_plus(client_id), unquote_plus(secret)


def read_client_assertion(form: Mapping[str, str]) -> tuple[str, str | None]:
    """Pick ``client_assertion`` and optional ``client_id`` from a parsed form.

    RFC 7521 §4.2: ``client_assertion_type`` must be the JWT-bearer URN and the assertion a
    single JWT; both failures are ``invalid_client``.
    """
    if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
        raise InvalidClient(detail="client_assertion_type missing or not jwt-bearer")
    assertion = form.get("client_assertion")
    if assertion is None:
        raise InvalidClient(detail="client_assertion missing")
    return assertion, form.get("client_id")


def unverified_issuer(token: str) -> str:
    """The ``iss`` of an agent JWT *before* verification, only to look up that agent's keys."""
    try:
        _, payload_b64, _ = split_compact(token)
        iss = parse_json_object(b64url_decode(payload_b64)).get("iss")
    except (JWSError, JWKError, JSONError):
        raise InvalidClient(detail="assertion is not a compact JWT") from None
    if not isinstance(iss, str) or not iss:
        raise InvalidClient(detail="assertion has no iss")
    return iss


def int_claim(claims: Mapping[str, Any], name: str) -> int | None:
    """An optional integer claim (``ValueError`` when present and not an integer)."""
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} is not an integer")
    return value


def _check_claims(
    claims: Mapping[str, Any],
    *,
    client_id: str,
    issuer: str,
    now: int,
    leeway: int,
    max_lifetime: int,
    token_endpoint: str | None = None,
) -> tuple[str, int, int]:
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise ValueError("iss and sub must both be the client_id")
    # RFC 7523bis (docs/protocol.md "Client authentication"): aud is the issuer identifier,
    # a single string; a client assertion may name this server's token endpoint instead
    # (RFC 7523 §3, as the MCP client-credentials extension does), never another audience.
    if claims.get("aud") not in (issuer, token_endpoint or issuer):
        raise ValueError("aud must be the issuer identifier or the token endpoint")
    exp = int_claim(claims, "exp")
    if exp is None or exp + leeway <= now:
        raise ValueError("exp missing or in the past")
    if exp > now + max_lifetime + leeway:
        raise ValueError("exp too far in the future")
    nbf, iat = int_claim(claims, "nbf"), int_claim(claims, "iat")
    if nbf is not None and nbf > now + leeway:
        raise ValueError("not yet valid")
    # Policy: iat is required (RFC 7523 makes it optional). Single use is remembered in the
    # cache, and a cache that lost its data refuses whatever was issued before (data epoch).
    if iat is None:
        raise ValueError("iat missing")
    if not now - max_lifetime - leeway <= iat <= now + leeway:
        raise ValueError("iat outside the acceptable window")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_CHARS:
        raise ValueError("jti missing, empty or too long")
    return jti, exp, iat


def _verified_by_any(
    token: str, typs: Collection[str | None], keys: Iterable[PublicJWK]
) -> dict[str, Any]:
    """The claims of ``token`` verified by the first of ``keys`` that verifies it."""
    first: JWSError | None = None
    for key in keys:

        def this_key(_: Mapping[str, Any], key: PublicJWK = key) -> PublicJWK:
            return key

        try:
            _, claims = decode_jws(token, typs=typs, algs=AGENT_JWT_ALGS, resolve_key=this_key)
        except JWSError as exc:
            first = first or exc
            continue
        return claims
    raise JWSError(f"no kid, and no registered key verifies it ({first})")


def _verify_agent_jwt(
    token: str,
    *,
    typs: Collection[str | None],
    client_id: str,
    keys: Mapping[str, PublicJWK],
    issuer: str,
    now: int,
    leeway: int,
    max_lifetime: int,
    token_endpoint: str | None = None,
) -> tuple[dict[str, Any], str, int, int]:
    def resolve(header: Mapping[str, Any]) -> PublicJWK:
        kid = header.get("kid")
        key = keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise JWKError("kid names none of the agent's registered keys")
        return key

    if "kid" not in unverified_header(token):
        # RFC 7523 does not require a kid: try each registered key (a client has at most
        # ten; a key of another algorithm fails at once).
        claims = _verified_by_any(token, typs, keys.values())
    else:
        _, claims = decode_jws(token, typs=typs, algs=AGENT_JWT_ALGS, resolve_key=resolve)
    jti, exp, iat = _check_claims(
        claims,
        client_id=client_id,
        issuer=issuer,
        now=now,
        leeway=leeway,
        max_lifetime=max_lifetime,
        token_endpoint=token_endpoint,
    )
    return claims, jti, exp, iat


def verify_client_assertion(
    assertion: str,
    *,
    client_id: str,
    keys: Mapping[str, PublicJWK],
    issuer: str,
    now: int,
    client_id_param: str | None = None,
    leeway: int = 0,
    max_lifetime: int = MAX_ASSERTION_LIFETIME,
    token_endpoint: str | None = None,
) -> AgentAssertion:
    """Authenticate agent ``client_id`` by a ``private_key_jwt`` assertion (RFC 7523 §3).

    ``iss`` = ``sub`` = ``client_id``; ``aud`` = ``issuer`` (or ``token_endpoint``, when the
    server names one); ``exp`` present, not past and at
    most ``max_lifetime`` ahead; ``iat`` present and sane; optional ``nbf`` sane; ``jti``
    present; signature by the registered key named by ``kid`` with an allow-listed ``alg``; a
    ``client_id`` form parameter, if sent, must match (RFC 7521 §4.2). Failures raise 401
    ``invalid_client``.
    """
    if client_id_param is not None and client_id_param != client_id:
        raise InvalidClient(detail="client_id parameter does not match the assertion")
    try:
        _, jti, exp, iat = _verify_agent_jwt(
            assertion,
            typs=CLIENT_ASSERTION_TYPS,
            client_id=client_id,
            keys=keys,
            issuer=issuer,
            now=now,
            leeway=leeway,
            max_lifetime=max_lifetime,
            token_endpoint=token_endpoint,
        )
    except (JWSError, ValueError) as exc:
        raise InvalidClient(detail=f"client assertion rejected: {exc}") from None
    return AgentAssertion(client_id=client_id, jti=jti, exp=exp, iat=iat)


def verify_actor_token(
    token: str,
    *,
    client_id: str,
    keys: Mapping[str, PublicJWK],
    issuer: str,
    now: int,
    leeway: int = 0,
    max_lifetime: int = MAX_ASSERTION_LIFETIME,
) -> AgentAssertion:
    """Verify an actor token signed by agent ``client_id`` (docs/api.md "POST /token").

    Same claim rules as a client assertion, but ``typ`` must be exactly ``actor+jwt`` and an
    optional ``cnf.jkt`` names the DPoP key the actor will use. Failures raise 400
    ``invalid_request`` (RFC 8693 §2.2.2).
    """
    try:
        claims, jti, exp, iat = _verify_agent_jwt(
            token,
            typs=(ACTOR_TOKEN_TYP,),
            client_id=client_id,
            keys=keys,
            issuer=issuer,
            now=now,
            leeway=leeway,
            max_lifetime=max_lifetime,
        )
        jkt = _actor_jkt(claims)
    except (JWSError, ValueError) as exc:
        raise InvalidRequest("The actor_token is invalid.", detail=f"actor token: {exc}") from None
    return AgentAssertion(client_id=client_id, jti=jti, exp=exp, iat=iat, jkt=jkt)


def _actor_jkt(claims: Mapping[str, Any]) -> str | None:
    cnf = claims.get("cnf")
    if cnf is None:
        return None
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if not isinstance(jkt, str) or not _JKT.match(jkt):
        raise ValueError("cnf.jkt must be a SHA-256 JWK thumbprint")
    return jkt


def unverified_actor(token: str) -> str:
    """The issuing agent of an actor token, to look up its keys (400 on malformed input)."""
    try:
        return unverified_issuer(token)
    except OAuthError:
        raise InvalidRequest("The actor_token is malformed.") from None
