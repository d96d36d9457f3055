"""Minting and recording tokens for a grant."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.core.capabilities import AuthorizationDetail, for_audience
from app.core.jws import unverified_kid
from app.core.token_cache import VerifiedTokens, token_key
from app.core.tokens import (
    AccessTokenClaims,
    TokenExpired,
    mint_access_token,
    verify_access_token,
)
from app.registry.services import audit
from app.registry.services.common import new_id, new_secret, secret_hash
from app.registry.services.keys import KeyManager
from app.store import token_store
from app.store.sql import Db
from app.store.token_store import GrantRecord

OWN_TOKEN_CACHE_ENTRIES = 10_000
OwnToken = tuple[str, AccessTokenClaims]  # (kid, claims) of an access token that verified


def _own_tokens() -> VerifiedTokens[OwnToken]:
    return VerifiedTokens(lambda entry: entry[1].exp, max_entries=OWN_TOKEN_CACHE_ENTRIES)


@dataclass(frozen=True, slots=True)
class TokenSigner:
    """The port that mints this registry's access tokens with its current key and checks the
    ones it issued (``issuer``, lifetime ``ttl`` and clock ``leeway`` from the settings)."""

    keys: KeyManager
    issuer: str
    ttl: int
    leeway: int
    verified: VerifiedTokens[OwnToken] = field(default_factory=_own_tokens)


@dataclass(frozen=True)
class Issued:
    access_token: str
    claims: AccessTokenClaims
    refresh_token: str | None = None

    def response(self, now: int, **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.claims.token_type,
            "expires_in": self.claims.exp - now,
            "authorization_details": self.claims.authorization_details,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        if self.claims.scope is not None:
            body["scope"] = self.claims.scope
        return {**body, **extra}


async def record_access_token(
    signer: TokenSigner, db: Db, claims: AccessTokenClaims, parent_jti: str | None
) -> Issued:
    token = mint_access_token(claims, signer.keys.current(claims.iat))
    await token_store.insert_access_token(
        db,
        {
            "jti": claims.jti,
            "grant_id": claims.grant_id,
            "client_id": claims.client_id,
            "audience": claims.aud,
            "parent_jti": parent_jti,
            "issued_at": claims.iat,
            "expires_at": claims.exp,
        },
    )
    return Issued(token, claims)


def verify_own_token(signer: TokenSigner, token: str, now: int) -> AccessTokenClaims:
    """An access token this registry issued, verified with its published keys (raises
    ``InvalidToken``). A token that verified is remembered until it expires, so using it again
    (exchanging it for several audiences, say) skips the signature check; every use still
    checks its expiry and that its signing key is still published."""
    keys = signer.keys.key_set.verification_keys(now)
    leeway = signer.leeway
    key = token_key(token)
    cached = signer.verified.get(key)
    if cached is not None and cached[0] in keys:
        claims = cached[1]
        if claims.exp + leeway <= now:
            raise TokenExpired()
        return claims
    claims = verify_access_token(token, issuer=signer.issuer, keys=keys, now=now, leeway=leeway)
    kid = unverified_kid(token)
    if kid is not None:
        signer.verified.put(key, (kid, claims), now)
    return claims


def grant_claims(
    signer: TokenSigner,
    grant: GrantRecord,
    *,
    jkt: str | None,
    audience: str,
    details: list[AuthorizationDetail],
    now: int,
    scope: str | None = None,
) -> AccessTokenClaims:
    """Claims of a depth-0 token for the grant holder at ``audience``."""
    return AccessTokenClaims(
        iss=signer.issuer,
        sub=grant.human_id,
        aud=audience,
        client_id=grant.agent_id,
        act={"sub": grant.agent_id},
        iat=now,
        exp=min(now + signer.ttl, grant.expires_at),
        jkt=jkt,
        grant_id=grant.id,
        auth_time=grant.auth_time,
        authorization_details=[d.to_dict() for d in for_audience(details, audience)],
        scope=grant.scope if scope is None else scope,
    )


async def new_refresh_token(
    db: Db, grant: GrantRecord, family_id: str | None, now: int, jkt: str | None = None
) -> str:
    """A refresh token in ``family_id`` (a new family when ``None``), bound to the DPoP key
    ``jkt`` when the family is (a public client's tokens)."""
    token = new_secret()
    await token_store.insert_refresh_token(
        db,
        {
            "token_hash": secret_hash(token),
            "family_id": family_id or new_id("rtf_"),
            "grant_id": grant.id,
            "agent_id": grant.agent_id,
            "created_at": now,
            "expires_at": grant.expires_at,
            "jkt": jkt,
        },
    )
    return token


async def issue_token_set(
    signer: TokenSigner,
    db: Db,
    grant: GrantRecord,
    *,
    actor: str,
    jkt: str | None,
    audience: str,
    details: list[AuthorizationDetail],
    family_id: str | None,
    now: int,
    event: str,
    data: dict[str, Any],
    scope: str | None = None,
    refresh: bool = True,
    refresh_jkt: str | None = None,
) -> dict[str, Any]:
    """Inside the caller's transaction: a depth-0 access token for ``audience`` (DPoP-bound
    to ``jkt``, Bearer when ``None``), a refresh token in ``family_id`` (a new family when
    ``None``; bound to ``refresh_jkt``) unless ``refresh`` is false, and their audit event
    (``event`` by ``actor``, with ``data`` plus the token's ``jti`` and ``aud``); returns the
    token response."""
    claims = grant_claims(
        signer, grant, jkt=jkt, audience=audience, details=details, now=now, scope=scope
    )
    issued = await record_access_token(signer, db, claims, None)
    body = issued.response(now)
    if refresh:  # deferred like the access token: the audit append below carries both
        body["refresh_token"] = await new_refresh_token(db, grant, family_id, now, refresh_jkt)
    await audit.append(
        db,
        event,
        actor=actor,
        subject=grant.id,
        now=now,
        data={**data, "jti": claims.jti, "aud": audience, "token_type": claims.token_type},
    )
    return body
