"""OpenID CIBA poll mode at the token endpoint (CIBA §10-§11)."""

from __future__ import annotations

from typing import Any

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
from app.core.urns import CIBA_GRANT
from app.registry.grants import Grant, GrantPorts
from app.registry.grants.common import choose_audience, locations, proof_of
from app.registry.services.issuance import issue_token_set
from app.store import token_store
from app.store.sql import transaction
from app.store.token_store import AgentRecord, PollRecord

GRANT_TYPE = CIBA_GRANT


async def _poll(ports: GrantPorts, agent: AgentRecord, auth_req_id: str, now: int) -> PollRecord:
    """Record the poll in its own transaction (kept whatever the answer), then judge it."""
    async with transaction(ports.database.engine) as db:
        request = await token_store.record_poll(db, auth_req_id, agent.id, now)
    if request is None:
        raise InvalidGrant("The auth_req_id is unknown.")
    if request.status == "denied":
        raise AccessDenied("The human denied the request.")
    if request.status == "pending":
        if request.expires_at <= now:
            raise ExpiredToken()
        if request.previous_poll is not None and now - request.previous_poll < request.interval:
            raise SlowDown()
        raise AuthorizationPending()
    if request.status != "approved" or request.grant_id is None:
        raise InvalidGrant("The request can no longer be used.")
    return request


async def handle(
    ports: GrantPorts, agent: AgentRecord, proof: DPoPProof | None, form: FormParams, now: int
) -> dict[str, Any]:
    request = await _poll(ports, agent, form.require("auth_req_id"), now)
    async with transaction(ports.database.engine) as db:
        if not await token_store.claim_tokens(db, request.auth_req_id, now):
            raise InvalidGrant("Tokens for this auth_req_id were already issued.")
        grant = await token_store.grant(db, request.grant_id or "")
        if grant is None or not grant.active(now):
            raise InvalidGrant("The grant is no longer active.")
        details = load_details(grant.authorization_details)
        audience = choose_audience(form, locations(details))
        return await issue_token_set(
            ports.signer,
            db,
            grant,
            actor=agent.id,
            jkt=proof_of(proof).jkt,
            audience=audience,
            details=details,
            family_id=None,
            now=now,
            event="token.issued",
            data={"grant_type": "ciba"},
        )


GRANT = Grant(
    grant_type=GRANT_TYPE,
    metric="ciba",
    parameters=frozenset({"auth_req_id", "resource"}),
    handle=handle,
    order=0,
)
