"""Agent-supplied text carries no control or format character, and an agent may only ask
its owner, or a human who allowed the owner's agents to ask them (threat model, hardening
rule 11)."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.registry import AgentClient, RegistryClient

SHOP = "https://shown-text.example.com/api"
RLO, ZWJ, LRI, BOM = "\u202e", "\u200d", "\u2066", "\ufeff"


def refused(response: httpx.Response, code: str) -> str:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == code
    assert response.headers["cache-control"] == "no-store"
    return str(response.json()["error_description"])


async def audit_events(registry: RegistryClient) -> AsyncIterator[dict[str, Any]]:
    after = 0
    while events := (await registry.admin("GET", f"/audit?after={after}&limit=1000")).json()[
        "events"
    ]:
        for event in events:
            yield event
        after = events[-1]["seq"]


def details(**member: Any) -> list[dict[str, Any]]:
    return [{"type": "api", "locations": [SHOP], "actions": ["read"], **member}]


@pytest.fixture
async def alice(registry: RegistryClient) -> AgentClient:
    await registry.ensure_resource_server(SHOP)
    return await registry.agent(await registry.human("Alice"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("client_name", f"Pay {RLO}RUE 00.5"),
        ("client_name", f"Shop{ZWJ}bot"),
        ("software_id", f"x{BOM}"),
        ("software_version", f"1{LRI}.0"),
        ("client_uri", "https://a.example/\u0007"),
    ],
)
async def test_agent_metadata_with_a_format_character_is_refused(
    registry: RegistryClient, field: str, value: str
) -> None:
    owner = await registry.human()
    token = await owner.api("POST", "/enrollment-tokens", {"expires_in": 600})
    agent = AgentClient(http=registry.http, clock=registry.clock)
    response = await agent.register(token.json()["token"], **{field: value})
    assert f"U+{ord(next(c for c in value if not c.isalnum() and c not in ' .:/')):04X}" in (
        refused(response, "invalid_client_metadata")
    )


async def test_a_binding_message_with_a_bidi_control_is_refused(alice: AgentClient) -> None:
    response = await alice.bc_authorize(details(), binding_message=f"Pay {RLO}RUE 00.5")
    assert "binding_message contains U+202E" in refused(response, "invalid_request")


@pytest.mark.parametrize(
    "member",
    [{"actions": [f"re{ZWJ}ad"]}, {"identifier": f"orders/{RLO}42"}, {"datatypes": [f"a{BOM}"]}],
)
async def test_capability_text_with_a_format_character_is_refused(
    alice: AgentClient, member: dict[str, Any]
) -> None:
    response = await alice.bc_authorize(details(**member))
    refused(response, "invalid_authorization_details")


async def test_text_in_other_scripts_is_accepted(alice: AgentClient) -> None:
    response = await alice.bc_authorize(
        details(identifier="commandes/é-42"), binding_message="Commande n° 42 — 5,00 €"
    )
    assert response.status_code == 200, response.text


async def test_an_agent_cannot_ask_a_human_who_did_not_allow_its_owner(
    registry: RegistryClient, alice: AgentClient
) -> None:
    bob = await registry.human("Bob")
    asked = await alice.bc_authorize(details(), login_hint=bob.id)
    unknown = await alice.bc_authorize(details(), login_hint="hum_nobody")
    # the same answer as for a human that does not exist: no directory of humans
    assert refused(asked, "unknown_user_id") == refused(unknown, "unknown_user_id")
    assert (await bob.api("GET", "/requests")).json()["requests"] == []


async def test_a_human_who_allowed_the_owner_can_be_asked_until_withdrawn(
    registry: RegistryClient,
) -> None:
    await registry.ensure_resource_server(SHOP)
    owner = await registry.human("Alice")
    agent = await registry.agent(owner)
    bob = await registry.human("Bob")
    without_csrf = await bob.api("PUT", f"/requesters/{owner.id}", csrf=False)
    assert without_csrf.status_code == 403
    allowed = await bob.api("PUT", f"/requesters/{owner.id}")
    assert allowed.status_code == 200, allowed.text
    listed = (await bob.api("GET", "/requesters")).json()["requesters"]
    assert [(r["human_id"], r["display_name"]) for r in listed] == [(owner.id, "Alice")]

    asked = await agent.bc_authorize(details(), login_hint=bob.id)
    assert asked.status_code == 200, asked.text
    pending = (await bob.api("GET", "/requests")).json()["requests"]
    assert [r["auth_req_id"] for r in pending] == [asked.json()["auth_req_id"]]

    assert (await bob.api("DELETE", f"/requesters/{owner.id}")).status_code == 204
    refused(await agent.bc_authorize(details(), login_hint=bob.id), "unknown_user_id")
    again = await bob.api("DELETE", f"/requesters/{owner.id}")
    assert again.status_code == 404
    recorded = [(e["event"], e["actor"], e["subject"]) async for e in audit_events(registry)]
    assert ("human.requester_allowed", bob.id, owner.id) in recorded
    assert ("human.requester_withdrawn", bob.id, owner.id) in recorded


async def test_allowing_an_unknown_human_or_oneself_is_refused(registry: RegistryClient) -> None:
    bob = await registry.human("Bob")
    assert (await bob.api("PUT", "/requesters/hum_nobody")).status_code == 404
    refused(await bob.api("PUT", f"/requesters/{bob.id}"), "invalid_request")


TRANSFER = "https://shown-text.example.com/rar/transfer"
TRANSFER_SCHEMA = {
    "type": "object",
    "title": "Credit transfer",
    "properties": {
        "actions": {},
        "datatypes": {},
        "privileges": {},
        "instructedAmount": {"title": "Amount", "type": "object"},
        "creditorName": {"title": "Creditor", "type": "string"},
    },
}


async def test_the_approval_page_shows_every_member_before_the_approve_button(
    registry: RegistryClient,
) -> None:
    """Members that change what the human agrees to (a registered type's members with the
    schema's titles, data types, privileges, a budget's time zone) are all in the summary,
    not only in the raw JSON."""
    shop = "https://every-member.example.com/api"
    await registry.ensure_resource_server(shop, {TRANSFER: TRANSFER_SCHEMA})
    human = await registry.human("Alice")
    agent = await registry.agent(human)
    detail = {
        "type": TRANSFER,
        "locations": [shop],
        "actions": ["transfer"],
        "datatypes": ["statements"],
        "privileges": ["initiate"],
        "instructedAmount": {"currency": "EUR", "amount": "123.50"},
        "creditorName": "Merchant A",
        "limits": {
            "budget": {
                "value": "500.00",
                "currency": "EUR",
                "period": "day",
                "time_zone": "Asia/Tokyo",
            }
        },
    }
    started = await agent.bc_authorize([detail])
    assert started.status_code == 200, started.text
    auth_req_id = started.json()["auth_req_id"]
    page = await human.browser.get(f"/ui/requests/{auth_req_id}")
    assert page.status_code == 200
    before_button = html.unescape(page.text.split("Approve with passkey")[0])
    summary = before_button.split("Exact request")[0]  # the collapsed raw JSON comes after
    (listed,) = (await human.api("GET", "/requests")).json()["requests"]
    for shown in (summary, listed["summary"][0]):
        for text in (
            "Credit transfer",
            "Creditor: \u201cMerchant A\u201d",
            "Amount: {amount: \u201c123.50\u201d; currency: \u201cEUR\u201d}",
            "data types statements",
            "privileges initiate",
            "500.00 EUR per day (Asia/Tokyo)",
        ):
            assert text in shown, (text, shown)
