"""The approval JSON API under ``/ui/api``: passkeys, login, sessions, requests, grants.

Names: ``db`` is a database session, ``current`` the human's browser session
(``SessionDep``).

Every state-changing call needs the session cookie and ``X-CSRF-Token`` (see
``services.sessions``); WebAuthn challenges are consumed in their own transaction before the
response is verified, so a challenge is burned by the first attempt, successful or not.
"""

from __future__ import annotations

import secrets

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.api.bodies import read_json
from app.api.errors import json_response
from app.core.approvals import new_challenge, request_digest
from app.core.errors import InvalidToken
from app.registry.routes.humans import SessionDep
from app.registry.services import admin as admin_service
from app.registry.services import audit, passkeys, requesters, views
from app.registry.services.approvals import (
    approve_with_passkey,
    deny_request,
    pending_request_of,
    request_document,
)
from app.registry.services.common import rfc3339, secret_hash
from app.registry.services.sessions import end_session, start_session
from app.registry.state import NowDep, RegistryDep
from app.store import agents, grants, people, resource_servers

router = APIRouter(prefix="/ui/api")


@router.post("/passkeys/register/options")
async def register_options(request: Request, registry: RegistryDep, now: NowDep) -> Response:
    await registry.limits.per_address(request, "ui")
    body = await read_json(request)
    human = await passkeys.invited_human(registry.database, body.get("invite_token"), now=now)
    challenge = secrets.token_bytes(32)
    async with registry.sessions() as db, db.begin():
        await passkeys.store_challenge(
            db,
            challenge,
            purpose="register",
            now=now,
            human_id=human.id,
            subject=secret_hash(body["invite_token"]),
        )
    return json_response(passkeys.registration_options(registry.settings, human, challenge))


@router.post("/passkeys/register/verify")
async def register_verify(request: Request, registry: RegistryDep, now: NowDep) -> Response:
    await registry.limits.per_address(request, "ui")
    body = await read_json(request)
    human = await passkeys.invited_human(registry.database, body.get("invite_token"), now=now)
    credential = passkeys.parsed_attestation(body.get("credential"))
    challenge = await passkeys.use_challenge(
        registry.database, credential.challenge, "register", now=now
    )
    if challenge.subject != secret_hash(body["invite_token"]):
        raise passkeys.CeremonyFailed("The challenge was issued for another invite.")
    async with registry.sessions() as db, db.begin():
        if challenge.subject is None or not await people.claim_invite(db, challenge.subject, now):
            raise InvalidToken("The invite is invalid, used or expired.")
        await passkeys.register_passkey(
            registry.settings, db, human, credential, challenge=challenge.challenge, now=now
        )
        await audit.append(db, "passkey.registered", actor=human.id, subject=human.id, now=now)
    response = json_response({"human_id": human.id})
    await start_session(registry.database, registry.settings.issuer, response, human.id, now=now)
    return response


@router.post("/login/options")
async def login_options(request: Request, registry: RegistryDep, now: NowDep) -> Response:
    await registry.limits.per_address(request, "ui")
    await read_json(request, allow_empty=True)
    challenge = secrets.token_bytes(32)
    async with registry.sessions() as db, db.begin():
        await passkeys.store_challenge(db, challenge, purpose="login", now=now)
    return json_response(passkeys.authentication_options(registry.settings, challenge, []))


@router.post("/login/verify")
async def login_verify(request: Request, registry: RegistryDep, now: NowDep) -> Response:
    await registry.limits.per_address(request, "ui")
    credential = passkeys.parsed_assertion((await read_json(request)).get("credential"))
    challenge = await passkeys.use_challenge(
        registry.database, credential.challenge, "login", now=now
    )
    async with registry.sessions() as db, db.begin():
        result = await passkeys.verify_assertion(
            registry.settings,
            db,
            credential,
            challenge=challenge.challenge,
            human_id=None,
            allowed=None,
            now=now,
        )
        human = await people.active_human(db, result.passkey.human_id)
        if human is None:
            raise InvalidToken("This account is suspended.")
        await audit.append(db, "human.login", actor=human.id, subject=human.id, now=now)
    response = json_response({"human_id": human.id})
    await start_session(registry.database, registry.settings.issuer, response, human.id, now=now)
    return response


@router.get("/session")
async def session_info(current: SessionDep) -> Response:
    return json_response({"human_id": current.human_id, "csrf_token": current.csrf_token})


@router.post("/logout")
async def logout(
    request: Request, registry: RegistryDep, current: SessionDep, now: NowDep
) -> Response:
    response = json_response({})
    await end_session(registry.database, request, response, now)
    return response


@router.get("/requests")
async def list_requests(registry: RegistryDep, current: SessionDep, now: NowDep) -> Response:
    async with registry.sessions() as db:
        rows = await grants.pending_requests(db, current.human_id, now)
        types = await resource_servers.type_schemas(db)
    return json_response({"requests": [views.grant_request_api(r, a, types) for r, a in rows]})


@router.post("/requests/{auth_req_id}/approve/options")
async def approve_options(
    auth_req_id: str, registry: RegistryDep, current: SessionDep, now: NowDep
) -> Response:
    row, agent = await pending_request_of(registry.database, auth_req_id, current.human_id, now)
    document = request_document(row, agent)
    challenge = new_challenge(document)
    async with registry.sessions() as db, db.begin():
        ids = await people.passkey_ids(db, current.human_id)
        await passkeys.store_challenge(
            db,
            challenge,
            purpose="approve",
            now=now,
            human_id=current.human_id,
            subject=auth_req_id,
            digest=request_digest(document),
        )
    return json_response(passkeys.authentication_options(registry.settings, challenge, ids))


@router.post("/requests/{auth_req_id}/approve")
async def approve(
    auth_req_id: str, request: Request, registry: RegistryDep, current: SessionDep, now: NowDep
) -> Response:
    credential = passkeys.parsed_assertion((await read_json(request)).get("credential"))
    approved = await approve_with_passkey(
        registry.database,
        registry.settings,
        auth_req_id=auth_req_id,
        human_id=current.human_id,
        credential=credential,
        now=now,
    )
    body = {"grant_id": approved.grant.id}
    if approved.redirect_to is not None:
        body["redirect_to"] = approved.redirect_to
    return json_response(body)


@router.post("/requests/{auth_req_id}/deny")
async def deny(
    auth_req_id: str, registry: RegistryDep, current: SessionDep, now: NowDep
) -> Response:
    await pending_request_of(registry.database, auth_req_id, current.human_id, now)
    redirect_to = await deny_request(
        registry.database, registry.settings.issuer, auth_req_id, current.human_id, now=now
    )
    body = {"auth_req_id": auth_req_id, "status": "denied"}
    if redirect_to is not None:
        body["redirect_to"] = redirect_to
    return json_response(body)


@router.get("/grants")
async def list_grants(registry: RegistryDep, current: SessionDep) -> Response:
    async with registry.sessions() as db:
        approved = await grants.of_human(db, current.human_id)
        types = await resource_servers.type_schemas(db)
    return json_response(
        {
            "grants": [
                {
                    "id": g.id,
                    "agent": g.agent_id,
                    "status": g.status,
                    "authorization_details": g.authorization_details,
                    "summary": views.summary(g, types),
                    "created_at": rfc3339(g.created_at),
                    "expires_at": rfc3339(g.expires_at),
                }
                for g in approved
            ]
        }
    )


@router.post("/grants/{grant_id}/revoke")
async def revoke_grant(
    grant_id: str, registry: RegistryDep, current: SessionDep, now: NowDep
) -> Response:
    grant = await admin_service.revoke_grant(
        registry.database,
        registry.cache,
        grant_id,
        actor=current.human_id,
        owner=current.human_id,
        now=now,
    )
    return json_response({"id": grant.id, "status": grant.status})


@router.get("/agents")
async def list_agents(registry: RegistryDep, current: SessionDep) -> Response:
    async with registry.sessions() as db:
        owned = await agents.owned_by(db, current.human_id)
    return json_response(
        {
            "agents": [
                {
                    "client_id": a.id,
                    "client_name": a.client_name,
                    "status": a.status,
                    "software_id": a.client_metadata.get("software_id"),
                    "software_version": a.client_metadata.get("software_version"),
                    "created_at": rfc3339(a.created_at),
                }
                for a in owned
            ]
        }
    )


@router.post("/agents/{client_id}/disable")
async def disable_agent(
    client_id: str, registry: RegistryDep, current: SessionDep, now: NowDep
) -> Response:
    agent = await admin_service.disable_agent(
        registry.database,
        registry.cache,
        client_id,
        actor=current.human_id,
        owner=current.human_id,
        now=now,
    )
    return json_response({"client_id": agent.id, "status": agent.status})


@router.post("/enrollment-tokens")
async def create_enrollment_token(
    request: Request, registry: RegistryDep, current: SessionDep, now: NowDep
) -> Response:
    body = await read_json(request, allow_empty=True)
    token, expires_at = await admin_service.create_enrollment_token(
        registry.database,
        current.human_id,
        body.get("expires_in"),
        created_by=current.human_id,
        now=now,
    )
    return json_response({"token": token, "expires_at": rfc3339(expires_at)}, 201)


@router.get("/requesters")
async def list_requesters(registry: RegistryDep, current: SessionDep) -> Response:
    """The humans whose agents may send this human approval requests."""
    rows = await requesters.listed(registry.database, current.human_id)
    return json_response(
        {
            "requesters": [
                {
                    "human_id": human.id,
                    "display_name": human.display_name,
                    "allowed_at": rfc3339(row.created_at),
                }
                for row, human in rows
            ]
        }
    )


@router.put("/requesters/{human_id}")
async def allow_requester(
    human_id: str, registry: RegistryDep, current: SessionDep, now: NowDep
) -> Response:
    row = await requesters.allow(registry.database, current.human_id, human_id, now=now)
    return json_response({"human_id": row.requester_id, "allowed_at": rfc3339(row.created_at)})


@router.delete("/requesters/{human_id}")
async def withdraw_requester(
    human_id: str, registry: RegistryDep, current: SessionDep, now: NowDep
) -> Response:
    await requesters.withdraw(registry.database, current.human_id, human_id, now=now)
    return Response(status_code=204)
