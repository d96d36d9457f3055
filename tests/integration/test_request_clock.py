"""A registry request judges one instant: the token endpoint, /bc-authorize and /revoke read
the clock once, and authentication, the DPoP proof, the client's rate and single-use values
and the grant all use that reading (a request cannot straddle an expiry)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from tests.integration.test_concurrency import DETAILS, approved_grant
from tests.support.registry import CIBA, RegistryClient


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
