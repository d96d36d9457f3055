"""Resource-server authentication at the verifier (RFC 6749 §2.3, RFC 7523 §2.2).

A caller is a registered resource server. Secret holders use ``client_secret_basic`` or
``client_secret_post`` (the same secret, two transports); key holders use
``private_key_jwt`` with a single-use assertion whose ``aud`` is the issuer. Exactly one
method per request. Records come from the read-only database and are kept in memory (see
:class:`Callers`), so random client ids can neither load the database nor crowd out the
callers it knows.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from app.api.errors import unavailable
from app.cache.base import Once
from app.core.client_auth import (
    basic_credentials,
    read_client_assertion,
    same_secret,
    unverified_issuer,
    verify_client_assertion,
)
from app.core.errors import InvalidClient, InvalidRequest
from app.core.jwk import JWKError, PublicJWK, parse_jwks
from app.verifier.database import CallerRecord, ReadOnlyStore, StoreUnavailable

MAX_CACHED = 10_000


@dataclass(frozen=True, slots=True)
class Caller:
    client_id: str
    resource: str
    auth_method: str
    secret_hash: str | None
    keys: Mapping[str, PublicJWK]
    dpop_required: bool = True  # False: Bearer tokens are accepted for this resource


@dataclass(frozen=True, slots=True)
class Authenticated:
    caller: Caller
    assertion: Once | None = None  # a private_key_jwt assertion, to be used up


def _challenge(scheme_used: bool) -> dict[str, str]:
    return {"WWW-Authenticate": 'Basic realm="agentauth-verifier"'} if scheme_used else {}


def _basic_credentials(header: str) -> tuple[str, str]:
    return basic_credentials(header, _challenge(True))


class _Allowance:
    """At most ``limit`` uses per second of the process's monotonic time."""

    __slots__ = ("_count", "_limit", "_second")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._second = 0
        self._count = 0

    def take(self) -> bool:
        second = int(time.monotonic())
        if second != self._second:
            self._second, self._count = second, 0
        self._count += 1
        return self._count <= self._limit


class Callers:
    """Caller records, served from memory.

    A caller this process has found in the database is *known*: its record is kept and, once
    due (``ttl``), refreshed within an allowance of its own; while a refresh cannot happen
    (allowance used up, database unreachable) the last record keeps serving. Ids never found
    are *unknown*: they share a separate allowance (``cold_lookups_per_second``, then 503)
    and a miss is remembered for ``negative_ttl``. A flood of made-up ids therefore costs
    the database a bounded number of queries and never turns a known caller away.
    """

    def __init__(
        self,
        store: ReadOnlyStore,
        *,
        issuer: str,
        clock: Callable[[], float] = time.time,
        ttl: float = 60.0,
        negative_ttl: float = 5.0,
        cold_lookups_per_second: int = 100,
        refreshes_per_second: int = 100,
    ) -> None:
        self._store = store
        self._issuer = issuer
        self._clock = clock
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._cold = _Allowance(cold_lookups_per_second)
        self._refreshes = _Allowance(refreshes_per_second)
        self._known: dict[str, tuple[Caller, float]] = {}  # record, due at (clock time)
        self._unknown: dict[str, float] = {}  # id, forgotten at (clock time)
        self._basic: dict[str, tuple[Caller, float]] = {}

    async def preload(self) -> None:
        """Know every registered caller (up to the cache's bound) before it calls; one that
        registers later is known from its first successful lookup."""
        now = self._clock()
        for record in await self._store.callers(MAX_CACHED):
            self._remember(record.client_id, record, now)

    async def lookup(self, client_id: str) -> Caller | None:
        now = self._clock()
        known = self._known.get(client_id)
        if known is not None:
            if known[1] > now or not self._refreshes.take():
                return known[0]
            return await self._refresh(client_id, known[0], now)
        if self._unknown.get(client_id, 0.0) > now or len(client_id) > 64:
            return None  # remembered as unknown, or longer than any id we issue
        if not self._cold.take():
            raise unavailable("caller lookups are rate limited")
        try:
            return self._remember(client_id, await self._store.caller(client_id), now)
        except StoreUnavailable as exc:
            raise unavailable(str(exc), "postgres") from None

    async def _refresh(self, client_id: str, last: Caller, now: float) -> Caller | None:
        try:
            record = await self._store.caller(client_id)
        except StoreUnavailable:
            return last  # a stale record beats refusing a known caller
        return self._remember(client_id, record, now)

    def _remember(self, client_id: str, record: CallerRecord | None, now: float) -> Caller | None:
        if record is None:
            self._known.pop(client_id, None)
            if len(self._unknown) >= MAX_CACHED:
                self._unknown.clear()
            self._unknown[client_id] = now + self._negative_ttl
            return None
        keys: Mapping[str, PublicJWK] = {}
        if record.jwks:
            try:
                keys = MappingProxyType(parse_jwks(record.jwks))
            except JWKError:
                keys = {}
        caller = Caller(
            record.client_id,
            record.resource,
            record.auth_method,
            record.secret_hash,
            keys,
            bool(record.dpop_required),
        )
        if len(self._known) >= MAX_CACHED and client_id not in self._known:
            self._known.clear()
        self._known[client_id] = (caller, now + self._ttl)
        return caller

    async def _by_secret(self, client_id: str, secret: str, *, basic: bool) -> Caller:
        caller = await self.lookup(client_id)
        if (
            caller is None
            or caller.secret_hash is None
            or not same_secret(secret, caller.secret_hash)
        ):
            raise InvalidClient(headers=_challenge(basic), detail="unknown caller or bad secret")
        return caller

    async def _by_basic(self, header: str) -> Caller:
        cached = self._basic.get(header)
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        client_id, secret = _basic_credentials(header)
        caller = await self._by_secret(client_id, secret, basic=True)
        if len(self._basic) >= MAX_CACHED:
            self._basic.clear()
        self._basic[header] = (caller, self._clock() + self._ttl)
        return caller

    async def _by_assertion(self, params: Mapping[str, str], now: int) -> Authenticated:
        assertion, client_id_param = read_client_assertion(params)
        client_id = unverified_issuer(assertion)
        caller = await self.lookup(client_id)
        if caller is None or caller.auth_method != "private_key_jwt":
            raise InvalidClient(detail="unknown caller or not a private_key_jwt caller")
        verified = verify_client_assertion(
            assertion,
            client_id=client_id,
            keys=caller.keys,
            issuer=self._issuer,
            now=now,
            client_id_param=client_id_param,
        )
        key = hashlib.sha256(f"rs-assertion\x00{client_id}\x00{verified.jti}".encode()).hexdigest()
        return Authenticated(caller, Once(key, max(1, verified.exp - now + 1), verified.iat))

    async def authenticate(
        self, authorization: str | None, params: Mapping[str, str], *, now: int
    ) -> Authenticated:
        """Authenticate the caller by exactly one method; 401 ``invalid_client`` otherwise.
        A client assertion is judged at the request's ``now``."""
        basic = authorization is not None and authorization[:6].lower() == "basic "
        post = "client_secret" in params
        jwt = "client_assertion" in params or "client_assertion_type" in params
        if basic + post + jwt > 1:
            raise InvalidRequest("Use exactly one client authentication method.")
        if basic:
            assert authorization is not None  # noqa: S101 - narrowed above
            return Authenticated(await self._by_basic(authorization))
        if post:
            client_id = params.get("client_id")
            if not client_id:
                raise InvalidClient(detail="client_secret without client_id")
            return Authenticated(
                await self._by_secret(client_id, params["client_secret"], basic=False)
            )
        if jwt:
            return await self._by_assertion(params, now)
        raise InvalidClient(headers=_challenge(True), detail="no client authentication")
