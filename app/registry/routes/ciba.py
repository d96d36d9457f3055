"""``POST /bc-authorize``: an agent asks a human for a grant (OpenID CIBA poll mode + RAR)."""

from __future__ import annotations

import secrets

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.api.bodies import read_form
from app.api.errors import json_response
from app.core.errors import InvalidRequest, UnauthorizedClient, UnknownUserId
from app.core.params import FormParams, ascii_int
from app.core.text import check_display_text
from app.registry.services import requesters
from app.registry.services.approvals import open_request
from app.registry.services.clients import admit_client, authenticate_client
from app.registry.services.resource_servers import parse_details
from app.registry.state import RegistryDep
from app.store import people
from app.store.sql import SessionDb, connect

router = APIRouter()
POLL_INTERVAL = 5
EXPIRY = (60, 300, 1800)  # min, default, max seconds a request stays open
GRANT_LIFETIME = (60, 86_400, 30 * 86_400)
MAX_DEPTH = 4


def _bounded_int(form: FormParams, name: str, low: int, default: int, high: int) -> int:
    raw = form.get(name)
    if raw is None:
        return default
    value = ascii_int(raw)
    if value is None or not low <= value <= high:
        raise InvalidRequest(f"{name} must be an integer from {low} to {high}.")
    return value


@router.post("/bc-authorize")
async def bc_authorize(request: Request, registry: RegistryDep) -> Response:
    form = await read_form(request)
    now = registry.now()
    failures = registry.limits.counting_failures(request, "bc-authorize")
    async with failures, connect(registry.engine) as db:
        # Any confidential client's authentication (CIBA §7.1): an agent's private_key_jwt,
        # or the secret of a client registered with one (an unattended job's).
        agent, assertion = await authenticate_client(
            registry.settings, db, form, request.headers.get("authorization"), now=now
        )
    if agent.auth_method == "none":
        raise UnauthorizedClient("A public client cannot ask for a grant on the back channel.")
    await admit_client(
        registry.limits, registry.settings.clock_skew, agent.id, "bc-authorize", assertion, now=now
    )
    binding_message = form.get("binding_message")
    if binding_message is not None:
        if len(binding_message) > 200:
            raise InvalidRequest("binding_message is limited to 200 characters.")
        try:
            check_display_text(binding_message, "binding_message")
        except ValueError as exc:
            raise InvalidRequest(f"{exc}.") from None
    standing = form.get("standing", "false")
    if standing not in ("true", "false"):
        raise InvalidRequest("standing must be true or false.")
    expiry = _bounded_int(form, "requested_expiry", *EXPIRY)
    lifetime = _bounded_int(form, "grant_lifetime", *GRANT_LIFETIME)
    depth = _bounded_int(form, "max_delegation_depth", 0, 0, MAX_DEPTH)
    async with registry.sessions() as session, session.begin():
        details = await parse_details(SessionDb(session), form.require("authorization_details"))
        human = await people.active_human(session, form.get("login_hint") or agent.owner_id)
        if (
            human is None
            or agent.owner_id is None
            or not await requesters.may_ask(session, human, agent.owner_id)
        ):
            raise UnknownUserId()
        grant_request = await open_request(
            session,
            now=now,
            audit_data={
                "human": human.id,
                "types": sorted({d.type for d in details}),
                "standing": standing == "true",
            },
            auth_req_id=secrets.token_urlsafe(32),
            agent_id=agent.id,
            human_id=human.id,
            authorization_details=[d.to_dict() for d in details],
            binding_message=binding_message,
            max_delegation_depth=depth,
            grant_lifetime=lifetime,
            standing=standing == "true",
            expires_at=now + expiry,
            interval=POLL_INTERVAL,
        )
    body = {
        "auth_req_id": grant_request.auth_req_id,
        "expires_in": expiry,
        "interval": POLL_INTERVAL,
    }
    return json_response(body)
