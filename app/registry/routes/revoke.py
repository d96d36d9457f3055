"""``POST /revoke`` (RFC 7009). Unknown, foreign, expired or already revoked tokens get 200 and
change nothing (PIN P7: no token-existence oracle)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from app.api.bodies import read_form
from app.api.errors import json_response
from app.core.errors import InvalidToken
from app.registry.services import audit, revocation
from app.registry.services.clients import authenticate_agent
from app.registry.services.common import secret_hash
from app.registry.services.issuance import verify_own_token
from app.registry.state import Registry, RegistryDep
from app.store.models import AccessToken, Grant, RefreshToken, Revocation
from app.store.sql import SessionDb
from app.store.token_store import AgentRecord

router = APIRouter()


async def _revoke_refresh(
    session: AsyncSession, agent: AgentRecord, token: str, now: int
) -> list[Revocation]:
    stored = await session.get(RefreshToken, secret_hash(token))
    if stored is None or stored.agent_id != agent.id:
        return []
    grant = await session.get(Grant, stored.grant_id, with_for_update=True)
    return await revocation.revoke_grant(session, grant, now) if grant else []


async def _revoke_access(
    registry: Registry, session: AsyncSession, agent: AgentRecord, token: str, now: int
) -> list[Revocation]:
    try:
        claims = verify_own_token(registry, token, now)
    except InvalidToken:
        return []
    stored = await session.get(AccessToken, claims.jti)
    if stored is None or stored.client_id != agent.id:
        return []
    return await revocation.revoke_access_token(session, stored, now)


@router.post("/revoke")
async def revoke(request: Request, registry: RegistryDep) -> Response:
    form = await read_form(request)
    now = registry.now()
    async with registry.sessions() as session, session.begin():
        agent = await authenticate_agent(registry, SessionDb(session), form)
        token = form.require("token")
        rows = await _revoke_refresh(session, agent, token, now)
        if not rows:
            rows = await _revoke_access(registry, session, agent, token, now)
        if rows:
            await audit.append(
                session,
                "token.revoked",
                actor=agent.id,
                subject=rows[0].subject,
                now=now,
                data={"kind": rows[0].kind},
            )
    await revocation.publish(registry, rows)
    return json_response({})
