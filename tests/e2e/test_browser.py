"""The approval pages in a real browser: Debian's Chromium driven by Playwright, with a
WebAuthn virtual authenticator (CTAP2, internal transport, resident keys, user verification)
enabled through the Chrome DevTools Protocol. The registry and the verifier run as
``agentauth serve`` processes on PostgreSQL and Redis; agents use the real endpoints."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support.browser import chromium, needs_chromium, passkey_page
from tests.support.registry import CIBA, AgentClient, RegistryClient
from tests.support.stack import Site, site_fixtures
from tests.support.verifier import Merchant, eventually, is_inactive

ADMIN_TOKEN = "admin-" + "b" * 40
DOC_IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Where the screenshots go: a temporary directory, so a test run leaves the checkout
    as it was; ``AGENTAUTH_SCREENSHOTS=docs/images`` refreshes the documentation's images
    (docs/ui.md)."""
    before = {p.name: p.read_bytes() for p in DOC_IMAGES.glob("*.png")}
    chosen = os.environ.get("AGENTAUTH_SCREENSHOTS")
    directory = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    yield directory
    assert sorted(p.name for p in directory.glob("*.png")) == ["dashboard.png", "request.png"]
    if not chosen:
        after = {p.name: p.read_bytes() for p in DOC_IMAGES.glob("*.png")}
        assert after == before, "a test run changed docs/images"


SHOP = "https://shop.example.com/api"
DETAILS = [
    {
        "type": "api",
        "locations": [SHOP],
        "actions": ["pay"],
        "limits": {"max_amount": {"value": "50.00", "currency": "EUR"}},
    }
]

pytestmark = needs_chromium


site, operator = site_fixtures("browser", admin_token=ADMIN_TOKEN, issuer="http://localhost")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with chromium() as launched:
        yield launched


async def looks_answered(page: Any, outcome: str) -> None:
    """Without a reload: both buttons disabled and dimmed, the countdown stopped."""
    for name in ("Approve with passkey", "Deny"):
        button = page.get_by_role("button", name=name)
        assert await button.is_disabled()
        assert float(await button.evaluate("b => getComputedStyle(b).opacity")) < 1
    countdown = page.locator("main time")
    assert await countdown.text_content() == f"answered ({outcome})"
    await page.wait_for_timeout(1200)  # a running countdown would have ticked
    assert await countdown.text_content() == f"answered ({outcome})"


async def enrol(operator: RegistryClient, page: Any, site: Site, name: str) -> str:
    created = await operator.admin("POST", "/humans", {"display_name": name})
    assert created.status_code == 201, created.text
    await page.goto(f"{site.base}/ui/invite/{created.json()['invite_token']}")
    await page.get_by_role("button", name="Create a passkey").click()
    await page.wait_for_url(f"{site.base}/ui/")
    return str(created.json()["id"])


async def agent_of(operator: RegistryClient, site: Site, owner: str) -> AgentClient:
    token = await operator.admin("POST", "/enrollment-tokens", {"owner": owner})
    assert token.status_code == 201, token.text
    agent = AgentClient(http=operator.http, clock=operator.clock)
    registered = await agent.register(token.json()["token"], client_name="Shopping agent")
    assert registered.status_code == 201, registered.text
    return agent


async def test_invite_login_approve_deny_revoke_in_a_browser(
    site: Site, operator: RegistryClient, browser: Any, images: Path
) -> None:
    created = await operator.admin("POST", "/resource-servers", {"name": "Shop", "resource": SHOP})
    assert created.status_code == 201, created.text
    secret = created.json()["client_secret"]
    verifier = httpx.AsyncClient(base_url=site.verifier.url)
    shop = Merchant(verifier, SHOP, created.json()["client_id"], secret)
    page = await passkey_page(browser)
    alice = await enrol(operator, page, site, "Alice")
    headers = (await page.goto(f"{site.base}/ui/")).headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"

    # log out and back in with the discoverable passkey
    await page.get_by_role("button", name="Log out").click()
    await page.wait_for_url(f"{site.base}/ui/login")
    await page.get_by_role("button", name="Log in with a passkey").click()
    await page.wait_for_url(f"{site.base}/ui/")

    agent = await agent_of(operator, site, alice)
    started = await agent.bc_authorize(DETAILS, binding_message="Order 42")
    auth_req_id = started.json()["auth_req_id"]

    # logged out, the approval link leads through the login back to the request
    await page.get_by_role("button", name="Log out").click()
    await page.wait_for_url(f"{site.base}/ui/login")
    await page.goto(f"{site.base}/ui/requests/{auth_req_id}")
    await page.wait_for_url(f"{site.base}/ui/login?next=/ui/requests/{auth_req_id}")
    await page.get_by_role("button", name="Log in with a passkey").click()
    await page.wait_for_url(f"{site.base}/ui/requests/{auth_req_id}")

    await page.goto(f"{site.base}/ui/")
    await page.get_by_text("Shopping agent asks for access").click()
    await page.wait_for_url(f"{site.base}/ui/requests/{auth_req_id}")
    body = await page.text_content("main")
    assert "Make payments of up to 50.00 EUR each" in body
    assert "Order 42" in body
    await page.screenshot(path=str(images / "request.png"), full_page=True)
    await page.get_by_role("button", name="Approve with passkey").click()
    await page.get_by_text("Approved.").wait_for()
    await looks_answered(page, "approved")
    issued = await agent.token(CIBA, auth_req_id=auth_req_id)
    assert issued.status_code == 200, issued.text
    assert issued.json()["token_type"] == "DPoP"

    # deny path
    second = (await agent.bc_authorize(DETAILS, binding_message="Order 43")).json()["auth_req_id"]
    await page.goto(f"{site.base}/ui/requests/{second}")
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Deny").click()
    await page.get_by_text("Denied.").wait_for()
    await looks_answered(page, "denied")
    assert await page.get_attribute("#status", "class") == "status denied"  # not the green one
    denied = await agent.token(CIBA, auth_req_id=second)
    assert (denied.status_code, denied.json()["error"]) == (400, "access_denied")

    await page.goto(f"{site.base}/ui/")
    await page.screenshot(path=str(images / "dashboard.png"), full_page=True)

    # a state change without the CSRF header is refused
    status = await page.evaluate(
        "fetch('/ui/api/enrollment-tokens', {method: 'POST', credentials: 'same-origin',"
        " headers: {'Content-Type': 'application/json'}, body: '{}'}).then(r => r.status)"
    )
    assert status == 403

    # revoke in the UI: the verifier answers inactive
    token = issued.json()["access_token"]
    assert not await is_inactive(shop, token)
    await page.goto(f"{site.base}/ui/grants")
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Revoke").click()
    await page.get_by_role("button", name="Revoke").wait_for(state="detached")
    await eventually(lambda: is_inactive(shop, token))
    await shop.http.aclose()

    # another human sees neither the request page nor the approval API of Alice's requests
    third = (await agent.bc_authorize(DETAILS)).json()["auth_req_id"]
    bob_page = await passkey_page(browser)
    await enrol(operator, bob_page, site, "Bob")
    shown = await bob_page.goto(f"{site.base}/ui/requests/{third}")
    assert shown.status == 404
    assert "Request not found" in await bob_page.text_content("main")
    await bob_page.goto(f"{site.base}/ui/")
    attempt = await bob_page.evaluate(
        f"fetch('/ui/api/requests/{third}/approve/options', {{method: 'POST', headers: "
        "{'X-CSRF-Token': document.querySelector('meta[name=csrf-token]').content}})"
        ".then(r => r.status)"
    )
    assert attempt == 404


async def test_pages_need_a_session_and_bad_invites_say_so(site: Site, browser: Any) -> None:
    page = await passkey_page(browser)
    await page.goto(f"{site.base}/ui/grants")
    assert page.url == f"{site.base}/ui/login?next=/ui/grants"  # and back there afterwards
    shown = await page.goto(f"{site.base}/ui/invite/not-a-real-invite")
    assert shown.status == 404
    assert "This invite cannot be used" in await page.text_content("main")
    static = await page.goto(f"{site.base}/ui/static/agentauth.js")
    assert static.headers["x-content-type-options"] == "nosniff"


async def test_reading_without_javascript_agents_page_and_answered_requests(
    site: Site, operator: RegistryClient, browser: Any
) -> None:
    page = await passkey_page(browser)
    carol = await enrol(operator, page, site, "Carol")
    cookie = next(c for c in await page.context.cookies() if c["name"] == "agentauth_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # http://localhost in development only

    agent = await agent_of(operator, site, carol)
    auth_req_id = (await agent.bc_authorize(DETAILS, binding_message="Books")).json()["auth_req_id"]

    # reading works with JavaScript off, and the page says approving needs it
    reader = await browser.new_context(java_script_enabled=False)
    await reader.add_cookies([cookie])
    static_page = await reader.new_page()
    await static_page.goto(f"{site.base}/ui/requests/{auth_req_id}")
    text = await static_page.text_content("main")
    assert "Make payments of up to 50.00 EUR each" in text
    assert "need JavaScript and a passkey" in text
    await reader.close()

    await page.goto(f"{site.base}/ui/requests/{auth_req_id}")
    await page.get_by_role("button", name="Approve with passkey").click()
    await page.get_by_text("Approved.").wait_for()
    again = await page.goto(f"{site.base}/ui/requests/{auth_req_id}")
    assert again.status == 409
    assert "already been approved" in await page.text_content("main")

    # agents page: each agent's client id, a one-time enrollment token with the /register
    # command, then disable
    await page.goto(f"{site.base}/ui/agents")
    row = page.locator("tbody tr").first
    assert (await row.locator("td").nth(1).text_content() or "").strip() == agent.client_id
    await page.get_by_role("button", name="Create enrollment token").click()
    await page.locator("#enrollment").wait_for(state="visible")
    token = (await page.text_content("#enrollment-token")).strip()
    assert len(token) >= 40
    command = await page.text_content("#enrollment-command")
    assert "/register" in command
    assert token in command
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Disable").click()
    await page.get_by_role("button", name="Disable").wait_for(state="detached")
    assert "disabled" in await page.text_content("table")


async def test_an_authenticator_without_user_verification_gets_a_clear_message(
    site: Site, operator: RegistryClient, browser: Any
) -> None:
    page = await passkey_page(
        browser, transport="usb", hasUserVerification=False, isUserVerified=False
    )
    created = await operator.admin("POST", "/humans", {"display_name": "Dave"})
    await page.goto(f"{site.base}/ui/invite/{created.json()['invite_token']}")
    await page.get_by_role("button", name="Create a passkey").click()
    status = page.locator("#status")
    await status.wait_for()
    message = await status.text_content()
    assert "cannot verify you" in message
    assert "Nothing was changed" in message
    assert page.url.endswith(f"/ui/invite/{created.json()['invite_token']}")


@pytest.mark.parametrize("width", [360, 390])
async def test_the_pages_fit_a_phone_without_sideways_scrolling(
    site: Site, operator: RegistryClient, browser: Any, width: int
) -> None:
    page = await passkey_page(browser, viewport={"width": width, "height": 800})
    owner = await enrol(operator, page, site, "Phone owner with a rather long display name")
    agent = await agent_of(operator, site, owner)
    long = {**DETAILS[0], "identifier": "orders/" + "x" * 120}
    started = await agent.bc_authorize([long], binding_message="Order " + "9" * 150)
    auth_req_id = started.json()["auth_req_id"]
    granted = (await agent.bc_authorize(DETAILS)).json()["auth_req_id"]
    await page.goto(f"{site.base}/ui/requests/{granted}")
    await page.get_by_role("button", name="Approve with passkey").click()
    await page.get_by_text("Approved.").wait_for()
    for path in (f"/ui/requests/{auth_req_id}", "/ui/", "/ui/grants", "/ui/agents"):
        await page.goto(site.base + path)
        await page.locator("details").evaluate_all("all => all.forEach(d => d.open = true)")
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (path, width, overflow)


async def test_logging_in_never_leads_outside_the_ui(
    site: Site, operator: RegistryClient, browser: Any
) -> None:
    page = await passkey_page(browser)
    await enrol(operator, page, site, "Erin")
    for elsewhere in ("//evil.example/ui/", "https://evil.example/ui/", "/ui/../admin"):
        await page.get_by_role("button", name="Log out").click()
        await page.wait_for_url(f"{site.base}/ui/login")
        await page.goto(f"{site.base}/ui/login?next={quote(elsewhere, safe='')}")
        await page.get_by_role("button", name="Log in with a passkey").click()
        await page.wait_for_url(f"{site.base}/ui/")
        assert page.url == f"{site.base}/ui/"
