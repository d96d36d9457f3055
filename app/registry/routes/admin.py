"""The operator API under ``/admin`` (``Authorization: Bearer <AGENTAUTH_ADMIN_TOKEN>``)."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.requests import Request
from starlette.responses import Response

from app.api import metrics
from app.api.bodies import read_json
from app.api.errors import NotFound, json_response
from app.core.errors import InvalidRequest, InvalidToken, www_authenticate
from app.registry.services import admin as admin_service
from app.registry.services import audit, checkpoints, revocation, views
from app.registry.services.common import rfc3339
from app.registry.state import NowDep, RegistryDep, RegistryState
from app.store import agents, audit_log, grants, people, resource_servers


def require_admin(request: Request, registry: RegistryDep) -> RegistryState:
    expected = registry.settings.admin_token
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    valid = (
        expected is not None
        and scheme.lower() == "bearer"
        and hmac.compare_digest(token.strip().encode(), expected.get_secret_value().encode())
    )
    if not valid:
        raise InvalidToken(
            "A valid admin token is required.",
            headers={"WWW-Authenticate": www_authenticate("Bearer", error="invalid_token")},
        )
    return registry


AdminDep = Annotated[RegistryState, Depends(require_admin)]
router = APIRouter(prefix="/admin")


@router.post("/humans")
async def create_human(request: Request, registry: AdminDep, now: NowDep) -> Response:
    body = await read_json(request)
    human, token = await admin_service.create_human(
        registry.database, body, invite_ttl=registry.settings.invite_ttl, now=now
    )
    invite_url = f"{registry.settings.issuer}/ui/invite/{token}"
    return json_response({"id": human.id, "invite_token": token, "invite_url": invite_url}, 201)


@router.get("/humans")
async def list_humans(registry: AdminDep) -> Response:
    async with registry.sessions() as session:
        humans = await people.every_human(session)
    return json_response({"humans": [views.human(h) for h in humans]})


@router.post("/humans/{human_id}/suspend")
async def suspend_human(human_id: str, registry: AdminDep, now: NowDep) -> Response:
    async with registry.sessions() as session, session.begin():
        human = await people.human(session, human_id, lock=True)
        if human is None:
            raise NotFound("No such human.")
        rows = await revocation.suspend_human(session, human, now)
        await audit.append(session, "human.suspended", actor="admin", subject=human_id, now=now)
    await revocation.publish(registry.cache, registry.database, rows, now)
    return json_response(views.human(human))


@router.post("/resource-servers")
async def create_resource_server(request: Request, registry: AdminDep, now: NowDep) -> Response:
    document = await read_json(request)
    server, secret = await admin_service.create_resource_server(
        registry.database, document, now=now
    )
    body: dict[str, Any] = {
        "client_id": server.id,
        "resource": server.resource,
        "dpop_required": server.dpop_required,
        "scopes": server.scopes,
    }
    if secret is not None:
        body["client_secret"] = secret
    return json_response(body, 201)


@router.get("/resource-servers")
async def list_resource_servers(registry: AdminDep) -> Response:
    async with registry.sessions() as session:
        servers = await resource_servers.every_server(session)
    return json_response({"resource_servers": [views.resource_server(s) for s in servers]})


@router.post("/enrollment-tokens")
async def create_enrollment_token(request: Request, registry: AdminDep, now: NowDep) -> Response:
    body = await read_json(request)
    owner = body.get("owner")
    if not isinstance(owner, str):
        raise InvalidRequest("owner (a human id) is required.")
    token, expires_at = await admin_service.create_enrollment_token(
        registry.database, owner, body.get("expires_in"), created_by="admin", now=now
    )
    return json_response({"token": token, "expires_at": rfc3339(expires_at)}, 201)


@router.get("/agents")
async def list_agents(registry: AdminDep) -> Response:
    async with registry.sessions() as session:
        every = await agents.every_agent(session)
    return json_response({"agents": [views.agent(a) for a in every]})


@router.post("/agents/{client_id}/disable")
async def disable_agent(client_id: str, registry: AdminDep, now: NowDep) -> Response:
    agent = await admin_service.disable_agent(
        registry.database, registry.cache, client_id, actor="admin", now=now
    )
    return json_response(views.agent(agent))


@router.get("/grants")
async def list_grants(
    registry: AdminDep,
    human: str | None = None,
    agent: str | None = None,
    status: str | None = None,
) -> Response:
    async with registry.sessions() as session:
        found = await grants.listing(session, human=human, agent=agent, status=status)
    return json_response({"grants": [views.grant(g) for g in found]})


@router.post("/grants/{grant_id}/revoke")
async def revoke_grant(grant_id: str, registry: AdminDep, now: NowDep) -> Response:
    grant = await admin_service.revoke_grant(
        registry.database, registry.cache, grant_id, actor="admin", now=now
    )
    return json_response(views.grant(grant))


@router.post("/keys/rotate")
async def rotate_keys(request: Request, registry: AdminDep, now: NowDep) -> Response:
    body = await read_json(request, allow_empty=True)
    prepublish = body.get("prepublish_seconds", registry.settings.key_prepublish_seconds)
    if (
        not isinstance(prepublish, int)
        or isinstance(prepublish, bool)
        or not 0 <= prepublish <= 30 * 86400
    ):
        raise InvalidRequest("prepublish_seconds must be an integer from 0 to 2592000.")
    key = await admin_service.rotate_keys(
        registry.database, registry.keys, registry.cache, prepublish, now=now
    )
    return json_response(
        {"kid": key.kid, "alg": key.alg, "activates_at": rfc3339(key.activates_at)}
    )


@router.get("/audit")
async def list_audit(
    registry: AdminDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    async with registry.sessions() as session:
        rows = await audit_log.events_after(session, after, limit)
    events = [views.audit_event(r) for r in rows]
    return json_response({"events": events})


@router.get("/audit/verify")
async def verify_audit(registry: AdminDep, now: NowDep) -> Response:
    async with registry.sessions() as session:
        report = await audit.verify_chain(session)
        coverage = await checkpoints.configured_check(session, registry.settings)
    body = report.to_dict()
    if coverage is not None:
        body["checkpoints"] = coverage.to_dict()
        body["ok"] = report.ok and coverage.ok
    metrics.AUDIT_CHAIN_OK.set(int(body["ok"]))
    metrics.AUDIT_LAST_VERIFIED.set(now)
    return json_response(body)
