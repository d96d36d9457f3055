"""``/authorize``: the authorization-code grant's front channel (RFC 6749 §4.1, RFC 7636).

``GET`` checks the request (``services.authorization``), sends a human without a session to
the passkey login (which comes back here), records the request and shows the consent page,
``/ui/requests/{id}``: the same page, ceremony and grant as a CIBA request. ``POST`` with a
form body is the same request: it is answered with a redirect to the ``GET``.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.api.bodies import read_body
from app.core.errors import InvalidClient, InvalidRequest
from app.core.params import FormParams, parse_form
from app.registry.routes.ui_pages import problem_page
from app.registry.services.approvals import open_request
from app.registry.services.authorization import (
    REQUEST_TTL,
    PageError,
    RedirectError,
    check_request,
    new_request_id,
)
from app.registry.services.clients import find_client, refresh_client_document
from app.registry.services.sessions import optional_session
from app.registry.state import NowDep, RegistryDep, RegistryState
from app.store.sql import connect

router = APIRouter()
NO_STORE = {"Cache-Control": "no-store"}


def _params(raw: bytes) -> FormParams:
    try:
        return parse_form(raw)
    except InvalidRequest as exc:
        raise PageError("The sign-in link is not valid", exc.description) from None


async def _authorize(
    request: Request, registry: RegistryState, params: FormParams, now: int
) -> Response:
    client_id = params.get("client_id")
    if client_id is None:
        raise PageError("The sign-in link is not valid", "The request names no client_id.")
    try:
        await refresh_client_document(
            registry.database, registry.settings, registry.documents, client_id, now
        )
    except InvalidClient as exc:  # a metadata document that cannot be used
        raise PageError("This application cannot be used", exc.description) from None
    async with connect(registry.engine) as db:
        client = await find_client(db, client_id)
        if client is None:
            raise PageError("Unknown application", "No registered application has this client_id.")
        checked = await check_request(db, client, params)
    current = await optional_session(registry.database, request, now)
    if current is None:
        back = f"/authorize?{request.url.query}"
        return RedirectResponse(f"/ui/login?next={quote(back, safe='')}", 303, NO_STORE)
    human_id = current.human_id
    async with registry.sessions() as session, session.begin():
        row = await open_request(
            session,
            now=now,
            audit_data={
                "human": human_id,
                "flow": "authorization_code",
                "types": sorted({d.type for d in checked.details}),
            },
            auth_req_id=new_request_id(),
            agent_id=client.id,
            human_id=human_id,
            authorization_details=[d.to_dict() for d in checked.details],
            binding_message=None,
            max_delegation_depth=0,
            grant_lifetime=registry.settings.authorization_grant_lifetime,
            expires_at=now + REQUEST_TTL,
            interval=0,
            authorization_request=checked.document,
        )
    return RedirectResponse(f"/ui/requests/{row.auth_req_id}", 303, NO_STORE)


async def _answer(request: Request, registry: RegistryState, raw: bytes, now: int) -> Response:
    await registry.limits.per_address(request, "authorize")
    try:
        return await _authorize(request, registry, _params(raw), now)
    except PageError as exc:
        return problem_page(request, exc.heading, exc.message, 400)
    except RedirectError as exc:
        return RedirectResponse(exc.location(registry.settings.issuer), 303, NO_STORE)


@router.get("/authorize")
async def authorize(request: Request, registry: RegistryDep, now: NowDep) -> Response:
    return await _answer(request, registry, request.scope["query_string"], now)


@router.post("/authorize")
async def authorize_form(request: Request, registry: RegistryDep) -> Response:
    if request.headers.get("content-type", "").split(";")[0].strip() != (
        "application/x-www-form-urlencoded"
    ):
        return problem_page(
            request, "The sign-in request is not valid", "Send a form-encoded body.", 400
        )
    raw = await read_body(request)
    try:
        params = _params(raw)
    except PageError as exc:
        return problem_page(request, exc.heading, exc.message, 400)
    pairs = [*params.single.items()]
    pairs += [(name, value) for name, values in params.multi.items() for value in values]
    query = urlencode(pairs)
    return RedirectResponse(f"/authorize?{query}", 303, NO_STORE)
