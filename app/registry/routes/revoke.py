"""``POST /revoke`` (RFC 7009). Unknown, foreign, expired or already revoked tokens get 200 and
change nothing (no token-existence oracle: docs/api.md "POST /revoke")."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.api.bodies import read_form
from app.api.errors import json_response
from app.registry.services import audit, revocation
from app.registry.services.clients import (
    admit_client,
    authenticate_client,
    refresh_client_document,
)
from app.registry.state import RegistryDep
from app.store.sql import connect

router = APIRouter()


@router.post("/revoke")
async def revoke(request: Request, registry: RegistryDep) -> Response:
    """Form → client authentication on a read connection (no write lock for a caller that
    fails it; a failure counts against the address) → client rate and assertion ``jti`` →
    the revocation."""
    now = registry.now()
    form = await read_form(request)
    settings = registry.settings
    async with registry.limits.counting_failures(request, "revoke"):
        await refresh_client_document(
            registry.database, settings, registry.documents, form.get("client_id"), now
        )
        async with connect(registry.engine) as db:
            agent, assertion = await authenticate_client(
                settings, db, form, request.headers.get("authorization"), now=now
            )
    token = form.require("token")
    await admit_client(registry.limits, settings.clock_skew, agent.id, "revoke", assertion, now=now)
    async with registry.sessions() as session, session.begin():
        rows = await revocation.revoke_presented_token(
            registry.signer, session, agent.id, token, now
        )
        if rows:
            await audit.append(
                session,
                "token.revoked",
                actor=agent.id,
                subject=rows[0].subject,
                now=now,
                data={"kind": rows[0].kind},
            )
    await revocation.publish(registry.cache, registry.database, rows, now)
    return json_response({})
