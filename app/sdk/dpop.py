"""An agent's key and DPoP proofs for every request (RFC 9449), as an ``httpx.Auth``."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.core.jwk import PublicJWK
from app.core.jws import PrivateKey, sign_compact, token_hash
from app.core.keys import generate_private_key, load_private_jwk, private_jwk, public_jwk_for


class AgentKey:
    """One signing key of an agent: DPoP proofs, client assertions and actor tokens."""

    def __init__(self, private_key: PrivateKey, *, alg: str = "ES256") -> None:
        self.private_key = private_key
        self.alg = alg
        self.public: PublicJWK = public_jwk_for(private_key, alg=alg)

    @classmethod
    def generate(cls, alg: str = "ES256") -> AgentKey:
        return cls(generate_private_key(alg), alg=alg)

    @classmethod
    def load_or_create(cls, path: Path, alg: str = "ES256") -> AgentKey:
        """The key in ``path`` (a private JWK), created with mode 0600 when missing."""
        if path.exists():
            private_key, public = load_private_jwk(json.loads(path.read_text()))
            return cls(private_key, alg=public.alg or alg)
        key = cls.generate(alg)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(private_jwk(key.private_key, alg=alg), handle)
        return key

    @property
    def kid(self) -> str:
        assert self.public.kid is not None  # noqa: S101 - set by public_jwk_for
        return self.public.kid

    @property
    def jkt(self) -> str:
        return self.public.jkt

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public.to_dict()]}

    def sign(self, header: dict[str, Any], claims: dict[str, Any]) -> str:
        return sign_compact({"alg": self.alg, **header}, claims, self.private_key)

    def proof(
        self, method: str, url: str, *, access_token: str | None = None, nonce: str | None = None
    ) -> str:
        """A fresh DPoP proof: new ``jti``, current ``iat``, ``htu`` without query/fragment."""
        parts = urlsplit(url)
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method.upper(),
            "htu": f"{parts.scheme}://{parts.netloc}{parts.path or '/'}",
            "iat": int(time.time()),
        }
        if access_token is not None:
            claims["ath"] = token_hash(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        jwk = {k: v for k, v in self.public.to_dict().items() if k not in ("kid", "alg", "use")}
        return self.sign({"typ": "dpop+jwt", "jwk": jwk}, claims)

    def assertion(self, client_id: str, audience: str, *, typ: str, lifetime: int = 60) -> str:
        """A ``private_key_jwt`` client assertion (``typ`` client-authentication+jwt) or an
        actor token (``typ`` actor+jwt), single-use ``jti``."""
        now = int(time.time())
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": now,
            "exp": now + lifetime,
            "jti": secrets.token_urlsafe(16),
        }
        return self.sign({"typ": typ, "kid": self.kid}, claims)


def _asks_for_nonce(response: httpx.Response) -> bool:
    """Whether the server refused the proof for want of its nonce (RFC 9449 §8 and §9)."""
    if "dpop-nonce" not in response.headers:
        return False
    if response.status_code == 401:
        return "use_dpop_nonce" in response.headers.get("www-authenticate", "")
    if response.status_code == 400:
        try:
            return bool(response.json().get("error") == "use_dpop_nonce")
        except (ValueError, AttributeError):
            return False
    return False


def _origin(request: httpx.Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc.decode()}"


class DPoPAuth(httpx.Auth):
    """Signs every request with a fresh DPoP proof (``htm``, ``htu``, ``ath`` when a token is
    sent as ``Authorization: DPoP``), remembers server nonces per origin and retries once
    when a server asks for a new one. A ``jti`` is never reused: a retry is a new proof."""

    requires_response_body = True

    def __init__(self, key: AgentKey, token: str | Callable[[], str | None] | None = None) -> None:
        self.key = key
        self._token = token
        self.nonces: dict[str, str] = {}

    def _access_token(self) -> str | None:
        return self._token() if callable(self._token) else self._token

    def _sign(self, request: httpx.Request) -> None:
        token = self._access_token()
        request.headers["DPoP"] = self.key.proof(
            request.method,
            str(request.url),
            access_token=token,
            nonce=self.nonces.get(_origin(request)),
        )
        if token is not None:
            request.headers["Authorization"] = f"DPoP {token}"

    def _keep_nonce(self, request: httpx.Request, response: httpx.Response) -> None:
        """A server may hand out the next nonce on any answer (RFC 9449 §8.2)."""
        nonce = response.headers.get("dpop-nonce")
        if nonce:
            self.nonces[_origin(request)] = nonce

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self._sign(request)
        response = yield request
        self._keep_nonce(request, response)
        if _asks_for_nonce(response):  # retried once, with a new proof
            self._sign(request)
            response = yield request
            self._keep_nonce(request, response)
