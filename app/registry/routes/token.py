"""``POST /token``: parse form → authenticate client (a failure counts against the address)
→ check DPoP → admit (the client's rate and single-use ``jti``s, one Redis round trip) →
grant handler."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.api.bodies import read_form
from app.api.errors import json_response
from app.api.metrics import METRICS
from app.core.dpop import DPoPProof
from app.core.errors import (
    InvalidDPoPProof,
    InvalidRequest,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from app.core.params import FormParams
from app.registry.grants import Grant, grant_types, grants
from app.registry.services.clients import admit_client, agent_keys, verify_agent
from app.registry.services.limits import counting_failures
from app.registry.services.proofs import proof_replay_key, replayed_proof, verify_dpop
from app.registry.state import RegistryDep
from app.store.sql import connect
from app.store.token_store import AgentRecord

router = APIRouter()


def _grant(agent: AgentRecord, form: FormParams) -> Grant:
    """The requested grant, if the server has it and this client registered for it; a
    parameter it may not repeat was sent once."""
    grant = grants().get(form.require("grant_type"))
    if grant is None:
        raise UnsupportedGrantType()
    if grant.grant_type not in agent.client_metadata.get("grant_types", grant_types()):
        raise UnauthorizedClient()
    repeated = {name for name in form.multi if len(form.getlist(name)) > 1} - grant.repeatable
    if repeated:
        raise InvalidRequest(f"Parameter {sorted(repeated)[0]} must not be repeated.")
    return grant


def _check_key_is_registered(agent: AgentRecord, proof: DPoPProof) -> None:
    """Policy (docs/protocol.md "DPoP"): the DPoP key is one of the agent's registered keys, which
    ties sender-constraining to client authentication (RFC 9449 §11.11)."""
    if proof.jkt not in {key.jkt for key in agent_keys(agent).values()}:
        raise InvalidDPoPProof("The DPoP key is not one of the client's registered keys.")


@router.post("/token")
async def token(request: Request, registry: RegistryDep) -> Response:
    form = await read_form(request)
    async with counting_failures(registry, request, "token"), connect(registry.engine) as db:
        agent, assertion = await verify_agent(
            registry, db, form, basic="authorization" in request.headers
        )
    grant = _grant(agent, form)
    proof = verify_dpop(registry, request, "/token")
    _check_key_is_registered(agent, proof)
    (proof_new,) = await admit_client(
        registry, agent.id, "token", assertion, proof_replay_key(registry, proof)
    )
    if not proof_new:
        raise replayed_proof()
    body = await grant.handle(registry, agent, proof, form)
    METRICS.inc(
        "agentauth_tokens_issued_total",
        "Access tokens issued by grant type.",
        grant_type=grant.metric,
    )
    return json_response(body)
