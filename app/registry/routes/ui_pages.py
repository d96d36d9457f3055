"""The approval pages (server-rendered; the buttons call the JSON API in ``ui_api``).

Reading works without JavaScript. Pages that need a session send the browser to the login
page; another human's request looks exactly like an unknown one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter
from sqlalchemy import func, or_, select
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from app.api.errors import Conflict, NotFound
from app.core.capabilities import TypeRegistry, load_details
from app.core.errors import InvalidToken
from app.core.summary import summarize
from app.registry.services.approvals import agent_view, pending_request
from app.registry.services.common import rfc3339, secret_hash
from app.registry.services.resource_servers import type_schemas
from app.registry.services.sessions import current_session
from app.registry.state import Registry, RegistryDep
from app.store.models import (
    AccessToken,
    Agent,
    AuditEvent,
    BrowserSession,
    Grant,
    GrantRequest,
    Human,
    Invite,
    ResourceServer,
)

UI = Path(__file__).resolve().parent.parent / "ui"
templates = Jinja2Templates(directory=UI / "templates")
router = APIRouter(prefix="/ui")


async def _session(request: Request, registry: Registry) -> BrowserSession | None:
    try:
        return await current_session(request, registry)
    except InvalidToken:
        return None


async def _render(
    request: Request, registry: Registry, name: str, page: str, **context: Any
) -> Response:
    current = await _session(request, registry)
    if current is None:
        return _login(request)
    async with registry.sessions() as session:
        human = await session.get(Human, current.human_id)
        extra = await context.pop("load")(session, current.human_id) if "load" in context else {}
    return templates.TemplateResponse(
        request,
        name,
        {"human": human, "csrf_token": current.csrf_token, "page": page, **context, **extra},
        headers={"Cache-Control": "no-store"},
    )


# What each audit event means, as the dashboard tells it.
EVENT_PHRASES = {
    "agent.disabled": "disabled an agent",
    "agent.registered": "registered an agent",
    "enrollment_token.created": "created an enrollment token",
    "grant.approved": "approved a request",
    "grant.denied": "denied a request",
    "grant.requested": "asked for access",
    "grant.revoked": "revoked a grant",
    "human.invited": "invited a human",
    "human.login": "logged in",
    "human.requester_allowed": "allowed another human's agents to ask",
    "human.requester_withdrawn": "withdrew a permission to ask",
    "human.suspended": "suspended a human",
    "keys.rotated": "rotated the signing key",
    "passkey.registered": "created a passkey",
    "resource_server.created": "registered a resource server",
    "token.exchanged": "exchanged a token",
    "token.issued": "received a token",
    "token.refreshed": "refreshed a token",
    "token.revoked": "revoked a token",
}


def problem_page(request: Request, heading: str, message: str, status: int) -> Response:
    """A page that tells the human what went wrong, and nothing more."""
    return templates.TemplateResponse(
        request,
        "problem.html",
        {"human": None, "heading": heading, "message": message},
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def _login(request: Request) -> RedirectResponse:
    """To the login page, which comes back here afterwards."""
    return RedirectResponse(f"/ui/login?next={quote(request.url.path, safe='/')}", 303)


def _request_view(row: GrantRequest, agent: Agent, types: TypeRegistry) -> dict[str, Any]:
    details = load_details(row.authorization_details)
    return {
        "auth_req_id": row.auth_req_id,
        "agent": agent_view(agent),
        "binding_message": row.binding_message,
        "max_delegation_depth": row.max_delegation_depth,
        "grant_lifetime": row.grant_lifetime,
        "expires_at": rfc3339(row.expires_at),
        "summary": [summarize(d, types) for d in details],
        "locations": sorted({loc for d in details for loc in d.locations}),
    }


def _duration(seconds: int) -> str:
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


@router.get("/login")
async def login_page(request: Request) -> Response:
    return templates.TemplateResponse(request, "login.html", {"human": None})


@router.get("/invite/{token}")
async def invite_page(token: str, request: Request, registry: RegistryDep) -> Response:
    async with registry.sessions() as session:
        invite = await session.get(Invite, secret_hash(token))
        human = await session.get(Human, invite.human_id) if invite else None
    usable = (
        invite is not None
        and invite.used_at is None
        and invite.expires_at > registry.now()
        and human is not None
        and human.status == "active"
    )
    context = {"human": None, "invited": human if usable else None, "invite_token": token}
    return templates.TemplateResponse(
        request, "invite.html", context, status_code=200 if usable else 404
    )


@router.get("/")
async def dashboard(request: Request, registry: RegistryDep) -> Response:
    now = registry.now()

    async def load(session: Any, human_id: str) -> dict[str, Any]:
        pending = (
            await session.execute(
                select(GrantRequest, Agent)
                .join(Agent, Agent.id == GrantRequest.agent_id)
                .where(
                    GrantRequest.human_id == human_id,
                    GrantRequest.status == "pending",
                    GrantRequest.expires_at > now,
                )
                .order_by(GrantRequest.created_at.desc())
            )
        ).all()
        agents = (await session.scalars(select(Agent).where(Agent.owner_id == human_id))).all()
        names = {a.id: a.client_name for a in agents}
        people = {**names, human_id: "you"}
        grants = (
            await session.scalars(
                select(Grant)
                .where(Grant.human_id == human_id, Grant.status == "active")
                .where(Grant.expires_at > now)
                .order_by(Grant.created_at.desc())
            )
        ).all()
        ids = [human_id, *names]
        types = await type_schemas(session)
        events = (
            await session.scalars(
                select(AuditEvent)
                .where(or_(AuditEvent.actor.in_(ids), AuditEvent.subject.in_(ids)))
                .order_by(AuditEvent.seq.desc())
                .limit(20)
            )
        ).all()
        return {
            "requests": [_request_view(r, a, types) for r, a in pending],
            "agents": agents,
            "grants": [
                {
                    "id": g.id,
                    "agent_name": names.get(g.agent_id, g.agent_id),
                    "summary": [summarize(d, types) for d in load_details(g.authorization_details)],
                    "created_at": rfc3339(g.created_at),
                    "expires_at": rfc3339(g.expires_at),
                }
                for g in grants
            ],
            "activity": [
                {
                    "at": rfc3339(e.created_at),
                    "event": EVENT_PHRASES.get(e.event, e.event.replace("_", " ")),
                    "actor": people.get(e.actor, "someone else"),
                    "subject": people.get(e.subject or "", ""),
                }
                for e in events
            ],
        }

    return await _render(request, registry, "dashboard.html", "dashboard", load=load)


@router.get("/requests/{auth_req_id}")
async def request_page(auth_req_id: str, request: Request, registry: RegistryDep) -> Response:
    current = await _session(request, registry)
    if current is None:
        return _login(request)
    try:
        async with registry.sessions() as session:
            row, agent = await pending_request(
                session, auth_req_id, current.human_id, registry.now()
            )
            types = await type_schemas(session)
    except (NotFound, Conflict) as exc:
        heading = "Request not found" if isinstance(exc, NotFound) else "This request is closed"
        return problem_page(request, heading, exc.description, exc.status)
    view = _request_view(row, agent, types)
    flow = row.authorization_request

    async def load(session: Any, _: str) -> dict[str, Any]:
        owner = await session.get(Human, agent.owner_id) if agent.owner_id else None
        servers = (
            await session.scalars(
                select(ResourceServer).where(ResourceServer.resource.in_(view["locations"]))
            )
        ).all()
        owner_name = owner.display_name if owner else agent.owner_id
        return {"owner_name": owner_name, "servers": servers}

    return await _render(
        request,
        registry,
        "request.html",
        "request",
        r=view,
        flow=flow,
        redirect_host=urlsplit(flow["redirect_uri"]).netloc if flow else None,
        raw_details=json.dumps(row.authorization_details, indent=2, ensure_ascii=False),
        lifetime=_duration(row.grant_lifetime),
        load=load,
    )


@router.get("/grants")
async def grants_page(request: Request, registry: RegistryDep) -> Response:
    async def load(session: Any, human_id: str) -> dict[str, Any]:
        rows = (
            await session.execute(
                select(Grant, Agent.client_name)
                .join(Agent, Agent.id == Grant.agent_id)
                .where(Grant.human_id == human_id)
                .order_by(Grant.created_at.desc())
            )
        ).all()
        types = await type_schemas(session)
        counts = dict(
            (
                await session.execute(
                    select(AccessToken.grant_id, func.count())
                    .where(AccessToken.grant_id.in_([g.id for g, _ in rows]))
                    .group_by(AccessToken.grant_id)
                )
            ).all()
        )
        derived = dict(
            (
                await session.execute(
                    select(AccessToken.grant_id, func.count())
                    .where(
                        AccessToken.grant_id.in_([g.id for g, _ in rows]),
                        AccessToken.parent_jti.is_not(None),
                    )
                    .group_by(AccessToken.grant_id)
                )
            ).all()
        )
        return {
            "grants": [
                {
                    "id": g.id,
                    "agent_name": name,
                    "status": g.status,
                    "created_at": rfc3339(g.created_at),
                    "summary": [summarize(d, types) for d in load_details(g.authorization_details)],
                    "tokens": counts.get(g.id, 0),
                    "delegated": derived.get(g.id, 0),
                    "expires_at": rfc3339(g.expires_at),
                }
                for g, name in rows
            ]
        }

    return await _render(request, registry, "grants.html", "grants", load=load)


@router.get("/agents")
async def agents_page(request: Request, registry: RegistryDep) -> Response:
    async def load(session: Any, human_id: str) -> dict[str, Any]:
        agents = (
            await session.scalars(
                select(Agent).where(Agent.owner_id == human_id).order_by(Agent.created_at)
            )
        ).all()
        return {"agents": agents}

    return await _render(
        request, registry, "agents.html", "agents", issuer=registry.settings.issuer, load=load
    )
