"""The client-credentials grant (RFC 6749 §4.4) on a standing grant.

An unattended agent gets an access token for a grant a human approved with a passkey as
standing (``/bc-authorize`` with ``standing=true``): ``sub`` is that human, ``act`` the agent,
the capabilities those the human approved for the requested ``resource`` (narrowed by
``authorization_details`` if sent). No refresh token (§4.4.3): the agent asks again. The
token ends with the grant. A public client cannot use it (§4.4: confidential clients only).
"""

from __future__ import annotations

from typing import Any

from app.core.capabilities import for_audience, load_details, narrow_details
from app.core.dpop import DPoPProof
from app.core.errors import InvalidTarget, UnauthorizedClient
from app.core.params import FormParams
from app.core.urns import CLIENT_CREDENTIALS_GRANT
from app.registry.grants import Grant, GrantPorts
from app.registry.grants.common import (
    check_bearer_accepted,
    choose_audience,
    locations,
    requested_resources,
)
from app.registry.services.issuance import issue_token_set
from app.registry.services.resource_servers import parse_details
from app.store import token_store
from app.store.sql import transaction
from app.store.token_store import AgentRecord, GrantRecord


def _covering(standing: list[GrantRecord], form: FormParams) -> GrantRecord:
    """The newest standing grant with the requested ``resource`` among its locations (any
    grant when none is named)."""
    wanted = requested_resources(form)
    if not wanted:
        return standing[0]
    for grant in standing:
        if wanted <= set(locations(load_details(grant.authorization_details))):
            return grant
    raise InvalidTarget("No standing grant of this client covers the resource.")


async def handle(
    ports: GrantPorts, agent: AgentRecord, proof: DPoPProof | None, form: FormParams, now: int
) -> dict[str, Any]:
    if agent.auth_method == "none":
        raise UnauthorizedClient("Client credentials are for confidential clients only.")
    async with transaction(ports.database.engine) as db:
        standing = await token_store.standing_grants(db, agent.id, now)
        if not standing:
            raise UnauthorizedClient("The client has no standing grant.")
        grant = _covering(standing, form)
        details = load_details(grant.authorization_details)
        audience = choose_audience(form, locations(details))
        jkt = None if proof is None else proof.jkt
        if jkt is None:
            await check_bearer_accepted(db, audience)
        available = for_audience(details, audience)
        if "authorization_details" in form:
            available = narrow_details(
                available, await parse_details(db, form["authorization_details"])
            )
        return await issue_token_set(
            ports.signer,
            db,
            grant,
            actor=agent.id,
            jkt=jkt,
            audience=audience,
            details=available,
            family_id=None,
            now=now,
            event="token.issued",
            data={"grant_type": "client_credentials"},
            scope=grant.scope,
            refresh=False,
        )


GRANT = Grant(
    grant_type=CLIENT_CREDENTIALS_GRANT,
    metric="client_credentials",
    parameters=frozenset({"resource", "authorization_details"}),
    handle=handle,
    order=4,
    dpop_required=False,
)
