"""Resource-server authentication at the verifier (RFC 6749 §2.3, RFC 7523 §2.2).

A caller is a registered resource server. Secret holders use ``client_secret_basic`` or
``client_secret_post`` (the same secret, two transports); key holders use
``private_key_jwt`` with a single-use assertion whose ``aud`` is the issuer. Exactly one
method per request. Records come from the read-only database on a cold miss and are kept
for ``ttl`` seconds; unknown ids are remembered briefly and cold lookups are rate-limited,
so random client ids cannot turn into database load.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import unquote_plus

from app.api.errors import unavailable
from app.core.client_auth import (
    read_client_assertion,
    same_secret,
    unverified_issuer,
    verify_client_assertion,
)
from app.core.errors import InvalidClient, InvalidRequest
from app.core.jwk import JWKError, PublicJWK, parse_jwks
from app.verifier.database import ReadOnlyStore, StoreUnavailable

MAX_CACHED = 10_000


@dataclass(frozen=True, slots=True)
class Caller:
    client_id: str
    resource: str
    auth_method: str
    secret_hash: str | None
    keys: Mapping[str, PublicJWK]


@dataclass(frozen=True, slots=True)
class Authenticated:
    caller: Caller
    assertion_key: str | None = None  # a private_key_jwt assertion's single-use key
    assertion_ttl: int = 0


def _challenge(scheme_used: bool) -> dict[str, str]:
    return {"WWW-Authenticate": 'Basic realm="agentauth-verifier"'} if scheme_used else {}


def _basic_credentials(header: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClient(
            headers=_challenge(True), detail="malformed Basic credentials"
        ) from None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise InvalidClient(headers=_challenge(True), detail="Basic credentials without a colon")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    return unquote_plus(client_id), unquote_plus(secret)


class Callers:
    def __init__(
        self,
        store: ReadOnlyStore,
        *,
        issuer: str,
        clock: Callable[[], float] = time.time,
        ttl: float = 60.0,
        negative_ttl: float = 5.0,
        cold_lookups_per_second: int = 100,
    ) -> None:
        self._store = store
        self._issuer = issuer
        self._clock = clock
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._cold_limit = cold_lookups_per_second
        self._cold_window = (0, 0)
        self._records: dict[str, tuple[Caller | None, float]] = {}
        self._basic: dict[str, tuple[Caller, float]] = {}

    def _cold_allowed(self) -> bool:
        second = int(time.monotonic())
        window, count = self._cold_window
        if window != second:
            window, count = second, 0
        self._cold_window = (window, count + 1)
        return count < self._cold_limit

    async def lookup(self, client_id: str) -> Caller | None:
        cached = self._records.get(client_id)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        if len(client_id) > 64:  # longer than any id we issue
            return None
        if not self._cold_allowed():
            raise unavailable("caller lookups are rate limited")
        try:
            record = await self._store.caller(client_id)
        except StoreUnavailable as exc:
            if cached is not None:  # a stale record beats refusing a known caller
                return cached[0]
            raise unavailable(str(exc), "postgres") from None
        caller = None
        if record is not None:
            keys: Mapping[str, PublicJWK] = {}
            if record.jwks:
                try:
                    keys = MappingProxyType(parse_jwks(record.jwks))
                except JWKError:
                    keys = {}
            caller = Caller(
                record.client_id, record.resource, record.auth_method, record.secret_hash, keys
            )
        if len(self._records) >= MAX_CACHED:
            self._records.clear()
        self._records[client_id] = (caller, now + (self._ttl if caller else self._negative_ttl))
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
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        client_id, secret = _basic_credentials(header)
        caller = await self._by_secret(client_id, secret, basic=True)
        if len(self._basic) >= MAX_CACHED:
            self._basic.clear()
        self._basic[header] = (caller, time.monotonic() + self._ttl)
        return caller

    async def _by_assertion(self, params: Mapping[str, str]) -> Authenticated:
        assertion, client_id_param = read_client_assertion(params)
        client_id = unverified_issuer(assertion)
        caller = await self.lookup(client_id)
        if caller is None or caller.auth_method != "private_key_jwt":
            raise InvalidClient(detail="unknown caller or not a private_key_jwt caller")
        now = int(self._clock())
        verified = verify_client_assertion(
            assertion,
            client_id=client_id,
            keys=caller.keys,
            issuer=self._issuer,
            now=now,
            client_id_param=client_id_param,
        )
        key = hashlib.sha256(f"rs-assertion\x00{client_id}\x00{verified.jti}".encode()).hexdigest()
        return Authenticated(caller, key, max(1, verified.exp - now + 1))

    async def authenticate(
        self, authorization: str | None, params: Mapping[str, str]
    ) -> Authenticated:
        """Authenticate the caller by exactly one method; 401 ``invalid_client`` otherwise."""
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
            return await self._by_assertion(params)
        raise InvalidClient(headers=_challenge(True), detail="no client authentication")
