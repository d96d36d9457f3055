"""Compact JWS: strict parsing, signing and verification with ``cryptography`` directly.

Every JWT kind (access token, DPoP proof, client assertion, actor token) goes through
:func:`decode_jws` with its own ``typ`` set and algorithm allow-list (RFC 8725 §3.1, §3.11).
A generic JOSE library would also work, but this path is the verifier's hot loop: it skips
generic key import and JSON round trips and is measured in ``benchmarks/core.py``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from app.core.jwk import JWKError, PublicJWK, b64url_decode, b64url_encode
from app.core.strict_json import JSONError, parse_json_object

# RFC 8725bis §3.14: a compact JWS is three base64url parts and nothing else.
_COMPACT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
MAX_JWS_CHARS = 16 * 1024
_ES256_SIG_BYTES = 64
_ED25519_SIG_BYTES = 64

PrivateKey = ec.EllipticCurvePrivateKey | Ed25519PrivateKey


class JWSError(ValueError):
    """The compact JWS is malformed, uses a forbidden algorithm or does not verify."""


def split_compact(token: str) -> tuple[str, str, str]:
    """Split a compact JWS into its three base64url parts, rejecting anything else."""
    if not isinstance(token, str) or len(token) > MAX_JWS_CHARS or not _COMPACT.match(token):
        raise JWSError("not a compact JWS")
    header, payload, signature = token.split(".")
    return header, payload, signature


def verify_signature(alg: str, key: PublicJWK, signing_input: bytes, signature: bytes) -> None:
    """Verify ``signature`` over ``signing_input``; raises :class:`JWSError` on any failure."""
    if alg not in key.algorithms:
        raise JWSError("algorithm not allowed for this key")  # RFC 8725 §3.1: one alg per key
    try:
        if alg == "ES256":
            if len(signature) != _ES256_SIG_BYTES:
                raise JWSError("bad ES256 signature length")
            r = int.from_bytes(signature[:32], "big")
            s = int.from_bytes(signature[32:], "big")
            pub = key.key
            assert isinstance(pub, ec.EllipticCurvePublicKey)  # noqa: S101 - alg pins the type
            pub.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))
        elif alg in ("RS256", "PS256"):  # a trusted issuer's RSA key only (jwk.py)
            pub_rsa = key.key
            assert isinstance(pub_rsa, rsa.RSAPublicKey)  # noqa: S101 - alg pins the type
            pad: padding.AsymmetricPadding = (
                padding.PKCS1v15()
                if alg == "RS256"
                else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            )
            pub_rsa.verify(signature, signing_input, pad, hashes.SHA256())
        else:
            if len(signature) != _ED25519_SIG_BYTES:
                raise JWSError("bad Ed25519 signature length")
            pub_ed = key.key
            assert isinstance(pub_ed, Ed25519PublicKey)  # noqa: S101 - alg pins the type
            pub_ed.verify(signature, signing_input)
    except InvalidSignature:
        raise JWSError("signature does not verify") from None


def sign_compact(header: Mapping[str, Any], payload: Mapping[str, Any], key: PrivateKey) -> str:
    """Sign ``payload`` as a compact JWS with ``header`` (whose ``alg`` must fit ``key``)."""
    alg = header.get("alg")
    signing_input = (
        b64url_encode(orjson.dumps(dict(header))) + "." + b64url_encode(orjson.dumps(payload))
    )
    data = signing_input.encode("ascii")
    if alg == "ES256" and isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    elif alg in ("EdDSA", "Ed25519") and isinstance(key, Ed25519PrivateKey):
        signature = key.sign(data)
    else:
        raise JWSError("algorithm does not fit the signing key")
    return signing_input + "." + b64url_encode(signature)


KeyResolver = Callable[[Mapping[str, Any]], PublicJWK]


def decode_jws(
    token: str,
    *,
    typs: Collection[str | None],
    algs: Collection[str],
    resolve_key: KeyResolver,
    trusted_signer: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parse and verify a compact JWS whose payload is a JSON object (a JWT).

    Checks, in order: compact form, header JSON, ``alg`` in ``algs`` (case-sensitive, never
    ``none`` or HMAC because callers only list asymmetric algorithms), no ``crit``, ``typ`` in
    ``typs`` (``None`` in ``typs`` allows an absent ``typ``), the key from ``resolve_key``, the
    signature, and finally the payload JSON. Returns ``(header, claims)``.

    ``trusted_signer=True`` (only for tokens this server signed with its own keys) parses the
    already-authenticated payload with the faster ``orjson``; every other kind keeps the strict
    parser, because its signer may be an attacker crafting duplicate members (RFC 8725 §3.7).
    """
    header_b64, payload_b64, sig_b64 = split_compact(token)
    try:
        header = parse_json_object(b64url_decode(header_b64))
        signature = b64url_decode(sig_b64)
        payload_raw = b64url_decode(payload_b64)
    except (JWKError, JSONError) as exc:
        raise JWSError(f"malformed JWS: {exc}") from None
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algs:
        raise JWSError("algorithm not allowed")
    if "crit" in header:
        raise JWSError("critical header parameters are not supported")
    typ = header.get("typ")
    if (typ is not None and not isinstance(typ, str)) or typ not in typs:
        raise JWSError("unexpected typ")
    try:
        key = resolve_key(header)
    except JWKError as exc:
        raise JWSError(f"key: {exc}") from None
    verify_signature(alg, key, f"{header_b64}.{payload_b64}".encode("ascii"), signature)
    try:
        claims = orjson.loads(payload_raw) if trusted_signer else parse_json_object(payload_raw)
    except (JSONError, orjson.JSONDecodeError) as exc:
        raise JWSError(f"payload: {exc}") from None
    if not isinstance(claims, dict):
        raise JWSError("payload: not a JSON object")
    return header, claims


def unverified_header(token: str) -> Mapping[str, Any]:
    """The JOSE header of a compact JWS read without verifying anything, only to choose a
    key or see whether one is named; ``{}`` when it is unreadable (verification then fails
    on its own). Never for trusting the token."""
    try:
        return parse_json_object(b64url_decode(split_compact(token)[0]))
    except (JWSError, JWKError, JSONError):
        return {}


def unverified_kid(token: str) -> str | None:
    """The ``kid`` the unverified header names, for choosing which key to fetch or to cache
    against."""
    kid = unverified_header(token).get("kid")
    return kid if isinstance(kid, str) else None


def token_hash(token: str) -> str:
    """``base64url(SHA-256(ASCII(token)))``: RFC 9449 §4.2 ``ath`` and cache keys."""
    # Tokens are ASCII by construction; anything else fails verification elsewhere, so hash
    # its UTF-8 form rather than raise here.
    return b64url_encode(hashlib.sha256(token.encode("utf-8")).digest())
