"""``refresh_token`` grant: rotation on every use, reuse revokes the whole grant (RFC 9700
§4.14.2). The rotation is one conditional UPDATE, so N parallel uses of one token give exactly
one success; every other use is reuse."""

from __future__ import annotations

from typing import Any

from app.core.capabilities import for_audience, load_details, narrow_details
from app.core.dpop import DPoPProof
from app.core.errors import InvalidDPoPProof, InvalidGrant
from app.core.params import FormParams
from app.core.urns import REFRESH_GRANT
from app.registry.grants import Grant, GrantPorts
from app.registry.grants.common import (
    check_bearer_accepted,
    choose_audience,
    locations,
    proof_of,
)
from app.registry.services.admin import revoke_grant
from app.registry.services.common import secret_hash
from app.registry.services.issuance import issue_token_set
from app.registry.services.resource_servers import parse_details
from app.store import token_store
from app.store.sql import Db, transaction
from app.store.token_store import AgentRecord, Rotated

GRANT_TYPE = REFRESH_GRANT


class _Reused(Exception):
    """The refresh token was used before (or revoked): its grant must go."""

    def __init__(self, grant_id: str) -> None:
        super().__init__(grant_id)
        self.grant_id = grant_id


async def _rotate(db: Db, agent: AgentRecord, token_hash: str, now: int) -> Rotated:
    """Mark the token rotated; raises :class:`_Reused` when it was already used or revoked,
    and ``invalid_grant`` for unknown and foreign tokens."""
    rotated = await token_store.rotate_refresh_token(db, token_hash, agent.id, now)
    if rotated is not None:
        return rotated
    owner = await token_store.refresh_token_owner(db, token_hash)
    if owner is None or owner[0] != agent.id:  # TOK-19: another client's token
        raise InvalidGrant("The refresh token is invalid.")
    raise _Reused(owner[1])


def _binding(agent: AgentRecord, rotated: Rotated, proof: DPoPProof | None) -> str | None:
    """The DPoP key of the new access token. A family bound to a key (a public client's)
    needs a proof by that key (RFC 9449 §5); an agent's family is bound to its client
    authentication and needs a proof by any key; a Bearer family stays Bearer."""
    if rotated.jkt is not None:
        if proof is None or proof.jkt != rotated.jkt:
            raise InvalidDPoPProof("The refresh token is bound to another DPoP key.")
        return proof.jkt
    if agent.auth_method == "private_key_jwt":
        return proof_of(proof).jkt
    return None if proof is None else proof.jkt


async def handle(
    ports: GrantPorts, agent: AgentRecord, proof: DPoPProof | None, form: FormParams, now: int
) -> dict[str, Any]:
    token_hash = secret_hash(form.require("refresh_token"))
    try:
        async with transaction(ports.database.engine) as db:
            rotated = await _rotate(db, agent, token_hash, now)
            family_id, grant = rotated.family_id, rotated.grant
            jkt = _binding(agent, rotated, proof)
            if grant.active(now):
                details = load_details(grant.authorization_details)
                audience = choose_audience(form, locations(details))
                if jkt is None:
                    await check_bearer_accepted(db, audience)
                available = for_audience(details, audience)
                if "authorization_details" in form:
                    requested = await parse_details(db, form["authorization_details"])
                    available = narrow_details(available, requested)
                return await issue_token_set(
                    ports.signer,
                    db,
                    grant,
                    actor=agent.id,
                    jkt=jkt,
                    audience=audience,
                    details=available,
                    family_id=family_id,
                    now=now,
                    event="token.refreshed",
                    data={},
                    refresh_jkt=rotated.jkt,
                )
    except _Reused as reused:  # the whole grant goes, in a transaction of its own
        await revoke_grant(
            ports.database,
            ports.events,
            reused.grant_id,
            actor=agent.id,
            now=now,
            reason="refresh token reuse",
        )
    raise InvalidGrant("The refresh token is invalid, expired, revoked or already used.")


GRANT = Grant(
    grant_type=GRANT_TYPE,
    metric="refresh_token",
    parameters=frozenset({"refresh_token", "resource", "authorization_details", "scope"}),
    handle=handle,
    order=1,
    dpop_required=False,
)
