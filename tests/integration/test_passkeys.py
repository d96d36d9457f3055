"""Every WebAuthn and session rule of the approval API has a negative test here."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import update

from app.store.models import GrantRequest
from tests.support.registry import ISSUER, AgentClient, Human, RegistryClient

SHOP = "https://shop-p.example.com"
DETAILS = [{"type": "api", "locations": [SHOP], "actions": ["read"]}]


def refused(response: httpx.Response, status: int, code: str, fragment: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code, body
    assert fragment in body["error_description"], body


@pytest.fixture
async def setup(registry: RegistryClient) -> tuple[RegistryClient, Human, AgentClient, str]:
    await registry.ensure_resource_server(SHOP)
    human = await registry.human()
    agent = await registry.agent(human)
    auth_req_id = (await agent.bc_authorize(DETAILS)).json()["auth_req_id"]
    return registry, human, agent, auth_req_id


async def approve_with(human: Human, auth_req_id: str, **options: Any) -> httpx.Response:
    return await human.approve(auth_req_id, **options)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"origin": "https://evil.example"}, "verification failed"),
        ({"rp_id": "evil.example"}, "verification failed"),
        ({"user_verified": False}, "verification failed"),
        ({"user_present": False}, "verification failed"),
        ({"client_data_type": "webauthn.create"}, "verification failed"),
        ({"cross_origin": True}, "Cross-origin"),
        ({"challenge": b"\x00" * 64}, "challenge"),
    ],
)
async def test_approval_assertion_checks(
    setup: Any, options: dict[str, Any], fragment: str
) -> None:
    _registry, human, _, auth_req_id = setup
    page = await human.api("POST", f"/requests/{auth_req_id}/approve/options")
    options = dict(options)  # parametrize values are shared between runs
    origin = options.pop("origin", ISSUER)
    credential = human.authenticator.get(page.json(), origin=origin, **options)
    response = await human.api(
        "POST", f"/requests/{auth_req_id}/approve", {"credential": credential}
    )
    refused(response, 400, "invalid_request", fragment)
    still_pending = await human.api("GET", "/requests")
    assert auth_req_id in {r["auth_req_id"] for r in still_pending.json()["requests"]}


async def test_challenge_is_single_use(setup: Any) -> None:
    _, human, _, auth_req_id = setup
    page = await human.api("POST", f"/requests/{auth_req_id}/approve/options")
    bad = human.authenticator.get(page.json(), origin="https://evil.example")
    refused(
        await human.api("POST", f"/requests/{auth_req_id}/approve", {"credential": bad}),
        400,
        "invalid_request",
    )
    good = human.authenticator.get(page.json(), origin=ISSUER)
    refused(
        await human.api("POST", f"/requests/{auth_req_id}/approve", {"credential": good}),
        400,
        "invalid_request",
        "already used",
    )  # WA-04: burned by the first attempt


async def test_challenge_for_another_request(setup: Any) -> None:  # WA-03, WA-06
    _, human, agent, first = setup
    second = (await agent.bc_authorize(DETAILS)).json()["auth_req_id"]
    page = await human.api("POST", f"/requests/{first}/approve/options")
    credential = human.authenticator.get(page.json(), origin=ISSUER)
    refused(
        await human.api("POST", f"/requests/{second}/approve", {"credential": credential}),
        400,
        "invalid_request",
        "another request",
    )


async def test_request_changed_after_it_was_shown(setup: Any) -> None:  # WA-05
    registry, human, _, auth_req_id = setup
    page = await human.api("POST", f"/requests/{auth_req_id}/approve/options")
    async with registry.app.state.registry.sessions() as session, session.begin():
        await session.execute(
            update(GrantRequest)
            .where(GrantRequest.auth_req_id == auth_req_id)
            .values(binding_message="changed")
        )
    credential = human.authenticator.get(page.json(), origin=ISSUER)
    refused(
        await human.api("POST", f"/requests/{auth_req_id}/approve", {"credential": credential}),
        400,
        "invalid_request",
        "changed",
    )


async def test_unknown_and_foreign_credentials(setup: Any) -> None:  # WA-07, WA-08
    registry, human, _, auth_req_id = setup
    page = await human.api("POST", f"/requests/{auth_req_id}/approve/options")
    stranger = human.authenticator.add_credential(rp_id="localhost", user_handle=b"x" * 32)
    credential = human.authenticator.get(
        page.json(), origin=ISSUER, credential_id=stranger.credential_id
    )
    refused(
        await human.api("POST", f"/requests/{auth_req_id}/approve", {"credential": credential}),
        400,
        "invalid_request",
        "not registered",
    )
    bob = await registry.human("Bob")
    page = await human.api("POST", f"/requests/{auth_req_id}/approve/options")
    bob_credential = bob.authenticator.get(
        page.json(), origin=ISSUER, credential_id=bob.authenticator.credentials[0].credential_id
    )
    refused(
        await human.api("POST", f"/requests/{auth_req_id}/approve", {"credential": bob_credential}),
        400,
        "invalid_request",
        "not registered to this human",
    )


async def test_sign_count_regression(setup: Any) -> None:  # WA-17
    _, human, _, auth_req_id = setup
    assert (await human.login()).status_code == 200  # sign count now 1
    assert (await human.login()).status_code == 200  # 2
    response = await approve_with(human, auth_req_id, sign_count=1)
    refused(response, 400, "invalid_request", "verification failed")


async def test_another_humans_request_is_invisible(setup: Any) -> None:
    registry, _, _, auth_req_id = setup
    mallory = await registry.human("Mallory")
    refused(await mallory.api("POST", f"/requests/{auth_req_id}/approve/options"), 404, "not_found")
    refused(await mallory.api("POST", f"/requests/{auth_req_id}/deny"), 404, "not_found")
    listed = (await mallory.api("GET", "/requests")).json()["requests"]
    assert auth_req_id not in {r["auth_req_id"] for r in listed}


async def test_decided_and_expired_requests(setup: Any) -> None:
    registry, human, agent, auth_req_id = setup
    assert (await human.approve(auth_req_id)).status_code == 200
    refused(await human.api("POST", f"/requests/{auth_req_id}/approve/options"), 409, "conflict")
    refused(await human.api("POST", f"/requests/{auth_req_id}/deny"), 409, "conflict")
    late = (await agent.bc_authorize(DETAILS, requested_expiry="60")).json()["auth_req_id"]
    page = await human.api("POST", f"/requests/{late}/approve/options")
    registry.clock.advance(61)
    credential = human.authenticator.get(page.json(), origin=ISSUER)
    refused(
        await human.api("POST", f"/requests/{late}/approve", {"credential": credential}),
        409,
        "conflict",
        "expired",
    )


async def test_csrf_and_session_rules(setup: Any) -> None:
    registry, human, _, auth_req_id = setup
    no_csrf = await human.api("POST", f"/requests/{auth_req_id}/deny", csrf=False)
    refused(no_csrf, 403, "forbidden", "CSRF")
    wrong = await human.browser.post(
        f"/ui/api/requests/{auth_req_id}/deny", headers={"X-CSRF-Token": "guess"}
    )
    refused(wrong, 403, "forbidden")
    anonymous = registry.new_browser()
    refused(await anonymous.get("/ui/api/requests"), 401, "invalid_token")
    refused(await anonymous.post(f"/ui/api/requests/{auth_req_id}/deny"), 401, "invalid_token")
    registry.clock.advance(31 * 60)  # idle timeout
    refused(await human.api("GET", "/requests"), 401, "invalid_token", "expired")
    assert (await human.login()).status_code == 200
    assert (await human.api("POST", "/logout")).status_code == 200
    refused(await human.api("GET", "/requests"), 401, "invalid_token")


async def test_session_cookie_attributes(registry: RegistryClient) -> None:
    created = (await registry.admin("POST", "/humans", {"display_name": "Carol"})).json()
    human = Human(id=created["id"], browser=registry.new_browser())
    options = await human.api(
        "POST", "/passkeys/register/options", {"invite_token": created["invite_token"]}
    )
    credential = human.authenticator.create(options.json(), origin=ISSUER)
    verified = await human.api(
        "POST",
        "/passkeys/register/verify",
        {"invite_token": created["invite_token"], "credential": credential},
    )
    cookie = verified.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "path=/" in cookie
    reused = await human.api(
        "POST", "/passkeys/register/options", {"invite_token": created["invite_token"]}
    )
    refused(reused, 401, "invalid_token")


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"origin": "https://evil.example"}, "registration failed"),
        ({"user_verified": False}, "registration failed"),
        ({"rp_id": "evil.example"}, "registration failed"),
    ],
)
async def test_registration_checks(
    registry: RegistryClient, options: dict[str, Any], fragment: str
) -> None:
    created = (await registry.admin("POST", "/humans", {"display_name": "Dan"})).json()
    human = Human(id=created["id"], browser=registry.new_browser())
    page = await human.api(
        "POST", "/passkeys/register/options", {"invite_token": created["invite_token"]}
    )
    options = dict(options)  # parametrize values are shared between runs
    origin = options.pop("origin", ISSUER)
    credential = human.authenticator.create(page.json(), origin=origin, **options)
    response = await human.api(
        "POST",
        "/passkeys/register/verify",
        {"invite_token": created["invite_token"], "credential": credential},
    )
    refused(response, 400, "invalid_request", fragment)


async def test_login_with_unknown_credential_and_suspended_human(setup: Any) -> None:
    registry, human, _, _ = setup
    stranger = Human(id="x", browser=registry.new_browser())
    stranger.authenticator.add_credential(rp_id="localhost", user_handle=b"y" * 32)
    refused(await stranger.login(), 400, "invalid_request", "not registered")
    assert (await registry.admin("POST", f"/humans/{human.id}/suspend")).status_code == 200
    refused(await human.api("GET", "/requests"), 401, "invalid_token")
    refused(await human.login(), 401, "invalid_token", "suspended")


async def test_top_origin_is_refused(setup: Any) -> None:  # WA-11: never framed
    import base64
    import json as jsonlib

    _, human, _, auth_req_id = setup
    page = await human.api("POST", f"/requests/{auth_req_id}/approve/options")
    credential = human.authenticator.get(page.json(), origin=ISSUER)
    raw = credential["response"]["clientDataJSON"]
    client_data = jsonlib.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    client_data["topOrigin"] = "https://framer.example"
    encoded = base64.urlsafe_b64encode(jsonlib.dumps(client_data).encode()).rstrip(b"=").decode()
    credential["response"]["clientDataJSON"] = encoded
    response = await human.api(
        "POST", f"/requests/{auth_req_id}/approve", {"credential": credential}
    )
    refused(response, 400, "invalid_request", "Cross-origin")


async def test_a_credential_id_already_registered_is_refused(setup: Any) -> None:
    registry, owner, _, _ = setup
    (held,) = owner.authenticator.credentials
    human, body = await registry.passkey_registration(held.credential_id)
    response = await human.api("POST", "/passkeys/register/verify", body)
    refused(response, 400, "invalid_request", "already registered")
