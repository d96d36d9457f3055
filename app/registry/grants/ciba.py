"""OpenID CIBA poll mode at the token endpoint (CIBA §10-§11)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from app.core.capabilities import load_details
from app.core.dpop import DPoPProof
from app.core.errors import (
    AccessDenied,
    AuthorizationPending,
    ExpiredToken,
    InvalidGrant,
    SlowDown,
)
from app.core.params import FormParams
from app.registry.grants.common import choose_audience
from app.registry.services import audit
from app.registry.services.issuance import grant_claims, new_refresh_token, record_access_token
from app.registry.state import Registry
from app.store.models import Agent, Grant, GrantRequest

GRANT_TYPE = "urn:openid:params:grant-type:ciba"


async def _poll(registry: Registry, agent: Agent, auth_req_id: str, now: int) -> GrantRequest:
    """Record the poll in its own transaction, then judge it (pending, too fast, ...)."""
    async with registry.sessions() as session, session.begin():
        request = await session.get(GrantRequest, auth_req_id, with_for_update=True)
        if request is None or request.agent_id != agent.id:
            raise InvalidGrant("The auth_req_id is unknown.")
        previous = request.last_polled_at
        request.last_polled_at = now
    if request.status == "denied":
        raise AccessDenied("The human denied the request.")
    if request.status == "pending":
        if request.expires_at <= now:
            raise ExpiredToken()
        if previous is not None and now - previous < request.interval:
            raise SlowDown()
        raise AuthorizationPending()
    if request.status != "approved" or request.grant_id is None:
        raise InvalidGrant("The request can no longer be used.")
    return request


async def handle(
    registry: Registry, agent: Agent, proof: DPoPProof, form: FormParams
) -> dict[str, Any]:
    now = registry.now()
    request = await _poll(registry, agent, form.require("auth_req_id"), now)
    async with registry.sessions() as session, session.begin():
        claimed = await session.execute(
            update(GrantRequest)
            .where(
                GrantRequest.auth_req_id == request.auth_req_id,
                GrantRequest.tokens_issued_at.is_(None),
            )
            .values(tokens_issued_at=now)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            raise InvalidGrant("Tokens for this auth_req_id were already issued.")
        grant = (await session.scalars(select(Grant).where(Grant.id == request.grant_id))).one()
        if grant.status != "active" or grant.expires_at <= now:
            raise InvalidGrant("The grant is no longer active.")
        details = load_details(grant.authorization_details)
        audience = choose_audience(form, details)
        claims = grant_claims(
            registry, grant, jkt=proof.jkt, audience=audience, details=details, now=now
        )
        issued = await record_access_token(registry, session, claims, None)
        refresh = await new_refresh_token(session, grant, None, now)
        await audit.append(
            session,
            "token.issued",
            actor=agent.id,
            subject=grant.id,
            now=now,
            data={"grant_type": "ciba", "jti": claims.jti, "aud": audience},
        )
    return {**issued.response(now), "refresh_token": refresh}
