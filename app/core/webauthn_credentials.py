"""WebAuthn credentials as the browser sends them (``PublicKeyCredential.toJSON()``), parsed
once into typed values.

Every ceremony (registration, login, approval) first reads the challenge from the
credential's client data to find and use up the server's challenge, then verifies the
signature against it; both steps work on the same parsed value. A credential inside a frame
(``crossOrigin: true``, or a ``topOrigin``) is refused here (WebAuthn L3 §7.2: the approval
pages never run ceremonies in frames).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from webauthn.helpers import (
    base64url_to_bytes,
    parse_authentication_credential_json,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import AuthenticationCredential, RegistrationCredential

MAX_TRANSPORTS = 8
T = TypeVar("T")


class CredentialError(ValueError):
    """The credential is malformed or was made in a context the server refuses."""


def _challenge(credential: Mapping[str, object]) -> bytes:
    response = credential.get("response")
    if not isinstance(response, Mapping):
        raise CredentialError("The credential is malformed.")
    try:
        raw = base64url_to_bytes(str(response["clientDataJSON"]))
        client_data = parse_client_data_json(raw)
        document = json.loads(raw)
    except (KeyError, TypeError, ValueError, WebAuthnException):
        raise CredentialError("The credential is malformed.") from None
    if not isinstance(document, dict):
        raise CredentialError("The credential is malformed.")
    if document.get("crossOrigin") is True or "topOrigin" in document:
        raise CredentialError("Cross-origin WebAuthn ceremonies are not accepted.")
    return client_data.challenge


def _mapping(credential: object) -> Mapping[str, object]:
    if not isinstance(credential, Mapping):
        raise CredentialError("The credential is malformed.")
    return credential


@dataclass(frozen=True, slots=True)
class Assertion:
    """A login or approval assertion: the parsed credential and the challenge it answers."""

    credential: AuthenticationCredential
    challenge: bytes

    @property
    def credential_id(self) -> bytes:
        return self.credential.raw_id


@dataclass(frozen=True, slots=True)
class Attestation:
    """A passkey registration: the parsed credential, its challenge and transports."""

    credential: RegistrationCredential
    challenge: bytes
    transports: tuple[str, ...]


def _parsed(document: Mapping[str, object], parse: Callable[[dict[str, Any]], T]) -> T:
    try:
        return parse(dict(document))
    except (WebAuthnException, KeyError, TypeError, ValueError):
        raise CredentialError("The credential is malformed.") from None


def parse_assertion(credential: object) -> Assertion:
    """An assertion from its JSON form; raises :class:`CredentialError`."""
    document = _mapping(credential)
    challenge = _challenge(document)
    return Assertion(_parsed(document, parse_authentication_credential_json), challenge)


def parse_attestation(credential: object) -> Attestation:
    """A registration credential from its JSON form; raises :class:`CredentialError`."""
    document = _mapping(credential)
    challenge = _challenge(document)
    parsed = _parsed(document, parse_registration_credential_json)
    response = document.get("response")
    listed = response.get("transports", []) if isinstance(response, Mapping) else []
    transports = (
        tuple(t for t in listed if isinstance(t, str))[:MAX_TRANSPORTS]
        if isinstance(listed, list)
        else ()
    )
    return Attestation(parsed, challenge, transports)
