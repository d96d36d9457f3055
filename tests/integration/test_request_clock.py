"""A registry request judges one instant: the token endpoint, /bc-authorize and /revoke read
the clock once, and authentication, the DPoP proof, the client's rate and single-use values
and the grant all use that reading (a request cannot straddle an expiry)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.integration.test_concurrency import DETAILS, approved_grant
from tests.support.registry import CIBA, RegistryClient


@dataclass
class CountingClock:
    """The registry's clock, with a count of its readings while ``counting``."""

    inner: object
    readings: int = 0
    counting: bool = field(default=False)

    def __call__(self) -> float:
        if self.counting:
            self.readings += 1
        return self.inner()  # type: ignore[operator, no-any-return]


@contextmanager
def counted(registry: RegistryClient) -> Iterator[CountingClock]:
    assert registry.app is not None
    state = registry.app.state.registry
    clock = CountingClock(state.clock)
    state.clock = clock
    try:
        yield clock
    finally:
        state.clock = clock.inner


async def test_a_token_request_reads_the_clock_once(registry: RegistryClient) -> None:
    agent, auth_req_id, _ = await approved_grant(registry)
    for grant_type, params in ((CIBA, {"auth_req_id": auth_req_id}), ("refresh_token", {})):
        if grant_type == "refresh_token":
            params = {"refresh_token": agent.refresh_token}
        form, proof = agent.form(grant_type=grant_type, **params), agent.proof("/token")
        with counted(registry) as clock:
            clock.counting = True
            response = await agent.post("/token", form, dpop=proof)
            clock.counting = False
        assert response.status_code == 200, response.text
        assert clock.readings == 1, grant_type
        agent.refresh_token = response.json()["refresh_token"]


async def test_bc_authorize_and_revoke_read_the_clock_once(registry: RegistryClient) -> None:
    agent, _, _ = await approved_grant(registry)
    asking = agent.form(authorization_details=json.dumps(DETAILS))
    with counted(registry) as clock:
        clock.counting = True
        asked = await agent.post("/bc-authorize", asking, dpop=None)
        clock.counting = False
    assert asked.status_code == 200, asked.text
    assert clock.readings == 1
    revoking = agent.form(token="not-a-token")
    with counted(registry) as clock:
        clock.counting = True
        revoked = await agent.post("/revoke", revoking, dpop=None)
        clock.counting = False
    assert revoked.status_code == 200, revoked.text
    assert clock.readings == 1
