"""Access-token verification with an in-process cache keyed by the token's hash.

Only tokens that verified (signature by a published key, ``typ``, ``alg``, issuer, claim
types) are cached, until their ``exp``; per-request checks (expiry, audience, revocation)
run on every use. Failures are never cached.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

from app.api import metrics
from app.core.capabilities import AuthorizationDetail, capabilities_at
from app.core.errors import InvalidToken
from app.core.introspection import active_response
from app.core.jws import unverified_kid
from app.core.token_cache import VerifiedTokens, token_key
from app.core.tokens import AccessTokenClaims, TokenExpired, verify_access_token
from app.verifier.keys import VerifierKeys

MAX_TOKEN_CHARS = 16 * 1024


@dataclass(slots=True)
class VerifiedToken:
    claims: AccessTokenClaims
    active_body: bytes
    _details: list[AuthorizationDetail] | None = field(default=None)

    @property
    def details(self) -> list[AuthorizationDetail]:
        """The capabilities for this token's audience, parsed once."""
        if self._details is None:
            self._details = capabilities_at(self.claims.authorization_details, self.claims.aud)
        return self._details


class TokenVerifier:
    def __init__(self, keys: VerifierKeys, *, issuer: str, max_entries: int = 100_000) -> None:
        self._keys = keys
        self._issuer = issuer
        self._cache: VerifiedTokens[VerifiedToken] = VerifiedTokens(
            lambda verified: verified.claims.exp, max_entries=max_entries
        )

    def _verify(self, token: str, now: int) -> VerifiedToken:
        claims = verify_access_token(token, issuer=self._issuer, keys=self._keys.keys, now=now)
        return VerifiedToken(claims, orjson.dumps(active_response(claims)))

    async def verify(self, token: str, now: int) -> VerifiedToken:
        """The verified token, or :class:`InvalidToken` (``detail`` says why)."""
        if len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken(detail="token too long")
        key = token_key(token)
        cached = self._cache.get(key)
        metrics.TOKEN_CACHE.labels("miss" if cached is None else "hit").inc()
        if cached is not None:
            if cached.claims.exp <= now:
                raise TokenExpired()
            return cached
        try:
            verified = self._verify(token, now)
        except InvalidToken:
            if not await self._keys.refresh_for(unverified_kid(token)):
                raise
            verified = self._verify(token, now)
        self._cache.put(key, verified, now)
        return verified

    def prune(self, now: int) -> None:
        self._cache.prune(now)

    def __len__(self) -> int:
        return len(self._cache)
