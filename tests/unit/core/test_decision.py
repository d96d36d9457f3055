"""The one ``/verify`` decision (app/core/decision.py) that the verifier and local checking
both run: the order of its checks, and the counters an admission names."""

from __future__ import annotations

import dataclasses
from typing import Any

from app.core.capabilities import capabilities_at
from app.core.decision import (
    Admission,
    Denial,
    LedgerKey,
    RateCounter,
    SpendCounter,
    VerifyRequest,
    decide,
)
from app.core.envelope import budget_bucket, parse_limits
from app.core.money import parse_amount
from app.core.tokens import AccessTokenClaims
from tests.factories import ISSUER, NOW, RESOURCE, Agent

AGENT = Agent()
URL = f"{RESOURCE}/pay"
PAY: dict[str, Any] = {
    "type": "api",
    "locations": [RESOURCE],
    "actions": ["pay"],
    "limits": {
        "max_amount": {"value": "50.00", "currency": "EUR"},
        "budget": {"value": "200.00", "currency": "EUR", "period": "day"},
        "rate": {"max_requests": 60, "period": "minute"},
    },
}
CLAIMS = AccessTokenClaims(
    iss=ISSUER,
    sub="usr_alice",
    aud=RESOURCE,
    client_id=AGENT.client_id,
    act={"sub": AGENT.client_id},
    iat=NOW,
    exp=NOW + 300,
    jkt=AGENT.jkt,
    grant_id="grt_1",
    auth_time=NOW,
    authorization_details=[PAY, {"type": "api", "locations": ["https://elsewhere.example"]}],
)
TOKEN = "a.b.c"  # the proof's ath is over this string; the signature was checked earlier


def request(amount: str | None = "12.50", **changes: Any) -> VerifyRequest:
    asked = VerifyRequest(
        token=TOKEN,
        dpop=AGENT.dpop(htm="POST", htu=URL, iat=NOW, access_token=TOKEN),
        method="POST",
        url=URL,
        kind="api",
        action="pay",
        identifier=None,
        amount=parse_amount(amount, "EUR") if amount is not None else None,
    )
    return dataclasses.replace(asked, **changes)


def run(asked: VerifyRequest, claims: AccessTokenClaims = CLAIMS, **options: Any) -> Any:
    details = capabilities_at(claims.authorization_details, RESOURCE)
    return decide(claims, details, asked, resource=RESOURCE, now=NOW, dpop_max_age=300, **options)


def test_an_admission_names_the_grants_counters() -> None:
    admitted = run(request())
    assert isinstance(admitted, Admission)
    assert admitted.rate == RateCounter(f"grt_1:r:minute:{NOW // 60}", 60, 60 - NOW % 60)
    budget = parse_limits(PAY["limits"]).budget
    assert budget is not None
    bucket = budget_bucket(budget, NOW)
    assert admitted.spend == SpendCounter(
        key=f"grt_1:EUR:{bucket}",
        amount=1250,
        budget=20000,
        ttl=2 * 86400,
        ledger=LedgerKey("grt_1", bucket, "EUR"),
    )
    assert admitted.once[0].startswith("dpop:")
    assert admitted.spend_event()["amount"] == "1250"
    body = admitted.body()
    assert (body["allowed"], body["grant_id"]) == (True, "grt_1")
    assert [d["actions"] for d in body["authorization_details"]] == [["pay"]]


def test_without_an_amount_nothing_is_spent_and_the_rate_still_counts() -> None:
    limits = {"rate": {"max_requests": 5, "period": "second"}}
    claims = dataclasses.replace(CLAIMS, authorization_details=[{**PAY, "limits": limits}])
    admitted = run(request(amount=None), claims)
    assert isinstance(admitted, Admission)
    assert admitted.spend is None
    assert admitted.spend_event() == {}
    assert admitted.rate is not None
    assert admitted.rate.limit == 5


def test_the_audience_is_checked_before_the_proof() -> None:
    other = dataclasses.replace(CLAIMS, aud="https://elsewhere.example")
    assert run(request(dpop="not a proof"), other) == Denial("audience_mismatch")


def test_a_proof_by_another_key_is_a_key_mismatch() -> None:
    stranger = Agent().dpop(htm="POST", htu=URL, iat=NOW, access_token=TOKEN)
    assert run(request(dpop=stranger)) == Denial("dpop_key_mismatch")
    assert run(request(dpop="not a proof")) == Denial("invalid_dpop_proof")


def test_the_capability_must_allow_the_type_and_action() -> None:
    assert run(request(action="refund")) == Denial("insufficient_capability")
    assert run(request(kind="payment_initiation")) == Denial("insufficient_capability")


def test_the_envelope_applies_after_the_capability() -> None:
    assert run(request(amount="50.01")) == Denial("amount_exceeds_limit")
    assert run(request(amount=None)) == Denial("amount_exceeds_limit")


def test_without_shared_counters_a_counted_capability_allows_nothing() -> None:
    assert run(request(), counted=False) == Denial("insufficient_capability")
    plain = dataclasses.replace(
        CLAIMS,
        authorization_details=[
            {**PAY, "limits": {"max_amount": {"value": "50.00", "currency": "EUR"}}}
        ],
    )
    admitted = run(request(), plain, counted=False)
    assert isinstance(admitted, Admission)
    assert (admitted.rate, admitted.spend) == (None, None)


def test_unreadable_capabilities_in_a_token_allow_nothing() -> None:
    raw = [{"type": "api", "locations": [RESOURCE], "actions": "pay"}]  # not an array
    assert capabilities_at(raw, RESOURCE) == []
    claims = dataclasses.replace(CLAIMS, authorization_details=raw)
    assert run(request(amount=None), claims) == Denial("insufficient_capability")
