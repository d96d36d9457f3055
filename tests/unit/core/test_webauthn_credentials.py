"""A credential parsed once: the challenge it answers, the refusal of frames, malformed
shapes."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from app.core.jwk import b64url_encode
from app.core.webauthn_credentials import CredentialError, parse_assertion, parse_attestation
from tests.support.webauthn import SoftwareAuthenticator

ORIGIN = "http://localhost"


def _registration(authenticator: SoftwareAuthenticator, challenge: bytes) -> dict[str, Any]:
    options = {
        "rp": {"id": "localhost", "name": "AgentAuth"},
        "user": {"id": b64url_encode(b"u" * 16), "name": "a", "displayName": "A"},
        "challenge": b64url_encode(challenge),
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
    }
    return authenticator.create(options, origin=ORIGIN)


def test_an_attestation_and_an_assertion_name_their_challenges() -> None:
    authenticator = SoftwareAuthenticator()
    first, second = secrets.token_bytes(32), secrets.token_bytes(32)
    created = parse_attestation(_registration(authenticator, first))
    assert created.challenge == first
    assertion = authenticator.get(
        {"rpId": "localhost", "challenge": b64url_encode(second)}, origin=ORIGIN
    )
    parsed = parse_assertion(assertion)
    assert parsed.challenge == second
    assert parsed.credential_id == created.credential.raw_id


def test_a_ceremony_in_a_frame_is_refused() -> None:
    authenticator = SoftwareAuthenticator()
    _registration(authenticator, secrets.token_bytes(32))
    options = {"rpId": "localhost", "challenge": b64url_encode(secrets.token_bytes(32))}
    framed = authenticator.get(options, origin=ORIGIN, cross_origin=True)
    with pytest.raises(CredentialError, match="Cross-origin"):
        parse_assertion(framed)


@pytest.mark.parametrize(
    "credential",
    [None, "x", [], {}, {"response": "x"}, {"response": {"clientDataJSON": "!!"}},
     {"id": "AA", "rawId": "AA", "type": "public-key", "response": {"clientDataJSON": "e30"}}],
)  # fmt: skip
def test_a_malformed_credential_is_refused(credential: object) -> None:
    with pytest.raises(CredentialError):
        parse_assertion(credential)
    with pytest.raises(CredentialError):
        parse_attestation(credential)


def test_transports_are_strings_and_bounded() -> None:
    authenticator = SoftwareAuthenticator()
    created = _registration(authenticator, secrets.token_bytes(32))
    created["response"]["transports"] = ["internal", 5, *["usb"] * 20]
    assert parse_attestation(created).transports == ("internal", *["usb"] * 7)
