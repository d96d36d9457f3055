"""The software authenticator must satisfy py_webauthn, and must fail it when told to."""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

import cbor2
import pytest
import webauthn
from webauthn.authentication.verify_authentication_response import VerifiedAuthentication
from webauthn.helpers import decode_credential_public_key
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.exceptions import (
    InvalidAuthenticationResponse,
    InvalidBackupFlags,
    InvalidRegistrationResponse,
    WebAuthnException,
)
from webauthn.helpers.structs import (
    AttestationFormat,
    CredentialDeviceType,
    PublicKeyCredentialDescriptor,
)
from webauthn.registration.verify_registration_response import VerifiedRegistration

from tests.support.webauthn import (
    AuthenticatorError,
    SoftwareAuthenticator,
    b64url,
    b64url_decode,
)

RP_ID = "as.example.com"
ORIGIN = "https://as.example.com"
USER_ID = b"user-0001"


def registration_options() -> tuple[dict[str, Any], bytes]:
    options = webauthn.generate_registration_options(
        rp_id=RP_ID, rp_name="AgentAuth", user_name="alice", user_id=USER_ID
    )
    return json.loads(webauthn.options_to_json(options)), options.challenge


def authentication_options(*credential_ids: bytes) -> tuple[dict[str, Any], bytes]:
    options = webauthn.generate_authentication_options(
        rp_id=RP_ID,
        allow_credentials=[PublicKeyCredentialDescriptor(id=cid) for cid in credential_ids],
    )
    return json.loads(webauthn.options_to_json(options)), options.challenge


def register(authenticator: SoftwareAuthenticator, **overrides: Any) -> VerifiedRegistration:
    options, challenge = registration_options()
    credential = authenticator.create(options, origin=ORIGIN, **overrides)
    return webauthn.verify_registration_response(
        credential=credential,
        expected_challenge=challenge,
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        require_user_verification=True,
    )


def authenticate(
    authenticator: SoftwareAuthenticator,
    public_key: bytes,
    current_sign_count: int,
    *,
    allow: tuple[bytes, ...] = (),
    **overrides: Any,
) -> VerifiedAuthentication:
    options, challenge = authentication_options(*allow)
    assertion = authenticator.get(options, **{"origin": ORIGIN, **overrides})
    return webauthn.verify_authentication_response(
        credential=assertion,
        expected_challenge=challenge,
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        credential_public_key=public_key,
        credential_current_sign_count=current_sign_count,
        require_user_verification=True,
    )


@pytest.fixture
def authenticator() -> SoftwareAuthenticator:
    return SoftwareAuthenticator()


# -- registration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attestation", "fmt"),
    [("none", AttestationFormat.NONE), ("packed", AttestationFormat.PACKED)],
)
def test_registration_verifies(
    authenticator: SoftwareAuthenticator, attestation: str, fmt: AttestationFormat
) -> None:
    verified = register(authenticator, attestation=attestation)

    (held,) = authenticator.credentials
    assert verified.fmt == fmt
    assert verified.credential_id == held.credential_id
    assert len(verified.credential_id) == 32
    assert verified.credential_public_key == authenticator.credential_public_key(held.credential_id)
    assert verified.sign_count == 0
    assert verified.user_verified is True
    assert verified.aaguid == "00000000-0000-0000-0000-000000000000"
    assert verified.credential_device_type == CredentialDeviceType.SINGLE_DEVICE
    assert verified.credential_backed_up is False
    assert held.user_handle == USER_ID
    assert held.rp_id == RP_ID


def test_public_key_round_trips_to_the_private_key(authenticator: SoftwareAuthenticator) -> None:
    verified = register(authenticator)

    decoded = decode_credential_public_key(verified.credential_public_key)
    numbers = authenticator.credentials[0].private_key.public_key().public_numbers()
    assert decoded.alg == COSEAlgorithmIdentifier.ECDSA_SHA_256
    assert decoded.x == numbers.x.to_bytes(32, "big")  # type: ignore[union-attr]
    assert decoded.y == numbers.y.to_bytes(32, "big")  # type: ignore[union-attr]
    assert cbor2.loads(verified.credential_public_key) == {
        1: 2,
        3: -7,
        -1: 1,
        -2: numbers.x.to_bytes(32, "big"),
        -3: numbers.y.to_bytes(32, "big"),
    }


def test_attestation_object_layout(authenticator: SoftwareAuthenticator) -> None:
    options, challenge = registration_options()
    response = authenticator.create(options, origin=ORIGIN, attestation="packed")

    assert set(response) == {
        "id",
        "rawId",
        "type",
        "response",
        "clientExtensionResults",
        "authenticatorAttachment",
    }
    assert response["type"] == "public-key"
    assert response["authenticatorAttachment"] == "platform"
    assert response["response"]["transports"] == ["internal"]
    assert "=" not in response["response"]["attestationObject"]
    assert json.loads(b64url_decode(response["response"]["clientDataJSON"])) == {
        "type": "webauthn.create",
        "challenge": b64url(challenge),
        "origin": ORIGIN,
        "crossOrigin": False,
    }

    held = authenticator.credentials[0]
    attestation_object = cbor2.loads(b64url_decode(response["response"]["attestationObject"]))
    auth_data: bytes = attestation_object["authData"]
    assert attestation_object["fmt"] == "packed"
    assert attestation_object["attStmt"]["alg"] == -7
    assert "x5c" not in attestation_object["attStmt"]
    assert auth_data[:32] == hashlib.sha256(RP_ID.encode()).digest()
    assert auth_data[32] == 0x40 | 0x04 | 0x01
    assert auth_data[33:37] == b"\x00\x00\x00\x00"
    assert auth_data[37:53] == bytes(16)
    assert struct.unpack(">H", auth_data[53:55]) == (32,)
    assert auth_data[55:87] == held.credential_id
    assert auth_data[87:] == held.public_key
    assert response["rawId"] == response["id"] == b64url(held.credential_id)


def test_backup_flags_make_a_multi_device_credential(
    authenticator: SoftwareAuthenticator,
) -> None:
    verified = register(authenticator, backup_eligible=True, backup_state=True)

    assert verified.credential_device_type == CredentialDeviceType.MULTI_DEVICE
    assert verified.credential_backed_up is True


def test_client_data_cross_origin_knob(authenticator: SoftwareAuthenticator) -> None:
    options, _ = registration_options()

    omitted = authenticator.create(options, origin=ORIGIN, cross_origin=None)
    crossed = authenticator.create(options, origin=ORIGIN, cross_origin=True)

    raw = b64url_decode(omitted["response"]["clientDataJSON"])
    assert raw == (
        b'{"type":"webauthn.create","challenge":"'
        + options["challenge"].encode()
        + b'","origin":"https://as.example.com"}'
    )
    assert json.loads(b64url_decode(crossed["response"]["clientDataJSON"]))["crossOrigin"]


def test_es256_must_be_offered(authenticator: SoftwareAuthenticator) -> None:
    options, _ = registration_options()
    options["pubKeyCredParams"] = [{"type": "public-key", "alg": -257}]

    with pytest.raises(AuthenticatorError, match="ES256"):
        authenticator.create(options, origin=ORIGIN)


# -- authentication -------------------------------------------------------------------------


def test_authentication_verifies_and_counts_up(authenticator: SoftwareAuthenticator) -> None:
    registered = register(authenticator)
    cid, key = registered.credential_id, registered.credential_public_key

    first = authenticate(authenticator, key, registered.sign_count, allow=(cid,))
    second = authenticate(authenticator, key, first.new_sign_count, allow=(cid,))

    assert first.credential_id == cid
    assert first.new_sign_count == 1
    assert second.new_sign_count == 2
    assert second.user_verified is True
    assert authenticator.credential(cid).sign_count == 2


def test_discoverable_login_returns_user_handle(authenticator: SoftwareAuthenticator) -> None:
    authenticator.add_credential(rp_id="other.example.com", user_handle=b"someone-else")
    registered = register(authenticator)
    options, challenge = authentication_options()
    assert options["allowCredentials"] == []

    assertion = authenticator.get(options, origin=ORIGIN)

    assert b64url_decode(assertion["rawId"]) == registered.credential_id
    assert b64url_decode(assertion["response"]["userHandle"]) == USER_ID
    assert json.loads(b64url_decode(assertion["response"]["clientDataJSON"])) == {
        "type": "webauthn.get",
        "challenge": b64url(challenge),
        "origin": ORIGIN,
        "crossOrigin": False,
    }
    verified = webauthn.verify_authentication_response(
        credential=assertion,
        expected_challenge=challenge,
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        credential_public_key=registered.credential_public_key,
        credential_current_sign_count=0,
        require_user_verification=True,
    )
    assert verified.new_sign_count == 1


def test_user_handle_can_be_left_out(authenticator: SoftwareAuthenticator) -> None:
    register(authenticator)
    options, _ = authentication_options()

    assertion = authenticator.get(options, origin=ORIGIN, include_user_handle=False)

    assert "userHandle" not in assertion["response"]
    assert set(assertion["response"]) == {"clientDataJSON", "authenticatorData", "signature"}


def test_credential_choice(authenticator: SoftwareAuthenticator) -> None:
    first = authenticator.add_credential(rp_id=RP_ID, user_handle=b"u1")
    second = authenticator.add_credential(rp_id=RP_ID, user_handle=b"u2", sign_count=41)
    foreign = b"\x00" * 32

    allow_second, _ = authentication_options(foreign, second.credential_id)
    discoverable, _ = authentication_options()

    chosen = authenticator.get(allow_second, origin=ORIGIN)
    assert b64url_decode(chosen["rawId"]) == second.credential_id
    assert authenticator.get(discoverable, origin=ORIGIN)["id"] == b64url(first.credential_id)
    explicit = authenticator.get(discoverable, origin=ORIGIN, credential_id=second.credential_id)
    assert explicit["id"] == b64url(second.credential_id)
    assert second.sign_count == 43
    assert first.sign_count == 1


def test_no_usable_credential_is_an_error(authenticator: SoftwareAuthenticator) -> None:
    authenticator.add_credential(rp_id="other.example.com", user_handle=b"u1")

    with pytest.raises(AuthenticatorError, match="allowCredentials"):
        authenticator.get(authentication_options(b"\x01" * 32)[0], origin=ORIGIN)
    with pytest.raises(AuthenticatorError, match="discoverable"):
        authenticator.get(authentication_options()[0], origin=ORIGIN)
    with pytest.raises(KeyError):
        authenticator.get(authentication_options()[0], origin=ORIGIN, credential_id=b"nope")


def test_initial_sign_count_is_configurable() -> None:
    authenticator = SoftwareAuthenticator(initial_sign_count=7)

    registered = register(authenticator)
    verified = authenticate(authenticator, registered.credential_public_key, 7)

    assert registered.sign_count == 7
    assert verified.new_sign_count == 8


# -- rejections -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"origin": "https://evil.example.com"}, "origin", id="wrong-origin"),
        pytest.param({"rp_id": "evil.example.com"}, "RP ID", id="wrong-rp-id"),
        pytest.param({"challenge": b"another challenge"}, "challenge", id="other-challenge"),
        pytest.param({"user_verified": False}, "verification", id="uv-missing"),
        pytest.param({"user_present": False}, "presence", id="up-missing"),
        pytest.param({"client_data_type": "webauthn.get"}, "client data type", id="wrong-type"),
        pytest.param({"backup_state": True}, "backed up", id="bs-without-be"),
    ],
)
@pytest.mark.parametrize("attestation", ["none", "packed"])
def test_registration_rejected(
    authenticator: SoftwareAuthenticator,
    overrides: dict[str, Any],
    message: str,
    attestation: str,
) -> None:
    options, challenge = registration_options()
    create_kwargs: dict[str, Any] = {"origin": ORIGIN, "attestation": attestation}
    credential = authenticator.create(options, **{**create_kwargs, **overrides})

    with pytest.raises(WebAuthnException, match=message) as caught:
        webauthn.verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=RP_ID,
            expected_origin=ORIGIN,
            require_user_verification=True,
        )
    assert isinstance(caught.value, InvalidRegistrationResponse | InvalidBackupFlags)


def test_registration_rejects_tampered_packed_signature(
    authenticator: SoftwareAuthenticator,
) -> None:
    options, challenge = registration_options()
    credential = authenticator.create(options, origin=ORIGIN, attestation="packed")
    attestation_object = cbor2.loads(b64url_decode(credential["response"]["attestationObject"]))
    sig = bytearray(attestation_object["attStmt"]["sig"])
    sig[-1] ^= 0x01
    attestation_object["attStmt"]["sig"] = bytes(sig)
    credential["response"]["attestationObject"] = b64url(cbor2.dumps(attestation_object))

    with pytest.raises(InvalidRegistrationResponse, match="signature"):
        webauthn.verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=RP_ID,
            expected_origin=ORIGIN,
            require_user_verification=True,
        )


@pytest.fixture
def registered(
    authenticator: SoftwareAuthenticator,
) -> VerifiedRegistration:
    return register(authenticator)


def test_authentication_baseline_for_rejections(
    authenticator: SoftwareAuthenticator,
    registered: VerifiedRegistration,
) -> None:
    """The rejection cases below differ from this passing call by exactly one knob."""
    verified = authenticate(authenticator, registered.credential_public_key, 0)

    assert verified.new_sign_count == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"origin": "https://evil.example.com"}, "origin", id="wrong-origin"),
        pytest.param({"rp_id": "evil.example.com"}, "RP ID", id="wrong-rp-id"),
        pytest.param({"challenge": b"another challenge"}, "challenge", id="other-challenge"),
        pytest.param({"user_verified": False}, "verification", id="uv-missing"),
        pytest.param({"user_present": False}, "not present", id="up-missing"),
        pytest.param({"client_data_type": "webauthn.create"}, "client data type", id="wrong-type"),
    ],
)
def test_authentication_rejected(
    authenticator: SoftwareAuthenticator,
    registered: VerifiedRegistration,
    overrides: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(InvalidAuthenticationResponse, match=message):
        authenticate(authenticator, registered.credential_public_key, 0, **overrides)


def test_sign_count_regression_rejected(
    authenticator: SoftwareAuthenticator,
    registered: VerifiedRegistration,
) -> None:
    key = registered.credential_public_key

    with pytest.raises(InvalidAuthenticationResponse, match="sign count of 5"):
        authenticate(authenticator, key, 10, sign_count=5)
    with pytest.raises(InvalidAuthenticationResponse, match="sign count of 10"):
        authenticate(authenticator, key, 10, sign_count=10)
    assert authenticate(authenticator, key, 10).new_sign_count == 11


def test_tampered_assertion_signature_rejected(
    authenticator: SoftwareAuthenticator,
    registered: VerifiedRegistration,
) -> None:
    options, challenge = authentication_options(registered.credential_id)
    assertion = authenticator.get(options, origin=ORIGIN)
    signature = bytearray(b64url_decode(assertion["response"]["signature"]))
    signature[-1] ^= 0x01
    assertion["response"]["signature"] = b64url(bytes(signature))

    with pytest.raises(InvalidAuthenticationResponse, match="signature"):
        webauthn.verify_authentication_response(
            credential=assertion,
            expected_challenge=challenge,
            expected_rp_id=RP_ID,
            expected_origin=ORIGIN,
            credential_public_key=registered.credential_public_key,
            credential_current_sign_count=0,
            require_user_verification=True,
        )


def test_assertion_under_another_key_rejected(
    authenticator: SoftwareAuthenticator,
    registered: VerifiedRegistration,
) -> None:
    impostor = SoftwareAuthenticator()
    impostor.add_credential(
        rp_id=RP_ID, user_handle=USER_ID, credential_id=registered.credential_id
    )

    with pytest.raises(InvalidAuthenticationResponse, match="signature"):
        authenticate(impostor, registered.credential_public_key, 0)
