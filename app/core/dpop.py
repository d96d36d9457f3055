"""DPoP proof validation (RFC 9449 §4.3) and stateless server nonces (§8, §9).

:func:`verify_proof` is the one place a proof is checked, at the token endpoint and at
resource servers alike. It never records the ``jti``: it returns it (with a replay key) so
the caller can remember it atomically *after* every check passed, which keeps an attacker
from burning a legitimate ``jti`` with a broken proof.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from app.core.errors import InvalidDPoPProof, InvalidToken, UseDPoPNonce
from app.core.jwk import JWKError, KeyCache, PublicJWK, b64url_decode, b64url_encode
from app.core.jws import JWSError, decode_jws, token_hash

DPOP_TYP = "dpop+jwt"
DPOP_ALGS = ("ES256", "EdDSA", "Ed25519")
MAX_JTI_CHARS = 256
DEFAULT_MAX_AGE = 300
DEFAULT_FUTURE_SKEW = 60

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
_HEX = frozenset(string.hexdigits)
_shared_key_cache = KeyCache()


def _normalize_percent(path: str) -> str:
    """RFC 3986 §6.2.2.1-2: upper-case escapes, decode escaped unreserved characters."""
    out: list[str] = []
    i = 0
    while i < len(path):
        char = path[i]
        if char == "%" and i + 2 < len(path) and set(path[i + 1 : i + 3]) <= _HEX:
            decoded = chr(int(path[i + 1 : i + 3], 16))
            out.append(decoded if decoded in _UNRESERVED else "%" + path[i + 1 : i + 3].upper())
            i += 3
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4."""
    output: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if len(output) > 1:
                output.pop()
        elif segment != ".":
            output.append(segment)
    result = "/".join(output)
    if path.endswith(("/.", "/..")):
        result += "/"
    return result if result.startswith("/") else "/" + result


@lru_cache(maxsize=1024)  # endpoints repeat; bounded so distinct junk values cannot grow it
def normalize_htu(url: str) -> str:
    """Normalise an HTTP URI for ``htu`` comparison (RFC 9449 §4.3 step 9, RFC 3986 §6.2).

    Scheme and host are lower-cased, the default port dropped, unreserved escapes decoded,
    dot segments removed; query and fragment are discarded on both sides.
    Raises ``ValueError`` for anything that is not an absolute http(s) URI.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("htu must be an absolute http(s) URI")
    if parts.username is not None or parts.password is not None:
        raise ValueError("htu must not carry user information")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default_port = 443 if scheme == "https" else 80
    netloc = host if port in (None, default_port) else f"{host}:{port}"
    return f"{scheme}://{netloc}{_remove_dot_segments(_normalize_percent(parts.path or '/'))}"


class NonceSource:
    """Stateless DPoP nonces: ``step ‖ random ‖ HMAC(secret, realm ‖ step ‖ random)``.

    Every replica holding the same secret can check a nonce without storage. A nonce is
    accepted during its own time step and the next one. ``realm`` separates the registry's
    nonces from the verifier's (RFC 9449 §9: a nonce from one server is not valid at another).
    """

    _STEP_BYTES = 8
    _RANDOM_BYTES = 12
    _MAC_BYTES = 16

    def __init__(self, secret: bytes, *, realm: str, step_seconds: int = 300) -> None:
        if len(secret) < 16:
            raise ValueError("the nonce secret needs at least 16 bytes")
        self._secret = secret
        self._realm = realm.encode("utf-8") + b"\x00"
        self.step_seconds = step_seconds

    def _mac(self, step_and_random: bytes) -> bytes:
        digest = hmac.new(self._secret, self._realm + step_and_random, hashlib.sha256).digest()
        return digest[: self._MAC_BYTES]

    def issue(self, now: int) -> str:
        step = (now // self.step_seconds).to_bytes(self._STEP_BYTES, "big")
        body = step + secrets.token_bytes(self._RANDOM_BYTES)
        return b64url_encode(body + self._mac(body))

    def is_valid(self, nonce: object, now: int) -> bool:
        if not isinstance(nonce, str) or len(nonce) > 64:
            return False
        try:
            raw = b64url_decode(nonce)
        except JWKError:
            return False
        if len(raw) != self._STEP_BYTES + self._RANDOM_BYTES + self._MAC_BYTES:
            return False
        body, mac = raw[: -self._MAC_BYTES], raw[-self._MAC_BYTES :]
        step = int.from_bytes(body[: self._STEP_BYTES], "big")
        current = now // self.step_seconds
        return step in (current, current - 1) and hmac.compare_digest(mac, self._mac(body))


@dataclass(frozen=True, slots=True)
class DPoPProof:
    """What a verified proof tells the caller."""

    jkt: str
    jti: str
    iat: int
    htu: str

    @property
    def replay_key(self) -> str:
        """Key under which to remember the ``jti`` (scoped to key and target, RFC 9449 §11.1)."""
        material = f"{self.jkt}\x00{self.htu}\x00{self.jti}".encode()
        return hashlib.sha256(material).hexdigest()


def replay_entry(
    proof: DPoPProof, max_age: int, future_skew: int = DEFAULT_FUTURE_SKEW
) -> tuple[str, int]:
    """Where and for how long a proof's use is remembered (RFC 9449 §11.1): for as long as
    :func:`verify_proof` with the same window could accept it again. The key is shared by the
    token endpoint and every resource-server check, so a proof is used once everywhere."""
    return f"dpop:{proof.replay_key}", max_age + future_skew + 1


def _proof_claims(claims: Mapping[str, Any]) -> tuple[str, str, str, int]:
    jti, htm, htu, iat = (claims.get(k) for k in ("jti", "htm", "htu", "iat"))
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_CHARS:
        raise InvalidDPoPProof(detail="jti missing, empty or too long")
    if not isinstance(htm, str) or not isinstance(htu, str):
        raise InvalidDPoPProof(detail="htm or htu missing or not a string")
    if not isinstance(iat, int) or isinstance(iat, bool):
        raise InvalidDPoPProof(detail="iat missing or not an integer")
    return jti, htm, htu, iat


def _check_nonce(
    claims: Mapping[str, Any], nonces: NonceSource | None, require_nonce: bool, now: int
) -> None:
    if nonces is None:
        return
    nonce = claims.get("nonce")
    if nonce is None and not require_nonce:
        return
    if nonce is None:
        raise UseDPoPNonce(nonces.issue(now), "Authorization server requires nonce in DPoP proof")
    if not nonces.is_valid(nonce, now):
        raise UseDPoPNonce(nonces.issue(now), "The DPoP nonce is invalid or stale")


def verify_proof(
    header_values: Sequence[str],
    *,
    method: str,
    url: str,
    now: int,
    access_token: str | None = None,
    bound_jkt: str | None = None,
    nonces: NonceSource | None = None,
    require_nonce: bool = False,
    max_age: int = DEFAULT_MAX_AGE,
    future_skew: int = DEFAULT_FUTURE_SKEW,
    key_cache: KeyCache = _shared_key_cache,
) -> DPoPProof:
    """Verify the ``DPoP`` request header(s) for a request to ``method`` ``url``.

    RFC 9449 §4.3: exactly one header (1); one compact JWS (2); required claims (3);
    ``typ`` ``dpop+jwt`` (4); asymmetric allow-listed ``alg`` (5); signature by the embedded
    public ``jwk`` (6, 7); ``htm`` equals ``method`` case-sensitively (8); ``htu`` equals
    ``url`` after normalisation (9); ``nonce`` when required (10); ``iat`` within
    ``[now - max_age, now + future_skew]`` (11); ``ath`` and key = ``bound_jkt`` when an
    access token is presented (12). Failures raise :class:`InvalidDPoPProof`,
    :class:`UseDPoPNonce`, or :class:`InvalidToken` for a key-binding mismatch (§7.1).
    """
    if len(header_values) != 1:
        raise InvalidDPoPProof(detail=f"expected one DPoP header, got {len(header_values)}")

    resolved: list[PublicJWK] = []

    def resolve(header: Mapping[str, Any]) -> PublicJWK:
        resolved.append(key_cache.get(header.get("jwk")))  # an embedded jwk, never jku/x5u
        return resolved[-1]

    try:
        _, claims = decode_jws(
            header_values[0], typs=(DPOP_TYP,), algs=DPOP_ALGS, resolve_key=resolve
        )
    except JWSError as exc:
        raise InvalidDPoPProof(detail=f"proof rejected: {exc}") from None
    jkt = resolved[-1].jkt
    jti, htm, htu, iat = _proof_claims(claims)
    if htm != method:
        raise InvalidDPoPProof(detail="htm does not match the request method")
    try:
        target = normalize_htu(url)
        htu_matches = normalize_htu(htu) == target
    except ValueError:
        target, htu_matches = url, False
    if not htu_matches:
        raise InvalidDPoPProof(detail="htu does not match the request URI")
    _check_nonce(claims, nonces, require_nonce, now)
    if iat < now - max_age or iat > now + future_skew:
        raise InvalidDPoPProof(detail="iat outside the acceptance window")
    if access_token is not None:
        ath = claims.get("ath")
        if not isinstance(ath, str) or not hmac.compare_digest(ath, token_hash(access_token)):
            raise InvalidDPoPProof(detail="ath missing or does not match the access token")
    if bound_jkt is not None and not hmac.compare_digest(jkt, bound_jkt):
        raise InvalidToken("Invalid DPoP key binding", detail="proof key is not cnf.jkt")
    return DPoPProof(jkt=jkt, jti=jti, iat=iat, htu=target)
