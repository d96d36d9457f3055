"""Local checking for merchants: the registry's JWK set, the core's token and proof checks,
and a replay guard of the merchant's own — no call to the verifier per request.

Trade-offs against the verifier's ``/verify`` (the default): revocation takes effect only
when the token expires (at most the access-token lifetime, 5 minutes by default), and
capabilities with a ``rate`` or ``budget`` limit are refused, because counting them needs
the grant's shared counters. Use it where those are acceptable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from app.core.capabilities import capabilities_at
from app.core.decision import Denial, VerifyRequest, decide
from app.core.dpop import DEFAULT_MAX_AGE
from app.core.envelope import amount_from_request
from app.core.errors import InvalidToken
from app.core.introspection import denial
from app.core.jwk import JWKError, PublicJWK, parse_jwks
from app.core.jws import unverified_kid
from app.core.resources import canonical_resource
from app.core.tokens import TokenExpired, verify_access_token
from app.sdk.merchant import refuse

Remember = Callable[[str, int], Awaitable[bool]]


class InMemoryReplayGuard:
    """Single-process replay guard. With several merchant processes, pass a shared one
    instead, e.g. ``lambda key, ttl: redis.set(key, 1, nx=True, ex=ttl)``."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._pruned = float("-inf")
        self._lock = asyncio.Lock()

    async def __call__(self, key: str, ttl: int) -> bool:
        async with self._lock:
            now = time.monotonic()
            if len(self._seen) > 100_000 and now - self._pruned > 1.0:  # at most once a second
                self._seen = {k: t for k, t in self._seen.items() if t > now}
                self._pruned = now
            if self._seen.get(key, 0) > now:
                return False
            self._seen[key] = now + ttl
            return True


class LocalVerifier:
    """Same ``verify(**request)`` interface as :class:`~app.sdk.merchant.VerifierClient`."""

    def __init__(
        self,
        issuer: str,
        resource: str,
        *,
        remember: Remember | None = None,
        http: httpx.AsyncClient | None = None,
        refresh_interval: float = 60.0,
        dpop_required: bool = True,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        # Mirror of the resource server's registration: False accepts Bearer tokens too.
        self.dpop_required = dpop_required
        self.resource = canonical_resource(resource)  # as the tokens' ``aud`` is written
        self._remember = remember or InMemoryReplayGuard()
        self._http = http or httpx.AsyncClient(timeout=5)
        self._own_http = http is None
        self._keys: dict[str, PublicJWK] = {}
        self._fetched = float("-inf")
        self._refresh_interval = refresh_interval
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def _keys_for(self, token: str) -> dict[str, PublicJWK]:
        """The registry's keys: fetched again every ``refresh_interval``, and at most every
        5 s when a token names a key not seen yet (a rotation); never for a bad signature."""
        if time.monotonic() - self._fetched >= self._refresh_interval:
            await self._load_keys(min_age=self._refresh_interval)
        kid = unverified_kid(token)
        if kid is not None and kid not in self._keys:
            await self._load_keys(min_age=5.0)
        return self._keys

    async def _load_keys(self, *, min_age: float) -> None:
        async with self._lock:
            if time.monotonic() - self._fetched < min_age:
                return  # another caller fetched them while this one waited
            self._fetched = time.monotonic()
            try:
                response = await self._http.get(f"{self.issuer}/.well-known/jwks.json")
                # The registry's own set: next, active and recently retired keys, which can
                # be more than the limit for agents' sets.
                self._keys = parse_jwks(response.json(), max_keys=256)
            except (httpx.HTTPError, ValueError, JWKError):
                return  # keep the keys we have; a token they cannot verify is refused

    async def verify(self, **request: Any) -> dict[str, Any]:
        now = int(time.time())
        token = str(request["token"])
        keys = await self._keys_for(token)
        try:
            claims = verify_access_token(token, issuer=self.issuer, keys=keys, now=now)
        except TokenExpired:
            return denial("expired")
        except InvalidToken:
            return denial("invalid_token")
        amount = request.get("amount")
        try:
            money = amount_from_request(amount) if amount is not None else None
        except ValueError as exc:
            raise refuse(400, f"amount: {exc}") from None
        asked = VerifyRequest(
            token=token,
            dpop=None if request.get("dpop") is None else str(request["dpop"]),
            method=str(request["method"]),
            url=str(request["url"]),
            kind=request.get("type"),
            action=request.get("action"),
            identifier=request.get("identifier"),
            amount=money,
        )
        decision = decide(
            claims,
            capabilities_at(claims.authorization_details, self.resource),
            asked,
            resource=self.resource,
            now=now,
            dpop_max_age=DEFAULT_MAX_AGE,
            bearer_accepted=not self.dpop_required,
            counted=False,  # no shared counters here: a rate or a budget allows nothing
        )
        if isinstance(decision, Denial):
            return decision.body()
        if decision.once is not None and not await self._remember(*decision.once):
            return denial("dpop_replay")
        return decision.body()
