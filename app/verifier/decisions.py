"""``/introspect`` and ``/verify`` decisions (CONTRACT "Verifier", ARCHITECTURE §6).

Both start from "no" and return early on every failed check. ``/verify`` runs the pure
checks first (token, revocation, audience, DPoP proof, capability, time window, maximum
amount) and then records the proof and the counters in one atomic cache call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from app.api.errors import unavailable
from app.cache.base import Admission, CacheUnavailable, Outcome
from app.core.capabilities import find_capability
from app.core.dpop import DPoPProof, replay_entry, verify_proof
from app.core.envelope import Usage, budget_bucket, decide, rate_bucket
from app.core.errors import (
    InvalidDPoPProof,
    InvalidToken,
    UseDPoPNonce,
)
from app.core.introspection import allowed_decision, denial
from app.core.money import Money
from app.core.tokens import TokenExpired
from app.verifier.callers import Authenticated
from app.verifier.database import StoreUnavailable
from app.verifier.revocations import RevocationStateUnknown
from app.verifier.state import Verifier
from app.verifier.tokens import VerifiedToken

INACTIVE = b'{"active":false}'
BUDGET_TTL = {"hour": 2 * 3600, "day": 2 * 86400, "week": 8 * 86400, "month": 32 * 86400}


def is_revoked(verifier: Verifier, token: VerifiedToken) -> bool:
    try:
        return verifier.revocations.check(token.claims)
    except RevocationStateUnknown:
        raise unavailable("revocation state is not established") from None


async def introspect(verifier: Verifier, caller_resource: str, token: str) -> bytes:
    """The RFC 7662 response body for ``token`` as seen by the caller."""
    try:
        verified = await verifier.tokens.verify(token, verifier.now())
    except InvalidToken:
        return INACTIVE
    if verified.claims.aud != caller_resource or is_revoked(verifier, verified):
        return INACTIVE
    return verified.active_body


@dataclass(frozen=True, slots=True)
class VerifyRequest:
    token: str
    dpop: str
    method: str
    url: str
    kind: str | None  # the capability type the request needs (the body's ``type``)
    action: str | None
    identifier: str | None
    amount: Money | None


def _check_proof(
    verifier: Verifier, request: VerifyRequest, verified: VerifiedToken
) -> DPoPProof | str:
    settings = verifier.settings
    try:
        return verify_proof(
            [request.dpop],
            method=request.method,
            url=request.url,
            now=verifier.now(),
            access_token=request.token,
            bound_jkt=verified.claims.jkt,
            max_age=settings.dpop_max_age,
        )
    except (InvalidDPoPProof, UseDPoPNonce):
        return "invalid_dpop_proof"
    except InvalidToken:
        return "dpop_key_mismatch"


def _admission(
    verifier: Verifier,
    verified: VerifiedToken,
    proof: DPoPProof,
    limits: Any,
    amount: Money | None,
) -> tuple[Admission, tuple[str, str, str] | None]:
    now = verifier.now()
    grant = verified.claims.grant_id
    rate = spend = None
    ledger_key = None
    event: dict[str, str] = {}
    if limits is not None and limits.rate is not None:
        bucket, ttl = rate_bucket(limits.rate, now)
        rate = (f"{grant}:{bucket}", limits.rate.max_requests, ttl)
    if limits is not None and limits.budget is not None and amount is not None:
        budget = limits.budget
        bucket = budget_bucket(budget, now)
        currency = budget.money.currency
        spend = (
            f"{grant}:{currency}:{bucket}",
            amount.minor_units,
            budget.money.minor_units,
            BUDGET_TTL[budget.period],
        )
        ledger_key = (grant, bucket, currency)
        event = {
            "grant": grant,
            "bucket": bucket,
            "currency": currency,
            "amount": str(amount.minor_units),
            "jti": verified.claims.jti,
            "at": str(now),
        }
    admission = Admission(
        proof_iat=proof.iat,
        once=[replay_entry(proof, verifier.settings.dpop_max_age)],
        rate=rate,
        spend=spend,
        event=event,
    )
    return admission, ledger_key


async def _record(
    verifier: Verifier, admission: Admission, ledger_key: tuple[str, str, str] | None
) -> Outcome:
    """One atomic cache call; the cold paths (seed a lost budget counter from the ledger,
    recover from a cache that lost its data) retry it once each."""
    try:
        outcome = await verifier.cache.admit_request(admission)
        if outcome == "lost":
            await verifier.cache.ensure_epoch(verifier.now())
            outcome = await verifier.cache.admit_request(admission)
        if outcome == "seed" and ledger_key is not None:
            seed = await verifier.store.spent(*ledger_key)
            outcome = await verifier.cache.admit_request(
                Admission(
                    proof_iat=admission.proof_iat,
                    once=admission.once,
                    rate=admission.rate,
                    spend=admission.spend,
                    seed=seed,
                    event=admission.event,
                )
            )
    except CacheUnavailable as exc:
        raise unavailable(f"replay protection: {exc}", "redis") from None
    except StoreUnavailable as exc:
        raise unavailable(f"budget ledger: {exc}", "postgres") from None
    if outcome in ("lost", "seed"):
        raise unavailable("cache state is being rebuilt")
    return outcome


async def verify(
    verifier: Verifier, authenticated: Authenticated, request: VerifyRequest
) -> dict[str, Any]:
    caller = authenticated.caller
    try:
        verified = await verifier.tokens.verify(request.token, verifier.now())
    except TokenExpired:
        return denial("expired")
    except InvalidToken:
        return denial("invalid_token")
    if is_revoked(verifier, verified):
        return denial("revoked")
    if verified.claims.aud != caller.resource:
        return denial("audience_mismatch")
    proof = _check_proof(verifier, request, verified)
    if isinstance(proof, str):
        return denial(proof)
    capability = find_capability(
        verified.details,
        location=caller.resource,
        action=request.action,
        identifier=request.identifier,
        kind=request.kind,
    )
    if capability is None:
        return denial("insufficient_capability")
    reason = decide(capability.limits, amount=request.amount, now=verifier.now(), usage=Usage())
    if reason is not None:
        return denial(reason)
    admission, ledger_key = _admission(verifier, verified, proof, capability.limits, request.amount)
    outcome = await _record(verifier, admission, ledger_key)
    if outcome == "replay":
        return denial("dpop_replay")
    if outcome != "ok":
        return denial(outcome)
    return allowed_decision(verified.claims, capability.to_dict())


def render(body: Mapping[str, Any]) -> bytes:
    return orjson.dumps(body)
