"""``authorization_code`` grant (RFC 6749 §4.1.3, RFC 7636 §4.5-§4.6, RFC 8707 §2.2).

The code is claimed by one conditional UPDATE inside the issuing transaction: of N parallel
redemptions one wins, and a redemption that fails a check (client, expiry, redirect URI,
PKCE, DPoP key, resource) rolls the claim back, so a bad request changes nothing. A second
redemption of a code that was redeemed is reuse: the grant it made is revoked with every
token issued from it (RFC 6749 §4.1.2, OAuth 2.1 §4.1.3).
"""

from __future__ import annotations

from typing import Any

from app.core.capabilities import load_details
from app.core.dpop import DPoPProof
from app.core.errors import InvalidDPoPProof, InvalidGrant
from app.core.params import FormParams
from app.core.urns import AUTHORIZATION_CODE_GRANT, REFRESH_GRANT
from app.registry.grants import Grant, GrantPorts
from app.registry.grants.common import check_bearer_accepted, choose_audience
from app.registry.services.admin import revoke_grant
from app.registry.services.authorization import pkce_matches
from app.registry.services.common import secret_hash
from app.registry.services.issuance import issue_token_set
from app.store import token_store
from app.store.sql import transaction
from app.store.token_store import AgentRecord, CodeRecord

GRANT_TYPE = AUTHORIZATION_CODE_GRANT


def _check(code: CodeRecord, agent: AgentRecord, form: FormParams, now: int) -> None:
    request = code.request
    if code.client_id != agent.id:
        raise InvalidGrant("The code was issued to another client.")
    if code.expires_at <= now:
        raise InvalidGrant("The code has expired.")
    redirect_uri = form.get("redirect_uri")
    if (request.get("redirect_uri_sent") or redirect_uri is not None) and (
        redirect_uri != request.get("redirect_uri")
    ):
        raise InvalidGrant("redirect_uri does not match the authorization request.")
    if not pkce_matches(form.require("code_verifier"), str(request.get("code_challenge"))):
        raise InvalidGrant("The code_verifier does not match the code_challenge.")


def _binding(request: dict[str, Any], proof: DPoPProof | None) -> str | None:
    """RFC 9449 §10: a request that named ``dpop_jkt`` is redeemed with that key."""
    wanted = request.get("dpop_jkt")
    if wanted is not None and (proof is None or proof.jkt != wanted):
        raise InvalidDPoPProof("The DPoP key is not the dpop_jkt of the authorization request.")
    return None if proof is None else proof.jkt


async def handle(
    ports: GrantPorts, agent: AgentRecord, proof: DPoPProof | None, form: FormParams, now: int
) -> dict[str, Any]:
    code_hash = secret_hash(form.require("code"))
    form.require("code_verifier")
    async with transaction(ports.database.engine) as db:
        code = await token_store.claim_code(db, code_hash, now)
        if code is not None:
            _check(code, agent, form, now)
            jkt = _binding(code.request, proof)
            grant = await token_store.grant(db, code.grant_id)
            if grant is None or not grant.active(now):
                raise InvalidGrant("The grant is no longer active.")
            approved = list(code.request.get("resources") or [])
            if not approved:
                raise InvalidGrant("The authorization request named no resource.")
            audience = choose_audience(form, approved)
            if jkt is None:
                await check_bearer_accepted(db, audience)
            public = agent.auth_method == "none"
            return await issue_token_set(
                ports.signer,
                db,
                grant,
                actor=agent.id,
                jkt=jkt,
                audience=audience,
                details=load_details(grant.authorization_details),
                family_id=None,
                now=now,
                event="token.issued",
                data={"grant_type": "authorization_code"},
                refresh=REFRESH_GRANT in agent.client_metadata.get("grant_types", []),
                # A public client's refresh tokens are bound to its DPoP key (RFC 9449 §5).
                refresh_jkt=jkt if public else None,
            )
        reused = await token_store.used_code_grant(db, code_hash)
    if reused is not None:
        await revoke_grant(
            ports.database,
            ports.events,
            reused,
            actor=agent.id,
            now=now,
            reason="authorization code reuse",
        )
    raise InvalidGrant("The code is invalid, expired or already used.")


GRANT = Grant(
    grant_type=GRANT_TYPE,
    metric="authorization_code",
    parameters=frozenset({"code", "redirect_uri", "code_verifier", "resource", "client_id"}),
    handle=handle,
    order=3,
    dpop_required=False,
)
