"""Builders for tokens and proofs with a knob for every check the tests break."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from app.core.jwk import b64url_encode
from app.core.jws import PrivateKey, sign_compact
from app.core.keys import private_jwk, public_jwk_for

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "rfc_vectors.json").read_text(encoding="utf-8")
)
ISSUER = "https://as.example.com"
RESOURCE = "https://shop.example.com/api"
NOW = 1_790_000_000


class Agent:
    """An agent's key pair with helpers to sign its JWTs."""

    def __init__(self, alg: str = "ES256", client_id: str | None = None) -> None:
        self.alg = alg
        self.private_key: PrivateKey = (
            ec.generate_private_key(ec.SECP256R1())
            if alg == "ES256"
            else Ed25519PrivateKey.generate()
        )
        self.public = public_jwk_for(self.private_key, alg=alg)
        self.client_id = client_id or f"agt_{uuid.uuid4().hex[:12]}"
        self.kid = self.public.kid or ""

    @property
    def jkt(self) -> str:
        return self.public.jkt

    @property
    def keys(self) -> dict[str, Any]:
        return {self.kid: self.public}

    def jwk(self, **extra: Any) -> dict[str, Any]:
        members = dict(private_jwk(self.private_key, alg=self.alg).items())
        members.pop("d")
        members.pop("kid")
        members.pop("alg")
        members.pop("use")
        return {**members, **extra}

    def sign(self, header: Mapping[str, Any], claims: Mapping[str, Any]) -> str:
        return sign_compact(header, claims, self.private_key)

    def sign_raw(self, header: Mapping[str, Any], payload: bytes) -> str:
        """Sign an arbitrary payload (e.g. JSON with duplicate members)."""
        signing_input = f"{b64json(header)}.{b64url_encode(payload)}".encode()
        if isinstance(self.private_key, ec.EllipticCurvePrivateKey):
            der = self.private_key.sign(signing_input, ec.ECDSA(hashes.SHA256()))
            r, s = decode_dss_signature(der)
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        else:
            signature = self.private_key.sign(signing_input)
        return f"{signing_input.decode()}.{b64url_encode(signature)}"

    def dpop(
        self,
        *,
        htm: str = "POST",
        htu: str = f"{ISSUER}/token",
        iat: int = NOW,
        jti: str | None = None,
        access_token: str | None = None,
        header: Mapping[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        body: dict[str, Any] = {
            "jti": uuid.uuid4().hex if jti is None else jti,
            "htm": htm,
            "htu": htu,
            "iat": iat,
        }
        if access_token is not None:
            body["ath"] = ath(access_token)
        body.update(claims)
        for name in drop:
            body.pop(name, None)
        hdr = {"typ": "dpop+jwt", "alg": self.alg, "jwk": self.jwk()}
        hdr.update(header or {})
        return self.sign({k: v for k, v in hdr.items() if v is not None}, body)  # None: drop

    def assertion(
        self,
        *,
        aud: Any = ISSUER,
        iat: int | None = NOW,
        exp: int | None = NOW + 60,
        jti: str | None = None,
        typ: str | None = "client-authentication+jwt",
        header: Mapping[str, Any] | None = None,
        drop: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        body: dict[str, Any] = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": aud,
            "iat": iat,
            "exp": exp,
            "jti": uuid.uuid4().hex if jti is None else jti,
        }
        body.update(claims)
        for name in drop:
            body.pop(name, None)
        body = {k: v for k, v in body.items() if v is not None}
        hdr: dict[str, Any] = {"alg": self.alg, "kid": self.kid}
        if typ is not None:
            hdr["typ"] = typ
        hdr.update(header or {})
        return self.sign({k: v for k, v in hdr.items() if v is not None}, body)  # None: drop

    def actor_token(self, **kwargs: Any) -> str:
        return self.assertion(typ="actor+jwt", **kwargs)


def ath(token: str) -> str:
    return b64url_encode(hashlib.sha256(token.encode("ascii")).digest())


def b64json(obj: Any) -> str:
    return b64url_encode(json.dumps(obj, separators=(",", ":")).encode())


def raw_jws(header: Mapping[str, Any], claims: Mapping[str, Any], signature: bytes) -> str:
    return f"{b64json(header)}.{b64json(claims)}.{b64url_encode(signature)}"


def hs256(header: Mapping[str, Any], claims: Mapping[str, Any], secret: bytes) -> str:
    """An HMAC token (for algorithm-confusion tests)."""
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url_encode(mac)}"


def tamper(token: str, part: int) -> str:
    """Flip one bit in the decoded part ``part`` (0 header, 1 payload, 2 signature)."""
    parts = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(parts[part] + "=" * (-len(parts[part]) % 4)))
    raw[len(raw) // 2] ^= 0x01
    parts[part] = b64url_encode(bytes(raw))
    return ".".join(parts)
