"""WebAuthn ceremonies with py_webauthn: registration, login and grant approval.

py_webauthn verifies signatures, origin, RP id, challenge, UP/UV and sign counts; this module
adds what the relying party owns (docs/protocol.md "Approvals"): single-use server-side
challenges, the
credential belonging to the right human (``allowCredentials``, ``userHandle``), refusing
cross-origin ceremonies, unique credential ids and sign-count persistence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticationCredential,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from app.core.errors import InvalidRequest, InvalidToken
from app.core.webauthn_credentials import Assertion as WebAuthnAssertion
from app.core.webauthn_credentials import (
    Attestation,
    CredentialError,
    parse_assertion,
    parse_attestation,
)
from app.registry.ports import Database
from app.registry.services.common import secret_hash
from app.settings.registry import RegistrySettings
from app.store import challenges, people
from app.store.db import add_unless_taken
from app.store.models import Challenge, Human, Passkey

CEREMONY_TTL = 300


class CeremonyFailed(InvalidRequest):
    """A WebAuthn response did not verify (400, description says which rule)."""


async def store_challenge(
    session: AsyncSession,
    challenge: bytes,
    *,
    purpose: str,
    now: int,
    human_id: str | None = None,
    subject: str | None = None,
    digest: bytes | None = None,
) -> None:
    challenges.add(
        session,
        challenge,
        purpose=purpose,
        expires_at=now + CEREMONY_TTL,
        human_id=human_id,
        subject=subject,
        digest=digest,
    )


def parsed_assertion(credential: object) -> WebAuthnAssertion:
    """The request's assertion, parsed once (400 when malformed or cross-origin)."""
    try:
        return parse_assertion(credential)
    except CredentialError as exc:
        raise CeremonyFailed(str(exc)) from None


def parsed_attestation(credential: object) -> Attestation:
    """The request's registration credential, parsed once (400 when malformed)."""
    try:
        return parse_attestation(credential)
    except CredentialError as exc:
        raise CeremonyFailed(str(exc)) from None


async def consume_challenge(
    session: AsyncSession, challenge: bytes, *, purpose: str, now: int
) -> Challenge:
    """Mark the server's challenge a credential answers used, once; unknown, expired or used
    ones fail."""
    row = await challenges.use(session, challenge, purpose=purpose, now=now)
    if row is None:
        raise CeremonyFailed("The challenge is unknown, expired or already used.")
    return row


async def use_challenge(
    database: Database, challenge: bytes, purpose: str, *, now: int
) -> Challenge:
    """:func:`consume_challenge` in its own transaction: the first attempt burns it, whether
    the response then verifies or not."""
    async with database.sessions() as session, session.begin():
        return await consume_challenge(session, challenge, purpose=purpose, now=now)


async def invited_human(database: Database, token: object, *, now: int) -> Human:
    """The human an unused, unexpired invite is for (their first passkey's ceremony)."""
    if not isinstance(token, str):
        raise InvalidRequest("invite_token is required.")
    async with database.sessions() as session:
        human = await people.usable_invite(session, secret_hash(token), now)
    if human is None:
        raise InvalidToken("The invite is invalid, used or expired.")
    return human


def registration_options(
    settings: RegistrySettings, human: Human, challenge: bytes
) -> dict[str, Any]:
    options = generate_registration_options(
        rp_id=settings.rp_id,
        rp_name="AgentAuth",
        user_id=human.user_handle,
        user_name=human.email or human.id,
        user_display_name=human.display_name,
        challenge=challenge,
        timeout=CEREMONY_TTL * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
    )
    result: dict[str, Any] = json.loads(options_to_json(options))
    return result


def authentication_options(
    settings: RegistrySettings, challenge: bytes, credential_ids: list[bytes]
) -> dict[str, Any]:
    options = generate_authentication_options(
        rp_id=settings.rp_id,
        challenge=challenge,
        timeout=CEREMONY_TTL * 1000,
        allow_credentials=[PublicKeyCredentialDescriptor(id=c) for c in credential_ids],
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    result: dict[str, Any] = json.loads(options_to_json(options))
    return result


async def register_passkey(
    settings: RegistrySettings,
    session: AsyncSession,
    human: Human,
    credential: Attestation,
    *,
    challenge: bytes,
    now: int,
) -> Passkey:
    try:
        verified = verify_registration_response(
            credential=credential.credential,
            expected_challenge=challenge,
            expected_rp_id=settings.rp_id,
            expected_origin=settings.origin,
            require_user_verification=True,
        )
    except (WebAuthnException, KeyError, TypeError, ValueError) as exc:
        raise CeremonyFailed(f"Passkey registration failed: {exc}") from None
    if len(verified.credential_id) > 1023:
        raise CeremonyFailed("This credential is already registered.")
    passkey = Passkey(
        credential_id=verified.credential_id,
        human_id=human.id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=list(credential.transports),
        user_verified=verified.user_verified,
        backup_eligible=verified.credential_device_type == "multi_device",
        backup_state=verified.credential_backed_up,
        aaguid=verified.aaguid,
        created_at=now,
    )
    if not await add_unless_taken(session, passkey):
        raise CeremonyFailed("This credential is already registered.")
    return passkey


@dataclass(frozen=True)
class Assertion:
    passkey: Passkey
    parsed: AuthenticationCredential
    new_sign_count: int


async def verify_assertion(
    settings: RegistrySettings,
    session: AsyncSession,
    credential: WebAuthnAssertion,
    *,
    challenge: bytes,
    human_id: str | None,
    allowed: list[bytes] | None,
    now: int,
) -> Assertion:
    """Verify an assertion by a passkey of ``human_id`` (any human for discoverable login)
    against the server's ``challenge``, offered with ``allowed`` credential ids (any for a
    discoverable login)."""
    parsed = credential.credential
    passkey = await people.passkey(session, parsed.raw_id, lock=True)
    if passkey is None or (human_id is not None and passkey.human_id != human_id):
        raise CeremonyFailed("The passkey is not registered to this human.")
    if allowed is not None and parsed.raw_id not in allowed:
        raise CeremonyFailed("The passkey was not offered for this ceremony.")
    owner = await people.human(session, passkey.human_id)
    handle = parsed.response.user_handle
    if owner is None or (handle is not None and handle != owner.user_handle):
        raise CeremonyFailed("The user handle does not match the passkey's owner.")
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=settings.rp_id,
            expected_origin=settings.origin,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=True,
        )
    except (WebAuthnException, KeyError, TypeError, ValueError) as exc:
        raise CeremonyFailed(f"Passkey verification failed: {exc}") from None
    passkey.sign_count, passkey.last_used_at = verified.new_sign_count, now
    passkey.backup_state = verified.credential_backed_up
    return Assertion(passkey, parsed, verified.new_sign_count)
