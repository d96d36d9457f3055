"""``/introspect`` and ``/verify`` at the verifier: the cached token verification and the
revocation view of this process around the core's decisions (:func:`app.core.introspection.
is_active`, :func:`app.core.decision.decide`), then the admission recorded in one atomic
cache call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import orjson

from app.api.errors import unavailable
from app.cache.base import CacheUnavailable, Outcome, Record
from app.core.decision import Admission, Denial, VerifyRequest, decide
from app.core.errors import InvalidToken
from app.core.introspection import denial, is_active
from app.core.tokens import TokenExpired
from app.verifier.callers import Authenticated
from app.verifier.database import StoreUnavailable
from app.verifier.state import VerifierState

INACTIVE = b'{"active":false}'


async def introspect(
    verifier: VerifierState,
    caller_resource: str,
    token: str,
    *,
    now: int,
    bearer_accepted: bool = False,
) -> bytes:
    """The RFC 7662 response body for ``token`` as seen by the caller: a Bearer token is
    inactive for a caller that requires DPoP."""
    try:
        verified = await verifier.tokens.verify(token, now)
    except InvalidToken:
        return INACTIVE
    if not is_active(
        verified.claims,
        caller_resource=caller_resource,
        is_revoked=verifier.is_revoked,
        bearer_accepted=bearer_accepted,
    ):
        return INACTIVE
    return verified.active_body


async def _record(verifier: VerifierState, admission: Admission) -> Outcome:
    """One atomic cache call; the cold paths (seed a lost budget counter from the ledger,
    recover from a cache that lost its data) retry it once each."""
    record = Record(
        proof_iat=admission.at if admission.proof is None else admission.proof.iat,
        once=[] if admission.once is None else [admission.once],
        rate=admission.rate,
        spend=admission.spend,
        event=admission.spend_event(),
        at=admission.at,
    )
    try:
        outcome = await verifier.cache.admit_request(record)
        if outcome == "lost":
            await verifier.cache.ensure_epoch(admission.at)
            outcome = await verifier.cache.admit_request(record)
        if outcome == "seed" and admission.spend is not None:
            # Notices a cache that lost its data (its recent spends restored first).
            await verifier.cache.ensure_epoch(admission.at)
            ledger = admission.spend.ledger
            # A replica must hold the ledger as of the last heartbeat before it is summed.
            await verifier.store.require_position(verifier.revocations.position)
            # Restored spends the ledger lacks count too; asked before the sum, so one drained
            # in between is counted twice (stricter), never missed.
            restored = await verifier.cache.restored_spends(admission.spend)
            recorded = await verifier.store.recorded_spends(list(restored)) if restored else set()
            seed = await verifier.store.spent(ledger.grant, ledger.bucket, ledger.currency)
            seed += sum(amount for mark, amount in restored.items() if mark not in recorded)
            outcome = await verifier.cache.admit_request(dataclasses.replace(record, seed=seed))
    except CacheUnavailable as exc:
        raise unavailable(f"replay protection: {exc}", "redis") from None
    except StoreUnavailable as exc:
        raise unavailable(f"budget ledger: {exc}", "postgres") from None
    if outcome in ("lost", "seed"):
        raise unavailable("cache state is being rebuilt")
    if outcome == "undurable":
        raise unavailable("the spend did not reach enough Redis replicas in time", "redis")
    return outcome


async def verify(
    verifier: VerifierState, authenticated: Authenticated, request: VerifyRequest, now: int
) -> dict[str, Any]:
    """The decision for ``request`` as of ``now``, the request's one reading of the clock."""
    try:
        verified = await verifier.tokens.verify(request.token, now)
    except TokenExpired:
        return denial("expired")
    except InvalidToken:
        return denial("invalid_token")
    if verifier.is_revoked(verified.claims):
        return denial("revoked")
    decision = decide(
        verified.claims,
        verified.details,
        request,
        resource=authenticated.caller.resource,
        now=now,
        dpop_max_age=verifier.settings.dpop_max_age,
        bearer_accepted=not authenticated.caller.dpop_required,
    )
    if isinstance(decision, Denial):
        return decision.body()
    outcome = await _record(verifier, decision)
    if outcome == "replay":
        return denial("dpop_replay")
    if outcome != "ok":
        return denial(outcome)
    return decision.body()


def render(body: Mapping[str, Any]) -> bytes:
    return orjson.dumps(body)
