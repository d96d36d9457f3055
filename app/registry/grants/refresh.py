"""``refresh_token`` grant: rotation on every use, reuse revokes the whole grant (RFC 9700
§4.14.2). The rotation is one conditional UPDATE, so N parallel uses of one token give exactly
one success; every other use is reuse."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.capabilities import for_audience, load_details, narrow_details
from app.core.dpop import DPoPProof
from app.core.errors import InvalidGrant
from app.core.params import FormParams
from app.registry.grants.common import choose_audience
from app.registry.services import audit
from app.registry.services.admin import revoke_grant
from app.registry.services.common import secret_hash
from app.registry.services.issuance import (
    REFRESH_TOKENS,
    grant_claims,
    new_refresh_token,
    record_access_token,
)
from app.registry.services.resource_servers import parse_details
from app.registry.state import Registry
from app.store.models import Agent, Grant, RefreshToken

GRANT_TYPE = "refresh_token"


async def _rotate(
    session: AsyncSession, agent: Agent, token_hash: str, now: int
) -> tuple[str, str | None]:
    """Mark the token rotated in one statement. Returns ``(grant_id, family_id)`` on first use
    and ``(grant_id, None)`` when it was already used or revoked (reuse); unknown and foreign
    tokens raise ``invalid_grant``."""
    rotated = await session.execute(
        update(REFRESH_TOKENS)
        .where(
            REFRESH_TOKENS.c.token_hash == token_hash,
            REFRESH_TOKENS.c.agent_id == agent.id,
            REFRESH_TOKENS.c.status == "active",
        )
        .values(status="rotated", used_at=now)
        .returning(REFRESH_TOKENS.c.grant_id, REFRESH_TOKENS.c.family_id)
    )
    row = rotated.first()
    if row is not None:
        return str(row[0]), str(row[1])
    stored = await session.get(RefreshToken, token_hash)
    if stored is None or stored.agent_id != agent.id:  # TOK-19: another client's token
        raise InvalidGrant("The refresh token is invalid.")
    return stored.grant_id, None


async def handle(
    registry: Registry, agent: Agent, proof: DPoPProof, form: FormParams
) -> dict[str, Any]:
    now = registry.now()
    token_hash = secret_hash(form.require("refresh_token"))
    async with registry.sessions() as session, session.begin():
        grant_id, family_id = await _rotate(session, agent, token_hash, now)
        grant = await session.get(Grant, grant_id) if family_id is not None else None
        if grant is not None and grant.status == "active" and grant.expires_at > now:
            details = load_details(grant.authorization_details)
            audience = choose_audience(form, details)
            available = for_audience(details, audience)
            if "authorization_details" in form:
                requested = await parse_details(session, form["authorization_details"])
                available = narrow_details(available, requested)
            claims = grant_claims(
                registry, grant, jkt=proof.jkt, audience=audience, details=available, now=now
            )
            issued = await record_access_token(registry, session, claims, None)
            refresh = await new_refresh_token(session, grant, family_id, now)
            await audit.append(
                session,
                "token.refreshed",
                actor=agent.id,
                subject=grant.id,
                now=now,
                data={"jti": claims.jti, "aud": audience},
            )
            return {**issued.response(now), "refresh_token": refresh}
    if family_id is None:
        await revoke_grant(registry, grant_id, actor=agent.id, reason="refresh token reuse")
    raise InvalidGrant("The refresh token is invalid, expired, revoked or already used.")
