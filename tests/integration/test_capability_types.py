"""A capability allows only what its type declares (threat model T-13.1): the ``type`` takes
part in every match, and a capability whose type declares no actions allows none."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.registry import RegistryClient
from tests.support.verifier import api, granted_agent, merchant, verify_body

RECEIPT = "urn:shop:receipt"
RECEIPT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"order": {"type": "string"}},
}  # no actions member: a receipt is looked at, never "done"
PAY_UP_TO_10 = {"max_amount": {"value": "10.00", "currency": "EUR"}}


async def test_a_type_without_actions_does_not_allow_an_action_at_any_amount(
    registry: RegistryClient, verifier_http: httpx.AsyncClient
) -> None:
    shop = await merchant(registry, verifier_http, types={RECEIPT: RECEIPT_SCHEMA})
    alice = await registry.human()
    receipt = {"type": RECEIPT, "locations": [shop.resource], "order": "42"}
    pay = api(shop.resource, ["pay"], limits=PAY_UP_TO_10)
    agent, _ = await granted_agent(registry, alice, [receipt, pay])  # receipt first on purpose
    big = {"value": "99999.00", "currency": "EUR"}
    response = await shop.verify(
        verify_body(agent, shop.resource + "/pay", action="pay", amount=big)
    )
    assert response.status_code == 200
    assert response.json()["allowed"] is False
    assert response.json()["reason"] == "amount_exceeds_limit"  # the pay capability decided
    small = {"value": "5.00", "currency": "EUR"}
    allowed = await shop.verify(
        verify_body(agent, shop.resource + "/pay", action="pay", amount=small)
    )
    assert allowed.json()["allowed"] is True
    assert allowed.json()["authorization_details"][0]["type"] == "api"


async def test_the_requested_type_takes_part_in_the_match(
    registry: RegistryClient, verifier_http: httpx.AsyncClient
) -> None:
    shop = await merchant(registry, verifier_http, types={RECEIPT: RECEIPT_SCHEMA})
    alice = await registry.human()
    receipt = {"type": RECEIPT, "locations": [shop.resource], "order": "42"}
    agent, _ = await granted_agent(registry, alice, [api(shop.resource, ["read"]), receipt])
    url = shop.resource + "/receipts/42"
    as_receipt = await shop.verify(verify_body(agent, url, type=RECEIPT))
    assert as_receipt.json()["allowed"] is True
    assert as_receipt.json()["authorization_details"][0]["type"] == RECEIPT
    other_type = await shop.verify(verify_body(agent, url, type="urn:shop:refund"))
    assert other_type.json() == {
        "allowed": False,
        "reason": "insufficient_capability",
        "www_authenticate": other_type.json()["www_authenticate"],
    }
    no_action_type = await shop.verify(verify_body(agent, url, type=RECEIPT, action="read"))
    assert no_action_type.json()["reason"] == "insufficient_capability"
    bad = await shop.verify(verify_body(agent, url, type=7))
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_request"


async def test_a_registered_type_cannot_carry_members_its_schema_does_not_declare(
    registry: RegistryClient, verifier_http: httpx.AsyncClient
) -> None:
    shop = await merchant(registry, verifier_http, types={RECEIPT: RECEIPT_SCHEMA})
    alice = await registry.human()
    agent = await registry.agent(alice)
    for member, value in (("actions", ["pay"]), ("identifier", "x"), ("privileges", ["admin"])):
        detail = {"type": RECEIPT, "locations": [shop.resource], member: value}
        response = await agent.bc_authorize([detail])
        assert response.status_code == 400, member
        assert response.json()["error"] == "invalid_authorization_details"
        assert f"unknown field '{member}'" in response.json()["error_description"]
