"""``POST /token``, served on the hot route (``registry/fast_path.py``): parse form →
authenticate client (a failure counts against the address)
→ check DPoP (when the grant or the client requires it, or a proof is sent)
→ admit (the client's rate and single-use ``jti``s, one Redis round trip) →
grant handler."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.api import metrics
from app.api.bodies import read_form
from app.api.errors import json_response
from app.core.dpop import DPoPProof
from app.core.errors import (
    InvalidDPoPProof,
    InvalidRequest,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from app.core.params import FormParams
from app.registry.grants import Grant, grant_types, grants
from app.registry.services.clients import (
    admit_client,
    agent_keys,
    authenticate_client,
    refresh_client_document,
)
from app.registry.services.proofs import proof_replay_key, replayed_proof, verify_dpop
from app.registry.state import RegistryDep, RegistryState
from app.store.sql import connect
from app.store.token_store import AgentRecord


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


def _check_proof_key(agent: AgentRecord, proof: DPoPProof) -> None:
    """RFC 9449 §5: the proof's key is what the tokens are bound to, whatever key the client
    authenticates with. A client that registered ``dpop_key_policy: registered`` asked for
    the stricter rule: its proofs use one of its registered keys."""
    if agent.client_metadata.get("dpop_key_policy") != "registered":
        return
    if proof.jkt not in {key.jkt for key in agent_keys(agent).values()}:
        raise InvalidDPoPProof("The DPoP key is not one of the client's registered keys.")


def _proof(
    registry: RegistryState, request: Request, agent: AgentRecord, grant: Grant, now: int
) -> DPoPProof | None:
    """The request's DPoP proof; required by most grants and by clients that registered
    ``dpop_bound_access_tokens: true`` (RFC 9449 §5.2)."""
    if "dpop" not in request.headers:
        if grant.dpop_required or agent.client_metadata.get("dpop_bound_access_tokens", True):
            raise InvalidDPoPProof("A DPoP proof is required.")
        return None
    proof = verify_dpop(registry.settings, registry.nonces, request, "/token", now)
    _check_proof_key(agent, proof)
    return proof


async def token(request: Request, registry: RegistryDep) -> Response:
    """One reading of the clock for the whole request: authentication, the proof, the
    client's rate and single-use values, and the grant all judge the same instant."""
    now = registry.now()
    form = await read_form(request)
    settings = registry.settings
    async with registry.limits.counting_failures(request, "token"):
        await refresh_client_document(
            registry.database, settings, registry.documents, form.get("client_id"), now
        )
        async with connect(registry.engine) as db:
            agent, assertion = await authenticate_client(
                settings, db, form, request.headers.get("authorization"), now=now
            )
    grant = _grant(agent, form)
    proof = _proof(registry, request, agent, grant, now)
    replay = [] if proof is None else [proof_replay_key(proof, settings.dpop_max_age)]
    firsts = await admit_client(
        registry.limits, settings.clock_skew, agent.id, "token", assertion, *replay, now=now
    )
    if not all(firsts):
        raise replayed_proof()
    body = await grant.handle(registry.grant_ports(), agent, proof, form, now)
    metrics.TOKENS_ISSUED.labels(grant.metric).inc()
    return json_response(body)
