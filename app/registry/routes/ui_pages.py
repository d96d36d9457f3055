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
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from app.api.errors import Conflict, NotFound
from app.registry.services import views
from app.registry.services.approvals import pending_request
from app.registry.services.common import rfc3339, secret_hash
from app.registry.services.sessions import optional_session
from app.registry.state import NowDep, RegistryDep, RegistryState
from app.store import agents, audit_log, grants, people, resource_servers

UI = Path(__file__).resolve().parent.parent / "ui"
templates = Jinja2Templates(directory=UI / "templates")
router = APIRouter(prefix="/ui")


async def _render(
    request: Request, registry: RegistryState, now: int, name: str, page: str, **context: Any
) -> Response:
    current = await optional_session(registry.database, request, now)
    if current is None:
        return _login(request)
    async with registry.sessions() as session:
        human = await people.human(session, current.human_id)
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
async def invite_page(token: str, request: Request, registry: RegistryDep, now: NowDep) -> Response:
    async with registry.sessions() as session:
        invited = await people.usable_invite(session, secret_hash(token), now)
    context = {"human": None, "invited": invited, "invite_token": token}
    return templates.TemplateResponse(
        request, "invite.html", context, status_code=200 if invited else 404
    )


@router.get("/")
async def dashboard(request: Request, registry: RegistryDep, now: NowDep) -> Response:

    async def load(session: Any, human_id: str) -> dict[str, Any]:
        pending = await grants.pending_requests(session, human_id, now)
        owned = await agents.owned_by(session, human_id)
        names = {a.id: a.client_name for a in owned}
        people_named = {**names, human_id: "you"}
        active = await grants.active_of_human(session, human_id, now)
        types = await resource_servers.type_schemas(session)
        events = await audit_log.latest_about(session, [human_id, *names], 20)
        return {
            "requests": [views.grant_request(r, a, types) for r, a in pending],
            "agents": owned,
            "grants": [
                {
                    "id": g.id,
                    "agent_name": names.get(g.agent_id, g.agent_id),
                    "summary": views.summary(g, types),
                    "created_at": rfc3339(g.created_at),
                    "expires_at": rfc3339(g.expires_at),
                }
                for g in active
            ],
            "activity": [
                {
                    "at": rfc3339(e.created_at),
                    "event": EVENT_PHRASES.get(e.event, e.event.replace("_", " ")),
                    "actor": people_named.get(e.actor, "someone else"),
                    "subject": people_named.get(e.subject or "", ""),
                }
                for e in events
            ],
        }

    return await _render(request, registry, now, "dashboard.html", "dashboard", load=load)


@router.get("/requests/{auth_req_id}")
async def request_page(
    auth_req_id: str, request: Request, registry: RegistryDep, now: NowDep
) -> Response:
    current = await optional_session(registry.database, request, now)
    if current is None:
        return _login(request)
    try:
        async with registry.sessions() as session:
            row, agent = await pending_request(session, auth_req_id, current.human_id, now)
            types = await resource_servers.type_schemas(session)
    except (NotFound, Conflict) as exc:
        heading = "Request not found" if isinstance(exc, NotFound) else "This request is closed"
        return problem_page(request, heading, exc.description, exc.status)
    view = views.grant_request(row, agent, types)
    flow = row.authorization_request

    async def load(session: Any, _: str) -> dict[str, Any]:
        owner = await people.human(session, agent.owner_id) if agent.owner_id else None
        servers = await resource_servers.at_locations(session, view["locations"])
        owner_name = owner.display_name if owner else agent.owner_id
        return {"owner_name": owner_name, "servers": servers}

    return await _render(
        request,
        registry,
        now,
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
async def grants_page(request: Request, registry: RegistryDep, now: NowDep) -> Response:
    async def load(session: Any, human_id: str) -> dict[str, Any]:
        rows = await grants.of_human_with_agent_names(session, human_id)
        types = await resource_servers.type_schemas(session)
        ids = [g.id for g, _ in rows]
        counts = await grants.token_counts(session, ids)
        derived = await grants.token_counts(session, ids, delegated_only=True)
        return {
            "grants": [
                {
                    "id": g.id,
                    "agent_name": name,
                    "status": g.status,
                    "created_at": rfc3339(g.created_at),
                    "summary": views.summary(g, types),
                    "tokens": counts.get(g.id, 0),
                    "delegated": derived.get(g.id, 0),
                    "expires_at": rfc3339(g.expires_at),
                }
                for g, name in rows
            ]
        }

    return await _render(request, registry, now, "grants.html", "grants", load=load)


@router.get("/agents")
async def agents_page(request: Request, registry: RegistryDep, now: NowDep) -> Response:
    async def load(session: Any, human_id: str) -> dict[str, Any]:
        return {"agents": await agents.owned_by(session, human_id)}

    return await _render(
        request, registry, now, "agents.html", "agents", issuer=registry.settings.issuer, load=load
    )
