"""A software WebAuthn authenticator (ES256) for driving py_webauthn in tests.

It plays both the browser (clientDataJSON, the ``toJSON()`` shapes) and the authenticator
(authenticator data, attestation object, assertion signature), with a knob for every field
a relying party checks so negative tests can break exactly one thing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "FLAG_AT",
    "FLAG_BE",
    "FLAG_BS",
    "FLAG_UP",
    "FLAG_UV",
    "AuthenticatorError",
    "SoftwareAuthenticator",
    "SoftwareCredential",
    "b64url",
    "b64url_decode",
    "cose_ec2_public_key",
]

FLAG_UP = 0x01
FLAG_UV = 0x04
FLAG_BE = 0x08
FLAG_BS = 0x10
FLAG_AT = 0x40

COSE_ALG_ES256 = -7
AAGUID_NONE = bytes(16)

Attestation = Literal["none", "packed"]


class AuthenticatorError(Exception):
    """The authenticator refused the request (no usable credential, unsupported alg...)."""


def b64url(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(value: str) -> bytes:
    """Decode base64url with or without padding; raise ValueError on junk."""
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64url: {value!r}") from exc


def cose_ec2_public_key(public_key: ec.EllipticCurvePublicKey) -> bytes:
    """COSE_Key (CBOR) of a P-256 public key for ES256."""
    numbers = public_key.public_numbers()
    return cbor2.dumps(
        {
            1: 2,  # kty: EC2
            3: COSE_ALG_ES256,  # alg: ES256
            -1: 1,  # crv: P-256
            -2: numbers.x.to_bytes(32, "big"),
            -3: numbers.y.to_bytes(32, "big"),
        }
    )


def _new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@dataclass
class SoftwareCredential:
    """One ES256 credential held by the authenticator (mutable: the counter moves)."""

    rp_id: str
    user_handle: bytes
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    private_key: ec.EllipticCurvePrivateKey = field(default_factory=_new_private_key)
    sign_count: int = 0
    backup_eligible: bool = False
    backup_state: bool = False

    @property
    def public_key(self) -> bytes:
        """The credential public key as COSE (what the RP stores)."""
        return cose_ec2_public_key(self.private_key.public_key())

    def sign(self, data: bytes) -> bytes:
        """DER ECDSA-SHA256 signature over ``data``."""
        return self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))


class SoftwareAuthenticator:
    """A platform authenticator holding P-256 credentials, with a browser glued on top."""

    def __init__(self, *, initial_sign_count: int = 0) -> None:
        self.initial_sign_count = initial_sign_count
        self._credentials: list[SoftwareCredential] = []

    # -- credential store -------------------------------------------------------------------

    @property
    def credentials(self) -> tuple[SoftwareCredential, ...]:
        """Held credentials, oldest first."""
        return tuple(self._credentials)

    def add_credential(
        self,
        *,
        rp_id: str,
        user_handle: bytes,
        credential_id: bytes | None = None,
        private_key: ec.EllipticCurvePrivateKey | None = None,
        sign_count: int | None = None,
        backup_eligible: bool = False,
        backup_state: bool = False,
    ) -> SoftwareCredential:
        """Store a credential directly, without a registration ceremony."""
        credential = SoftwareCredential(
            rp_id=rp_id,
            user_handle=user_handle,
            credential_id=credential_id if credential_id is not None else secrets.token_bytes(32),
            private_key=private_key if private_key is not None else _new_private_key(),
            sign_count=self.initial_sign_count if sign_count is None else sign_count,
            backup_eligible=backup_eligible,
            backup_state=backup_state,
        )
        if self._find(credential.credential_id) is not None:
            raise AuthenticatorError("credential id already held")
        self._credentials.append(credential)
        return credential

    def credential(self, credential_id: bytes) -> SoftwareCredential:
        """The held credential with this id (KeyError if absent)."""
        found = self._find(credential_id)
        if found is None:
            raise KeyError(b64url(credential_id))
        return found

    def credential_public_key(self, credential_id: bytes) -> bytes:
        """COSE public key of a held credential."""
        return self.credential(credential_id).public_key

    def _find(self, credential_id: bytes) -> SoftwareCredential | None:
        return next((c for c in self._credentials if c.credential_id == credential_id), None)

    # -- ceremonies -------------------------------------------------------------------------

    def create(
        self,
        options: Mapping[str, Any],
        *,
        origin: str,
        user_verified: bool = True,
        user_present: bool = True,
        attestation: Attestation = "none",
        backup_eligible: bool = False,
        backup_state: bool = False,
        rp_id: str | None = None,
        cross_origin: bool | None = False,
        client_data_type: str = "webauthn.create",
        challenge: bytes | None = None,
        credential_id: bytes | None = None,
    ) -> dict[str, Any]:
        """``navigator.credentials.create()``: new credential, ``toJSON()``-shaped result.

        ``options`` is the parsed JSON of py_webauthn's ``options_to_json()``. Every keyword
        overrides what an honest client would send (for negative tests).
        """
        if attestation not in ("none", "packed"):
            raise ValueError(f"unsupported attestation {attestation!r}")
        params = options.get("pubKeyCredParams")
        if params and not any(p.get("alg") == COSE_ALG_ES256 for p in params):
            raise AuthenticatorError("relying party does not accept ES256")

        effective_rp_id = rp_id or options.get("rp", {}).get("id") or _host(origin)
        credential = self.add_credential(
            rp_id=effective_rp_id,
            user_handle=b64url_decode(options["user"]["id"]),
            backup_eligible=backup_eligible,
            backup_state=backup_state,
            credential_id=credential_id,
        )
        client_data = _client_data_json(
            client_data_type,
            challenge if challenge is not None else b64url_decode(options["challenge"]),
            origin,
            cross_origin,
        )
        attested = (
            AAGUID_NONE
            + struct.pack(">H", len(credential.credential_id))
            + credential.credential_id
            + credential.public_key
        )
        auth_data = (
            _authenticator_data(
                credential,
                user_present=user_present,
                user_verified=user_verified,
                extra_flags=FLAG_AT,
            )
            + attested
        )
        att_stmt: dict[str, Any] = {}
        if attestation == "packed":
            signature = credential.sign(auth_data + hashlib.sha256(client_data).digest())
            att_stmt = {"alg": COSE_ALG_ES256, "sig": signature}
        attestation_object = cbor2.dumps(
            {"fmt": attestation, "attStmt": att_stmt, "authData": auth_data}
        )
        return {
            "id": b64url(credential.credential_id),
            "rawId": b64url(credential.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation_object),
                "transports": ["internal"],
            },
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def get(
        self,
        options: Mapping[str, Any],
        *,
        origin: str,
        credential_id: bytes | None = None,
        user_verified: bool = True,
        user_present: bool = True,
        rp_id: str | None = None,
        sign_count: int | None = None,
        cross_origin: bool | None = False,
        client_data_type: str = "webauthn.get",
        challenge: bytes | None = None,
        include_user_handle: bool = True,
    ) -> dict[str, Any]:
        """``navigator.credentials.get()``: assertion, ``toJSON()``-shaped result.

        The credential is ``credential_id``, else the first held one in ``allowCredentials``,
        else (discoverable login) the first one for the options' rp id. ``rp_id`` only changes
        the rpIdHash signed. The counter goes up by one, or is set to ``sign_count`` when given
        (a cloned or rolled-back authenticator).
        """
        options_rp_id: str | None = options.get("rpId")
        credential = self._select(options, credential_id, options_rp_id or rp_id or _host(origin))
        requested_rp_id = rp_id or options_rp_id
        credential.sign_count = credential.sign_count + 1 if sign_count is None else sign_count

        client_data = _client_data_json(
            client_data_type,
            challenge if challenge is not None else b64url_decode(options["challenge"]),
            origin,
            cross_origin,
        )
        # Hash the rp id asked for, so a wrong rp_id breaks only the rpIdHash check.
        auth_data = _authenticator_data(
            credential,
            user_present=user_present,
            user_verified=user_verified,
            rp_id=requested_rp_id,
        )
        signature = credential.sign(auth_data + hashlib.sha256(client_data).digest())
        response: dict[str, Any] = {
            "clientDataJSON": b64url(client_data),
            "authenticatorData": b64url(auth_data),
            "signature": b64url(signature),
        }
        if include_user_handle:
            response["userHandle"] = b64url(credential.user_handle)
        return {
            "id": b64url(credential.credential_id),
            "rawId": b64url(credential.credential_id),
            "type": "public-key",
            "response": response,
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
        }

    def _select(
        self, options: Mapping[str, Any], credential_id: bytes | None, rp_id: str
    ) -> SoftwareCredential:
        if credential_id is not None:
            return self.credential(credential_id)
        allowed = [b64url_decode(d["id"]) for d in options.get("allowCredentials") or []]
        if allowed:
            for wanted in allowed:
                found = self._find(wanted)
                if found is not None:
                    return found
            raise AuthenticatorError("none of allowCredentials is held by this authenticator")
        for held in self._credentials:
            if held.rp_id == rp_id:
                return held
        raise AuthenticatorError(f"no discoverable credential for rp id {rp_id!r}")


def _host(origin: str) -> str:
    host = urlsplit(origin).hostname
    if not host:
        raise ValueError(f"origin has no host: {origin!r}")
    return host


def _client_data_json(
    client_data_type: str, challenge: bytes, origin: str, cross_origin: bool | None
) -> bytes:
    """Compact clientDataJSON in the member order browsers use."""
    data: dict[str, Any] = {
        "type": client_data_type,
        "challenge": b64url(challenge),
        "origin": origin,
    }
    if cross_origin is not None:
        data["crossOrigin"] = cross_origin
    return json.dumps(data, separators=(",", ":")).encode("utf-8")


def _authenticator_data(
    credential: SoftwareCredential,
    *,
    user_present: bool,
    user_verified: bool,
    extra_flags: int = 0,
    rp_id: str | None = None,
) -> bytes:
    """rpIdHash || flags || signCount, without attested credential data."""
    flags = extra_flags
    if user_present:
        flags |= FLAG_UP
    if user_verified:
        flags |= FLAG_UV
    if credential.backup_eligible:
        flags |= FLAG_BE
    if credential.backup_state:
        flags |= FLAG_BS
    rp_id_hash = hashlib.sha256((rp_id or credential.rp_id).encode("utf-8")).digest()
    return rp_id_hash + bytes([flags]) + struct.pack(">I", credential.sign_count)
