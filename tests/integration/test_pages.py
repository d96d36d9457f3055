"""The approval pages as a new user meets them: plain words for what happened, grants told
apart, the way back to an approval link after logging in, the human's own id, an icon."""

from __future__ import annotations

import html

from tests.support.registry import CIBA, RegistryClient

SHOP = "https://pages.example.com/api"
DETAILS = [{"type": "api", "locations": [SHOP], "actions": ["read"]}]


async def test_the_dashboard_speaks_plainly_and_tells_grants_apart(
    registry: RegistryClient,
) -> None:
    await registry.ensure_resource_server(SHOP)
    alice = await registry.human("Alice")
    agent = await registry.agent(alice)
    grants = []
    for _ in range(2):  # the same capability twice
        auth_req_id = (await agent.bc_authorize(DETAILS)).json()["auth_req_id"]
        grants.append((await alice.approve(auth_req_id)).json()["grant_id"])
        assert (await agent.token(CIBA, auth_req_id=auth_req_id)).status_code == 200
    page = html.unescape((await alice.browser.get("/ui/")).text)
    assert alice.id in page  # the id the quickstart asks for
    for grant_id in grants:
        assert grant_id in page
    assert "created a passkey" in page
    assert "approved a request" in page
    for machine in ("passkey.registered", "grant.approved", "human.login"):
        assert machine not in page
    listed = html.unescape((await alice.browser.get("/ui/grants")).text)
    assert all(grant_id in listed for grant_id in grants)


async def test_an_approval_link_survives_logging_in(registry: RegistryClient) -> None:
    stranger = registry.new_browser()
    response = await stranger.get("/ui/requests/abc_123", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/ui/login?next=/ui/requests/abc_123"


async def test_the_site_has_an_icon(registry: RegistryClient) -> None:
    icon = await registry.http.get("/favicon.ico")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/svg+xml"
    assert icon.content.startswith(b"<svg")
