"""Public JSON Web Keys: strict validation, RFC 7638 thumbprints and a key cache.

Accepted key types are EC P-256 (ES256) and OKP Ed25519 (EdDSA / Ed25519, RFC 8037). Key
material arrives from agents and DPoP proofs, so everything here treats it as hostile input.
A trusted workload issuer's key set (:func:`parse_issuer_jwks`) may also hold RSA keys of at
least 2048 bits (RS256, PS256): Kubernetes, SPIFFE and CI systems sign with them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PublicKey = ec.EllipticCurvePublicKey | Ed25519PublicKey | rsa.RSAPublicKey

# RFC 7517 §4 / RFC 7518 §6: members that only private (or symmetric) keys carry.
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
# Last character of a 2- or 3-character final group: its unused low bits must be zero.
_CANONICAL_LAST = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}
MAX_JWKS_KEYS = 10
MAX_KID_CHARS = 128
_EC_COORD_CHARS = 43  # 32 bytes of P-256 coordinate, base64url without padding
_OKP_X_CHARS = 43  # 32 bytes of Ed25519 public key

# Which JWS "alg" values each key type may be used with (RFC 8725 §3.1: one alg per key type).
ALGS_BY_KEY_TYPE: Mapping[tuple[str, str], frozenset[str]] = {
    ("EC", "P-256"): frozenset({"ES256"}),
    ("OKP", "Ed25519"): frozenset({"EdDSA", "Ed25519"}),
}
# Only a trusted issuer's keys may be RSA (never an agent's or a DPoP proof's).
ISSUER_ALGS_BY_KEY_TYPE: Mapping[tuple[str, str], frozenset[str]] = {
    **ALGS_BY_KEY_TYPE,
    ("RSA", ""): frozenset({"RS256", "PS256"}),
}
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192
MAX_ISSUER_KEYS = 20


class JWKError(ValueError):
    """A JWK or JWK set is malformed, private, or of an unsupported type."""


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(value: str) -> bytes:
    """Strict base64url (RFC 7515 §2): no padding, no whitespace, canonical trailing bits.

    Canonical means the unused low bits of the last character are zero, so every byte string
    has exactly one accepted encoding (a key cannot have two thumbprints).
    """
    if not isinstance(value, str) or not _B64URL.match(value):
        raise JWKError("not base64url")
    remainder = len(value) % 4
    if remainder == 1 or (remainder and value[-1] not in _CANONICAL_LAST[remainder]):
        raise JWKError("not canonical base64url")
    data = value.encode("ascii").translate(_TO_STANDARD)  # bytes.translate: a C table lookup
    return binascii.a2b_base64(data + b"=" * (-len(value) % 4), strict_mode=True)


def _member(jwk: Mapping[str, Any], name: str) -> str:
    value = jwk.get(name)
    if not isinstance(value, str) or not value:
        raise JWKError(f"member {name!r} missing or not a string")
    return value


def _b64_member(jwk: Mapping[str, Any], name: str) -> str:
    value = _member(jwk, name)
    if not _B64URL.match(value):
        # RFC 7638 §3.3: a value needing JSON escaping makes the thumbprint undefined.
        raise JWKError(f"member {name!r} is not base64url")
    return value


def thumbprint_input(jwk: Mapping[str, Any]) -> bytes:
    """RFC 7638 §3.2 canonical input: required members only, sorted, no whitespace.

    Members are validated to be base64url (or the fixed ``kty``/``crv`` names), so they never
    need JSON escaping and the string can be formatted directly.
    """
    kty = jwk.get("kty")
    if kty == "EC":
        crv = _member(jwk, "crv")
        if crv not in ("P-256", "P-384", "P-521"):
            raise JWKError("unsupported curve")
        x, y = _b64_member(jwk, "x"), _b64_member(jwk, "y")
        text = f'{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}'
    elif kty == "OKP":
        crv = _member(jwk, "crv")
        if crv not in ("Ed25519", "Ed448", "X25519", "X448"):
            raise JWKError("unsupported curve")
        text = f'{{"crv":"{crv}","kty":"OKP","x":"{_b64_member(jwk, "x")}"}}'
    elif kty == "RSA":
        text = f'{{"e":"{_b64_member(jwk, "e")}","kty":"RSA","n":"{_b64_member(jwk, "n")}"}}'
    elif kty == "oct":
        text = f'{{"k":"{_b64_member(jwk, "k")}","kty":"oct"}}'
    else:
        raise JWKError("unsupported key type")
    return text.encode("ascii")


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 SHA-256 JWK thumbprint, base64url without padding (RFC 9449 §6.1 ``jkt``)."""
    return b64url_encode(hashlib.sha256(thumbprint_input(jwk)).digest())


@dataclass(frozen=True, slots=True)
class PublicJWK:
    """A validated public key, ready to verify signatures."""

    kty: str
    crv: str
    jkt: str
    key: PublicKey
    members: Mapping[str, str]
    kid: str | None = None
    alg: str | None = None

    @property
    def algorithms(self) -> frozenset[str]:
        """The JWS algorithms this key may verify (pinned to ``alg`` when the JWK has one)."""
        allowed = ISSUER_ALGS_BY_KEY_TYPE[(self.kty, self.crv)]
        return allowed & {self.alg} if self.alg else allowed

    def to_dict(self) -> dict[str, str]:
        """The public JWK with ``kid``/``alg``/``use`` when known."""
        out = dict(self.members)
        if self.kid is not None:
            out["kid"] = self.kid
        if self.alg is not None:
            out["alg"] = self.alg
        return out


def _import_ec(jwk: Mapping[str, Any]) -> PublicKey:
    x, y = _b64_member(jwk, "x"), _b64_member(jwk, "y")
    if len(x) != _EC_COORD_CHARS or len(y) != _EC_COORD_CHARS:
        # RFC 7518 §6.2.1.2: full-length coordinates, else one key has two thumbprints.
        raise JWKError("EC coordinates must be 32 bytes")
    point = b"\x04" + b64url_decode(x) + b64url_decode(y)
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise JWKError("EC point is not on the curve") from None


def _import_okp(jwk: Mapping[str, Any]) -> PublicKey:
    x = _b64_member(jwk, "x")
    if len(x) != _OKP_X_CHARS:
        raise JWKError("Ed25519 public key must be 32 bytes")
    try:
        return Ed25519PublicKey.from_public_bytes(b64url_decode(x))
    except ValueError:  # pragma: no cover - any 32 bytes are accepted by cryptography
        raise JWKError("invalid Ed25519 key") from None


def _import_rsa(jwk: Mapping[str, Any]) -> PublicKey:
    n_bytes, e_bytes = b64url_decode(_b64_member(jwk, "n")), b64url_decode(_b64_member(jwk, "e"))
    if n_bytes[:1] == b"\x00" or e_bytes[:1] == b"\x00":
        raise JWKError("RSA members must be minimal big-endian integers")  # RFC 7518 §6.3.1
    n, e = int.from_bytes(n_bytes, "big"), int.from_bytes(e_bytes, "big")
    if not MIN_RSA_BITS <= n.bit_length() <= MAX_RSA_BITS:
        raise JWKError(f"RSA keys are {MIN_RSA_BITS} to {MAX_RSA_BITS} bits")
    if e < 3 or e % 2 == 0 or e.bit_length() > 32:
        raise JWKError("RSA public exponent is not acceptable")
    try:
        return rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError:  # pragma: no cover - the checks above cover what cryptography refuses
        raise JWKError("invalid RSA key") from None


def parse_issuer_jwks(document: object, *, max_keys: int = MAX_ISSUER_KEYS) -> list[PublicJWK]:
    """A trusted issuer's published key set: its signing keys of a supported type (EC P-256,
    Ed25519, RSA of 2048 to 8192 bits); keys for encryption or of other types are skipped, as
    an issuer may publish them beside its signing keys. Private members, a malformed key of a
    supported type, more than ``max_keys`` keys, or no usable key at all are refused."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise JWKError('a JWK set is an object whose "keys" is an array')
    raw_keys = document["keys"]
    if len(raw_keys) > max_keys:
        raise JWKError(f"at most {max_keys} keys are accepted")
    found: list[PublicJWK] = []
    for raw in raw_keys:
        if not isinstance(raw, Mapping):
            raise JWKError("a JWK must be a JSON object")
        if PRIVATE_MEMBERS.intersection(raw):
            raise JWKError("private key material is not accepted")
        if raw.get("use", "sig") != "sig":
            continue
        if raw.get("kty") == "RSA":
            found.append(_rsa_jwk(raw))
        elif (raw.get("kty"), raw.get("crv")) in ALGS_BY_KEY_TYPE:
            found.append(parse_public_jwk(raw))
    if not found:
        raise JWKError("the key set has no usable signing key")
    kids = [key.kid for key in found if key.kid is not None]
    if len(kids) != len(set(kids)):
        raise JWKError("duplicate kid")
    return found


def _rsa_jwk(raw: Mapping[str, Any]) -> PublicJWK:
    key = _import_rsa(raw)
    kid, alg = raw.get("kid"), raw.get("alg")
    if kid is not None and (not isinstance(kid, str) or not kid or len(kid) > MAX_KID_CHARS):
        raise JWKError("kid must be a non-empty string of at most 128 characters")
    if alg is not None and alg not in ISSUER_ALGS_BY_KEY_TYPE[("RSA", "")]:
        raise JWKError("alg does not match the key type")
    members = {"kty": "RSA", "n": raw["n"], "e": raw["e"]}
    return PublicJWK(
        kty="RSA", crv="", jkt=thumbprint(raw), key=key, members=members, kid=kid, alg=alg
    )


def _check_public_type(jwk: object) -> tuple[Mapping[str, Any], str, str]:
    """A JSON object without private members, of a supported key type: (jwk, kty, crv)."""
    if not isinstance(jwk, Mapping):
        raise JWKError("a JWK must be a JSON object")
    if PRIVATE_MEMBERS.intersection(jwk):
        raise JWKError("private key material is not accepted")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if not isinstance(kty, str) or not isinstance(crv, str) or (kty, crv) not in ALGS_BY_KEY_TYPE:
        raise JWKError("only EC P-256 and OKP Ed25519 keys are supported")
    return jwk, kty, crv


def parse_public_jwk(jwk: object, *, require_kid: bool = False) -> PublicJWK:
    """Validate an untrusted public JWK (RFC 7517) and import it.

    Rejects private members (RFC 9449 §4.3 step 7), key types other than EC P-256 and OKP
    Ed25519, short coordinates and off-curve points (RFC 8725 §3.4), an ``alg`` that does not
    fit the key type (RFC 8725 §3.1), and ``use`` other than ``sig``.
    """
    checked, kty, crv = _check_public_type(jwk)
    key = _import_ec(checked) if kty == "EC" else _import_okp(checked)
    kid = checked.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid or len(kid) > MAX_KID_CHARS):
        raise JWKError("kid must be a non-empty string of at most 128 characters")
    if require_kid and kid is None:
        raise JWKError("every key needs a kid")
    alg = checked.get("alg")
    if alg is not None and (not isinstance(alg, str) or alg not in ALGS_BY_KEY_TYPE[(kty, crv)]):
        raise JWKError("alg does not match the key type")
    if checked.get("use", "sig") != "sig":
        raise JWKError("use must be sig")
    members = {"kty": kty, "crv": crv, "x": checked["x"]}
    if kty == "EC":
        members["y"] = checked["y"]
    return PublicJWK(
        kty=kty,
        crv=crv,
        jkt=thumbprint(checked),
        key=key,
        members=members,
        kid=kid,
        alg=alg,
    )


def parse_jwks(document: object, *, max_keys: int = MAX_JWKS_KEYS) -> dict[str, PublicJWK]:
    """Validate an untrusted JWK set (``{"keys": [...]}``) into a ``kid`` → key mapping.

    Every key must be public, supported, carry a unique ``kid``; the set must be non-empty and
    hold at most ``max_keys`` keys.
    """
    if not isinstance(document, Mapping) or set(document) != {"keys"}:
        raise JWKError('a JWK set must be an object with exactly one member, "keys"')
    keys = document["keys"]
    if not isinstance(keys, list) or not keys:
        raise JWKError("keys must be a non-empty array")
    if len(keys) > max_keys:
        raise JWKError(f"at most {max_keys} keys are accepted")
    result: dict[str, PublicJWK] = {}
    for raw in keys:
        key = parse_public_jwk(raw, require_kid=True)
        assert key.kid is not None  # noqa: S101 - guaranteed by require_kid
        if key.kid in result:
            raise JWKError("duplicate kid")
        result[key.kid] = key
    return result


class KeyCache:
    """Bounded LRU of imported public keys keyed by RFC 7638 thumbprint.

    Importing an EC key costs far more than hashing its members, and DPoP proofs from the same
    agent repeat the same ``jwk``; caching by thumbprint makes repeat imports nearly free
    while still rejecting private members and foreign ``alg`` values on every call.
    """

    def __init__(self, max_size: int = 4096) -> None:
        self._max = max_size
        self._keys: OrderedDict[tuple[str, str | None, str | None, str | None], PublicJWK] = (
            OrderedDict()
        )

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, jwk: object) -> PublicJWK:
        jwk, _, _ = _check_public_type(jwk)  # cheap checks on every call, before the cache
        extras = (jwk.get("alg"), jwk.get("kid"), jwk.get("use"))
        if not all(v is None or isinstance(v, str) for v in extras):
            return parse_public_jwk(jwk)  # raises with the precise reason
        cache_key = (thumbprint(jwk), *extras)
        cached = self._keys.get(cache_key)
        if cached is not None:
            self._keys.move_to_end(cache_key)
            return cached
        key = parse_public_jwk(jwk)
        self._keys[cache_key] = key
        if len(self._keys) > self._max:
            self._keys.popitem(last=False)
        return key
