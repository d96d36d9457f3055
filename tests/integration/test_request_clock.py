"""A registry request judges one instant: the token endpoint, /bc-authorize, /revoke, the
approval pages and API and the admin API read the clock once, and authentication, the DPoP
proof, the client's rate and single-use values, the browser session and the grant all use
that reading (a request cannot straddle an expiry)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from app.verifier.app import VerifierApp
from tests.integration.test_concurrency import DETAILS, SHOP, approved_grant
from tests.support.registry import ASSERTION_TYPE as ASSERTION
from tests.support.registry import CIBA, RegistryClient
from tests.support.verifier import merchant


@dataclass
class CountingClock:
    """The registry's clock, counting its readings."""

    inner: Callable[[], float]
    readings: int = 0

    def __call__(self) -> float:
        self.readings += 1
        return self.inner()


async def readings_during(
    registry: RegistryClient, request: Awaitable[httpx.Response]
) -> tuple[httpx.Response, int]:
    """The response to ``request`` (built beforehand, so the client's own readings of the
    shared test clock are not counted) and how often the registry read its clock for it."""
    assert registry.app is not None
    state = registry.app.state.registry
    clock = CountingClock(state.clock)
    state.clock = clock
    try:
        response = await request
    finally:
        state.clock = clock.inner
    return response, clock.readings


async def test_a_token_request_reads_the_clock_once(registry: RegistryClient) -> None:
    agent, auth_req_id, _ = await approved_grant(registry)
    for grant_type in (CIBA, "refresh_token"):
        params = (
            {"auth_req_id": auth_req_id}
            if grant_type == CIBA
            else {"refresh_token": agent.refresh_token}
        )
        form, proof = agent.form(grant_type=grant_type, **params), agent.proof("/token")
        response, readings = await readings_during(registry, agent.post("/token", form, dpop=proof))
        assert response.status_code == 200, response.text
        assert readings == 1, grant_type
        agent.refresh_token = response.json()["refresh_token"]


async def test_bc_authorize_and_revoke_read_the_clock_once(registry: RegistryClient) -> None:
    agent, _, _ = await approved_grant(registry)
    for path, form in (
        ("/bc-authorize", agent.form(authorization_details=json.dumps(DETAILS))),
        ("/revoke", agent.form(token="not-a-token")),
    ):
        response, readings = await readings_during(registry, agent.post(path, form, dpop=None))
        assert response.status_code == 200, response.text
        assert readings == 1, path


async def test_browser_and_admin_requests_read_the_clock_once(registry: RegistryClient) -> None:
    """The session check and the route judge the same instant: an approval cannot pass the
    session's idle limit at one reading and stamp the grant with a later one."""
    await registry.ensure_resource_server(SHOP)
    human = await registry.human()
    agent = await registry.agent(human)
    auth_req_id = (await agent.bc_authorize(DETAILS)).json()["auth_req_id"]
    options = await human.api("POST", f"/requests/{auth_req_id}/approve/options")
    credential = human.authenticator.get(options.json(), origin=human.origin)
    approve = human.api("POST", f"/requests/{auth_req_id}/approve", {"credential": credential})
    approved, readings = await readings_during(registry, approve)
    assert approved.status_code == 200, approved.text
    assert readings == 1, "approve"
    grant_id = approved.json()["grant_id"]
    for name, request in (
        ("requests", human.api("GET", "/requests")),
        ("dashboard", human.browser.get("/ui/")),
        ("revoke", human.api("POST", f"/grants/{grant_id}/revoke")),
        ("disable", registry.admin("POST", f"/agents/{agent.client_id}/disable")),
    ):
        response, readings = await readings_during(registry, request)
        assert response.status_code == 200, (name, response.text)
        assert readings == 1, name


async def test_the_verifier_judges_a_caller_assertion_at_the_request_instant(
    registry: RegistryClient, verifier: VerifierApp, verifier_http: httpx.AsyncClient
) -> None:
    """The caller's client assertion is checked at the request's one ``now``, the instant
    the decision uses: a reading of another clock (a day later here) changes nothing."""
    shop = await merchant(registry, verifier_http, private_key_jwt=True)
    state: Any = verifier.state
    callers = state.verifier.callers
    now = state.verifier.now()
    own = callers._clock
    callers._clock = lambda: own() + 86_400
    try:
        response = await shop.introspect(
            "not-a-token", client_assertion=shop.assertion(now), client_assertion_type=ASSERTION
        )
    finally:
        callers._clock = own
    assert response.status_code == 200, response.text
    assert response.json() == {"active": False}
