"""Approving and denying grant requests.

The approval challenge binds ``SHA-256(JCS(request_document))`` (docs/protocol.md
"Approvals"); the document is rebuilt from the database when the assertion arrives, so a
request changed after it was shown no longer matches. The stored approval keeps the
document, challenge, authenticator data, client data and signature: anyone with the
passkey's public key can re-verify it from the database alone (:func:`reverify`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from sqlalchemy.ext.asyncio import AsyncSession
from webauthn.helpers import (
    decode_credential_public_key,
    decoded_public_key_to_cryptography,
    parse_client_data_json,
    verify_signature,
)

from app.api.errors import Conflict, NotFound
from app.core.approvals import challenge_binds, request_digest
from app.core.webauthn_credentials import Assertion as WebAuthnAssertion
from app.registry.ports import Database
from app.registry.services import audit, authorization, passkeys
from app.registry.services.common import new_id
from app.settings.registry import RegistrySettings
from app.store import agents, grants, people
from app.store.models import Agent, Approval, Challenge, Grant, GrantRequest
from app.store.sql import SessionDb

PURPOSE = "agentauth-grant-approval/v1"


def agent_view(agent: Agent) -> dict[str, Any]:
    """Who asks: the agent's identity as the human sees it (and as the approval binds it)."""
    view = {
        "client_id": agent.id,
        "client_name": agent.client_name,
        "software_id": agent.client_metadata.get("software_id"),
        "software_version": agent.client_metadata.get("software_version"),
        "owner": agent.owner_id,
    }
    document_url = agent.client_metadata.get("client_id_metadata_document")
    if document_url is not None:  # the client is the application that URL describes
        view["client_id_metadata_document"] = document_url
    return view


def request_document(row: GrantRequest, agent: Agent) -> dict[str, Any]:
    """Everything the human approves, in canonical form: for an authorization-code request
    also where the answer goes and the client's PKCE challenge (``authorization_request``)."""
    document = {
        "purpose": PURPOSE,
        "auth_req_id": row.auth_req_id,
        "human": row.human_id,
        "agent": agent_view(agent),
        "authorization_details": row.authorization_details,
        "binding_message": row.binding_message,
        "max_delegation_depth": row.max_delegation_depth,
        "grant_lifetime": row.grant_lifetime,
        "expires_at": row.expires_at,
    }
    if row.authorization_request is not None:
        document["authorization_request"] = row.authorization_request
    if row.standing:  # the agent may get tokens without asking again: the human signs that
        document["standing"] = True
    return document


@dataclass(frozen=True)
class Approved:
    grant: Grant
    redirect_to: str | None  # an authorization-code request: the client's redirect with code


async def open_request(
    session: AsyncSession, *, now: int, audit_data: dict[str, Any], **columns: Any
) -> GrantRequest:
    """A new pending request (``columns`` are those of ``grant_requests``), audited as asked
    by its agent."""
    row = grants.add_request(session, created_at=now, **columns)
    await audit.append(
        session,
        "grant.requested",
        actor=row.agent_id,
        subject=row.auth_req_id,
        now=now,
        data=audit_data,
    )
    return row


async def pending_request_of(
    database: Database, auth_req_id: str, human_id: str, now: int
) -> tuple[GrantRequest, Agent]:
    """:func:`pending_request` on a connection of its own."""
    async with database.sessions() as session:
        return await pending_request(session, auth_req_id, human_id, now)


async def pending_request(
    session: AsyncSession, auth_req_id: str, human_id: str, now: int, *, lock: bool = False
) -> tuple[GrantRequest, Agent]:
    """This human's pending, unexpired request from an active agent; another human's request
    is indistinguishable from an unknown one (404)."""
    row = await grants.request(session, auth_req_id, lock=lock)
    if row is None or row.human_id != human_id:
        raise NotFound("No such request.")
    if row.status != "pending":
        raise Conflict(f"The request has already been {row.status}.")
    if row.expires_at <= now:
        raise Conflict("The request has expired.")
    agent = await agents.agent(session, row.agent_id)
    if agent is None or agent.status != "active":
        raise Conflict("The requesting agent has been disabled.")
    return row, agent


async def approve_with_passkey(
    database: Database,
    settings: RegistrySettings,
    *,
    auth_req_id: str,
    human_id: str,
    credential: WebAuthnAssertion,
    now: int,
) -> Approved:
    """The whole approval: the credential's challenge is used up in its own transaction (the
    first attempt burns it, successful or not), must have been issued for this request and
    this human, and then the assertion must verify over the request as it is now."""
    async with database.sessions() as session, session.begin():
        challenge = await passkeys.consume_challenge(
            session, credential.challenge, purpose="approve", now=now
        )
    if challenge.subject != auth_req_id or challenge.human_id != human_id:
        raise passkeys.CeremonyFailed("The challenge was issued for another request.")
    return await approve_request(
        database, settings, auth_req_id, human_id, credential, challenge, now=now
    )


async def approve_request(
    database: Database,
    settings: RegistrySettings,
    auth_req_id: str,
    human_id: str,
    credential: WebAuthnAssertion,
    challenge: Challenge,
    *,
    now: int,
) -> Approved:
    async with database.sessions() as session, session.begin():
        row, agent = await pending_request(session, auth_req_id, human_id, now, lock=True)
        document = request_document(row, agent)
        if challenge.request_digest != request_digest(document) or not challenge_binds(
            challenge.challenge, document
        ):
            raise passkeys.CeremonyFailed("The request changed after it was shown; approve again.")
        allowed = await people.passkey_ids(session, human_id)
        result = await passkeys.verify_assertion(
            settings,
            session,
            credential,
            challenge=challenge.challenge,
            human_id=human_id,
            allowed=allowed,
            now=now,
        )
        grant = Grant(
            id=new_id("grt_"),
            auth_req_id=auth_req_id,
            agent_id=agent.id,
            human_id=human_id,
            authorization_details=row.authorization_details,
            max_delegation_depth=row.max_delegation_depth,
            auth_time=now,
            created_at=now,
            expires_at=now + row.grant_lifetime,
            scope=(row.authorization_request or {}).get("scope"),
            standing=row.standing,
        )
        session.add(grant)
        row.status, row.decided_at, row.grant_id = "approved", now, grant.id
        response = result.parsed.response
        session.add(
            Approval(
                auth_req_id=auth_req_id,
                grant_id=grant.id,
                human_id=human_id,
                decision="approved",
                credential_id=result.passkey.credential_id,
                authenticator_data=response.authenticator_data,
                client_data_json=response.client_data_json,
                signature=response.signature,
                user_handle=response.user_handle,
                user_verified=True,
                sign_count=result.new_sign_count,
                challenge=challenge.challenge,
                request_digest=challenge.request_digest,
                request_document=document,
                created_at=now,
            )
        )
        await audit.append(
            session,
            "grant.approved",
            actor=human_id,
            subject=grant.id,
            now=now,
            data={"auth_req_id": auth_req_id, "agent": agent.id, "standing": row.standing},
        )
        redirect_to = None
        if row.authorization_request is not None:
            await session.flush()
            code = await authorization.issue_code(
                SessionDb(session),
                auth_req_id=auth_req_id,
                grant_id=grant.id,
                client_id=agent.id,
                now=now,
            )
            redirect_to = authorization.approved_location(
                row.authorization_request, code, settings.issuer
            )
    return Approved(grant, redirect_to)


async def deny_request(
    database: Database, issuer: str, auth_req_id: str, human_id: str, *, now: int
) -> str | None:
    """Deny the request; for an authorization-code request, the client's redirect with
    ``access_denied`` (from ``issuer``) is returned."""
    async with database.sessions() as session, session.begin():
        row, agent = await pending_request(session, auth_req_id, human_id, now, lock=True)
        row.status, row.decided_at = "denied", now
        session.add(
            Approval(
                auth_req_id=auth_req_id,
                human_id=human_id,
                decision="denied",
                request_document=request_document(row, agent),
                created_at=now,
            )
        )
        await audit.append(session, "grant.denied", actor=human_id, subject=auth_req_id, now=now)
    if row.authorization_request is None:
        return None
    return authorization.denied_location(row.authorization_request, issuer)


def reverify(approval: Approval, public_key: bytes) -> bool:
    """Re-check a stored approval offline: the challenge binds the stored document, the client
    data carries that challenge, and the signature over ``authenticatorData ‖
    SHA-256(clientDataJSON)`` verifies with the passkey's public key."""
    parts = (
        approval.challenge,
        approval.signature,
        approval.authenticator_data,
        approval.client_data_json,
    )
    if any(part is None for part in parts):
        return False
    challenge, signature, authenticator_data, client_data_json = parts
    assert challenge and signature and authenticator_data and client_data_json  # noqa: S101, PT018
    if not challenge_binds(challenge, approval.request_document):
        return False
    if parse_client_data_json(client_data_json).challenge != challenge:
        return False
    decoded = decode_credential_public_key(public_key)
    try:
        verify_signature(
            public_key=decoded_public_key_to_cryptography(decoded),
            signature_alg=decoded.alg,
            signature=signature,
            data=authenticator_data + hashlib.sha256(client_data_json).digest(),
        )
    except InvalidSignature:
        return False
    return True
