"""The ``/verify`` decision: one pure function for the verifier and for local checking.

It takes the verified token's claims and capabilities, the resource server's request and
``now``, starts from "no" and returns a :class:`Denial` at the first failed check: audience,
DPoP proof, capability (type, action, identifier, location), time window, currency and
per-transaction maximum. An :class:`Admission` names what the caller must still record in
one atomic step: the proof's single use and the grant's rate and budget counters. Counting
itself is the cache's job (a Lua script in Redis, a lock in memory), because it must be
atomic across replicas; what is counted, and under which key, is decided here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.core.capabilities import AuthorizationDetail, find_capability
from app.core.dpop import DPoPProof, replay_entry, verify_proof
from app.core.envelope import Limits, budget_bucket, envelope_denial, rate_bucket
from app.core.errors import InvalidDPoPProof, InvalidToken, UseDPoPNonce
from app.core.introspection import allowed_decision, denial
from app.core.money import Money
from app.core.tokens import AccessTokenClaims

# A budget counter outlives its period by one period at most, whatever the time zone.
BUDGET_TTL: Mapping[str, int] = {
    "hour": 2 * 3600,
    "day": 2 * 86400,
    "week": 8 * 86400,
    "month": 32 * 86400,
}


@dataclass(frozen=True, slots=True)
class VerifyRequest:
    """What a resource server asks about one request it received."""

    token: str
    dpop: str | None  # the DPoP header; None for a Bearer token
    method: str
    url: str
    kind: str | None  # the capability type the request needs (the body's ``type``)
    action: str | None
    identifier: str | None
    amount: Money | None


@dataclass(frozen=True, slots=True)
class RateCounter:
    """A fixed-window request counter: at most ``limit`` uses; dropped after ``ttl`` s."""

    key: str
    limit: int
    ttl: int


@dataclass(frozen=True, slots=True)
class LedgerKey:
    """Where a budget's spend is kept durably: the grant, the period bucket, the currency."""

    grant: str
    bucket: str
    currency: str


@dataclass(frozen=True, slots=True)
class SpendCounter:
    """A budget counter in minor units: ``amount`` added only while the total stays within
    ``budget``; ``ledger`` rebuilds it when the cache has lost it."""

    key: str
    amount: int
    budget: int
    ttl: int
    ledger: LedgerKey


@dataclass(frozen=True, slots=True)
class Denial:
    reason: str

    def body(self) -> dict[str, Any]:
        return denial(self.reason)


@dataclass(frozen=True, slots=True)
class Admission:
    """An allowed request, pending the atomic record of ``once``, ``rate`` and ``spend``."""

    claims: AccessTokenClaims
    capability: AuthorizationDetail
    proof: DPoPProof | None  # None for a Bearer token
    once: tuple[str, int] | None  # the proof's replay key and how long it is remembered
    rate: RateCounter | None
    spend: SpendCounter | None
    at: int

    def body(self) -> dict[str, Any]:
        return allowed_decision(self.claims, self.capability.to_dict())

    def spend_event(self) -> dict[str, str]:
        """The spend-stream entry the worker writes to the ledger (empty: nothing spent)."""
        if self.spend is None:
            return {}
        ledger = self.spend.ledger
        return {
            "grant": ledger.grant,
            "bucket": ledger.bucket,
            "currency": ledger.currency,
            "amount": str(self.spend.amount),
            "jti": self.claims.jti,
            "at": str(self.at),
        }


def _counters(
    grant: str, limits: Limits | None, amount: Money | None, now: int
) -> tuple[RateCounter | None, SpendCounter | None]:
    """The grant's counters this request uses: every request counts against a rate, an
    amount against a budget. Counters belong to the grant, shared by derived tokens."""
    rate = spend = None
    if limits is not None and limits.rate is not None:
        bucket, ttl = rate_bucket(limits.rate, now)
        rate = RateCounter(f"{grant}:{bucket}", limits.rate.max_requests, ttl)
    if limits is not None and limits.budget is not None and amount is not None:
        budget = limits.budget
        bucket = budget_bucket(budget, now)
        currency = budget.money.currency
        spend = SpendCounter(
            key=f"{grant}:{currency}:{bucket}",
            amount=amount.minor_units,
            budget=budget.money.minor_units,
            ttl=BUDGET_TTL[budget.period],
            ledger=LedgerKey(grant, bucket, currency),
        )
    return rate, spend


def decide(
    claims: AccessTokenClaims,
    details: Sequence[AuthorizationDetail],
    request: VerifyRequest,
    *,
    resource: str,
    now: int,
    dpop_max_age: int,
    bearer_accepted: bool = False,
    counted: bool = True,
) -> Denial | Admission:
    """The decision for ``request`` at the resource server ``resource``.

    ``claims`` come from a token whose signature, issuer, type and expiry were verified, and
    ``details`` are its capabilities at ``resource``. Revocation is the caller's check,
    made before this one. A Bearer token (no ``cnf``) is allowed only where
    ``bearer_accepted`` (the resource server declared ``dpop_required: false``); a DPoP-bound
    token always needs its proof. With ``counted=False`` (local checking, which has no shared
    counters) a capability with a rate or budget allows nothing.
    """
    if claims.aud != resource:
        return Denial("audience_mismatch")
    proof = None
    if claims.jkt is None:
        if not bearer_accepted:
            return Denial("invalid_token")
    elif request.dpop is None:
        return Denial("invalid_dpop_proof")
    else:
        try:
            proof = verify_proof(
                [request.dpop],
                method=request.method,
                url=request.url,
                now=now,
                access_token=request.token,
                bound_jkt=claims.jkt,
                max_age=dpop_max_age,
            )
        except (InvalidDPoPProof, UseDPoPNonce):
            return Denial("invalid_dpop_proof")
        except InvalidToken:
            return Denial("dpop_key_mismatch")
    capability = find_capability(
        details,
        location=resource,
        action=request.action,
        identifier=request.identifier,
        kind=request.kind,
    )
    limits = capability.limits if capability is not None else None
    if capability is None or (
        not counted and limits is not None and (limits.rate or limits.budget)
    ):
        return Denial("insufficient_capability")
    reason = envelope_denial(limits, amount=request.amount, now=now)
    if reason is not None:
        return Denial(reason)
    rate, spend = _counters(claims.grant_id, limits, request.amount, now)
    return Admission(
        claims=claims,
        capability=capability,
        proof=proof,
        once=None if proof is None else replay_entry(proof, dpop_max_age),
        rate=rate,
        spend=spend,
        at=now,
    )
