"""``refresh_token`` grant: rotation on every use, reuse revokes the whole grant (RFC 9700
§4.14.2). The rotation is one conditional UPDATE, so N parallel uses of one token give exactly
one success; every other use is reuse."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from app.core.capabilities import for_audience, load_details, narrow_details
from app.core.dpop import DPoPProof
from app.core.errors import InvalidGrant
from app.core.params import FormParams
from app.registry.grants.common import choose_audience
from app.registry.services import audit, revocation
from app.registry.services.common import secret_hash
from app.registry.services.issuance import grant_claims, new_refresh_token, record_access_token
from app.registry.services.resource_servers import parse_details
from app.registry.state import Registry
from app.store.models import Agent, Grant, RefreshToken

GRANT_TYPE = "refresh_token"


async def _revoke_after_reuse(registry: Registry, grant_id: str, agent: Agent, now: int) -> None:
    async with registry.sessions() as session, session.begin():
        grant = await session.get(Grant, grant_id, with_for_update=True)
        rows = await revocation.revoke_grant(session, grant, now) if grant else []
        if rows:
            await audit.append(
                session,
                "grant.revoked",
                actor=agent.id,
                subject=grant_id,
                now=now,
                data={"reason": "refresh token reuse"},
            )
    await revocation.publish(registry, rows)


async def handle(
    registry: Registry, agent: Agent, proof: DPoPProof, form: FormParams
) -> dict[str, Any]:
    now = registry.now()
    token_hash = secret_hash(form.require("refresh_token"))
    async with registry.sessions() as session, session.begin():
        stored = await session.get(RefreshToken, token_hash)
        if stored is None or stored.agent_id != agent.id:  # TOK-19: another client's token
            raise InvalidGrant("The refresh token is invalid.")
        rotated = await session.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == token_hash, RefreshToken.status == "active")
            .values(status="rotated", used_at=now)
        )
        reused = rotated.rowcount != 1  # type: ignore[attr-defined]
        grant = await session.get(Grant, stored.grant_id)
        if not reused and grant is not None and grant.status == "active" and grant.expires_at > now:
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
            refresh = new_refresh_token(session, grant, stored.family_id, now)
            await audit.append(
                session,
                "token.refreshed",
                actor=agent.id,
                subject=grant.id,
                now=now,
                data={"jti": claims.jti, "aud": audience},
            )
            return {**issued.response(now), "refresh_token": refresh}
    if reused:
        await _revoke_after_reuse(registry, stored.grant_id, agent, now)
    raise InvalidGrant("The refresh token is invalid, expired, revoked or already used.")
