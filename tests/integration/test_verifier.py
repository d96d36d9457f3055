"""The verifier on the wire: /introspect and /verify against a real registry, PostgreSQL
(through the read-only role) and Redis."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from app.core.jwk import b64url_decode
from app.settings import Settings
from app.verifier.app import VerifierApp
from app.verifier.app import create_app as create_verifier
from tests.factories import Agent
from tests.support.clock import Clock
from tests.support.registry import AgentClient, RegistryClient
from tests.support.verifier import (
    Merchant,
    api,
    eventually,
    granted_agent,
    is_inactive,
    merchant,
    shop_with_grant,
    verify_body,
)

EXPECTED_ACTIVE = {
    "active", "iss", "sub", "aud", "client_id", "act", "exp", "iat", "jti", "cnf",
    "token_type", "authorization_details", "grant_id", "auth_time",
}  # fmt: skip


def payments(resource: str, limits: dict[str, Any]) -> dict[str, Any]:
    return api(resource, ["pay"], limits=limits)


setup = shop_with_grant
inactive = is_inactive


# --- /introspect -----------------------------------------------------------------------------


async def test_introspect_active_token_has_every_contract_member(
    registry: RegistryClient, verifier_http: httpx.AsyncClient
) -> None:
    shop, alice, agent, grant_id = await setup(registry, verifier_http)
    response = await shop.introspect(agent.access_token or "")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == EXPECTED_ACTIVE
    assert body["active"] is True
    assert (body["sub"], body["aud"], body["grant_id"]) == (alice.id, shop.resource, grant_id)
    assert body["client_id"] == agent.client_id
    assert body["act"] == {"sub": agent.client_id}
    assert body["token_type"] == "DPoP"
    assert set(body["cnf"]) == {"jkt"}
    # warm: served again from the verified-token cache, same answer
    assert (await shop.introspect(agent.access_token or "")).json() == body


async def test_hot_routes_carry_a_request_id(
    registry: RegistryClient, verifier_http: httpx.AsyncClient
) -> None:
    shop, _, agent, _ = await setup(registry, verifier_http)
    form = {"Content-Type": "application/x-www-form-urlencoded", **shop.basic()}
    chosen = await verifier_http.post(
        "/introspect",
        content=urlencode({"token": agent.access_token or ""}),
        headers={**form, "X-Request-ID": "req-7"},
    )
    assert chosen.status_code == 200
    assert chosen.headers["x-request-id"] == "req-7"
    refused = await verifier_http.get("/verify", headers={"X-Request-ID": "bad id"})
    assert refused.status_code == 405
    generated = refused.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16}", generated)
    again = await verifier_http.get("/verify")
    assert again.headers["x-request-id"] not in (generated, "")


async def test_introspect_inactive_cases_are_exactly_active_false(
    registry: RegistryClient, verifier_http: httpx.AsyncClient
) -> None:
    shop, _, agent, _ = await setup(registry, verifier_http)
    other = await merchant(registry, verifier_http)
    token = agent.access_token or ""
    header, payload, signature = token.split(".")
    claims = json.loads(b64url_decode(payload))
    forged_key = Agent()
    wrong_issuer = forged_key.sign(
        {"typ": "at+jwt", "alg": "ES256", "kid": json.loads(b64url_decode(header))["kid"]},
        {**claims, "iss": "https://evil.example"},
    )
    wrong_typ = forged_key.sign({"typ": "JWT", "alg": "ES256", "kid": "x"}, claims)
    tampered = f"{header}.{payload[:-2]}AA.{signature}"
    for bad in ("garbage", f"{header}.{payload}.AAAA", wrong_issuer, wrong_typ, tampered):
        assert await inactive(shop, bad), bad
    assert await inactive(other, token)  # another resource server's audience


async def test_introspect_expired_token_is_inactive(
    registry: RegistryClient, verifier_http: httpx.AsyncClient
) -> None:
    shop, _, agent, _ = await setup(registry, verifier_http)
    assert not await inactive(shop, agent.access_token or "")
    registry.clock.advance(301)
    assert await inactive(shop, agent.access_token or "")


@pytest.mark.parametrize("what", ["token", "grant", "agent", "human"])
async def test_revocations_reach_the_verifier(
    registry: RegistryClient, verifier_http: httpx.AsyncClient, what: str
) -> None:
    shop, alice, agent, grant_id = await setup(registry, verifier_http)
    token = agent.access_token or ""
    assert not await inactive(shop, token)
    if what == "token":
        response = await agent.post("/revoke", agent.form(token=token), dpop=None)
    elif what == "grant":
        response = await registry.admin("POST", f"/grants/{grant_id}/revoke")
    elif what == "agent":
        response = await registry.admin("POST", f"/agents/{agent.client_id}/disable")
    else:
        response = await registry.admin("POST", f"/humans/{alice.id}/suspend")
    assert response.status_code == 200, response.text
    await eventually(lambda: inactive(shop, token))
    denied = await shop.verify(verify_body(agent, shop.resource + "/x", action="read"))
    assert denied.json()["reason"] == "revoked"
    metrics = (await verifier_http.get("/metrics")).text
    assert "agentauth_revocation_lag_seconds_bucket" in metrics
    assert 'agentauth_verifier_token_cache_total{result="hit"}' in metrics


async def test_sub_delegated_token_dies_with_a_disabled_actor(
    registry: RegistryClient, verifier_http: httpx.AsyncClient
) -> None:
    from tests.support.registry import ACCESS_TOKEN_TYPE, EXCHANGE, JWT_TYPE

    shop = await merchant(registry, verifier_http)
    alice = await registry.human()
    agent_a, _ = await granted_agent(
        registry, alice, [api(shop.resource)], max_delegation_depth="1"
    )
    agent_b = await registry.agent(alice)
    now = int(registry.clock())
    actor = agent_b.keys.assertion(iat=now, exp=now + 60, aud="http://localhost", typ="actor+jwt")
    exchanged = await agent_a.token(
        EXCHANGE,
        subject_token=agent_a.access_token,
        subject_token_type=ACCESS_TOKEN_TYPE,
        actor_token=actor,
        actor_token_type=JWT_TYPE,
        resource=shop.resource,
    )
    assert exchanged.status_code == 200, exchanged.text
    delegated = exchanged.json()["access_token"]
    body = (await shop.introspect(delegated)).json()
    assert body["act"] == {"sub": agent_b.client_id, "act": {"sub": agent_a.client_id}}
    disabled = await registry.admin("POST", f"/agents/{agent_b.client_id}/disable")
    assert disabled.status_code == 200
    await eventually(lambda: inactive(shop, delegated))


async def test_revoking_an_access_token_revokes_every_token_exchanged_from_it(
    registry: RegistryClient, verifier_http: httpx.AsyncClient
) -> None:
    from tests.support.registry import ACCESS_TOKEN_TYPE, EXCHANGE

    shop, _, agent, _ = await setup(registry, verifier_http)
    root = agent.access_token or ""

    async def exchanged_from(subject: str) -> str:
        response = await agent.token(
            EXCHANGE, subject_token=subject, subject_token_type=ACCESS_TOKEN_TYPE
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    child = await exchanged_from(root)
    grandchild = await exchanged_from(child)
    sibling = await agent.token("refresh_token", refresh_token=agent.refresh_token)
    assert sibling.status_code == 200, sibling.text
    revoked = await agent.post("/revoke", agent.form(token=root), dpop=None)
    assert revoked.status_code == 200
    for token in (root, child, grandchild):
        await eventually(lambda token=token: inactive(shop, token))
    again = await agent.token(
        EXCHANGE, subject_token=grandchild, subject_token_type=ACCESS_TOKEN_TYPE
    )
    assert again.status_code == 400, again.text
    # the grant lives on: a token of it not derived from the revoked one still works
    assert (await shop.introspect(sibling.json()["access_token"])).json()["active"] is True


async def test_the_registry_refuses_to_exchange_a_token_naming_a_disabled_agent(
    registry: RegistryClient, verifier_http: httpx.AsyncClient
) -> None:
    """A → B → C; B is disabled while A's grant lives on: C's token is dead at the
    verifier, and the registry derives nothing more from it."""
    from tests.support.registry import ACCESS_TOKEN_TYPE, EXCHANGE, JWT_TYPE

    shop = await merchant(registry, verifier_http)
    alice = await registry.human()
    agent_a, _ = await granted_agent(
        registry, alice, [api(shop.resource)], max_delegation_depth="2"
    )
    agent_b, agent_c = await registry.agent(alice), await registry.agent(alice)

    async def delegate(holder: AgentClient, subject: str, to: AgentClient) -> str:
        now = int(registry.clock())
        response = await holder.token(
            EXCHANGE,
            subject_token=subject,
            subject_token_type=ACCESS_TOKEN_TYPE,
            actor_token=to.keys.actor_token(iat=now, exp=now + 60, aud="http://localhost"),
            actor_token_type=JWT_TYPE,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    to_c = await delegate(
        agent_b, await delegate(agent_a, agent_a.access_token or "", agent_b), agent_c
    )
    disabled = await registry.admin("POST", f"/agents/{agent_b.client_id}/disable")
    assert disabled.status_code == 200
    await eventually(lambda: inactive(shop, to_c))
    refused = await agent_c.token(
        EXCHANGE, subject_token=to_c, subject_token_type=ACCESS_TOKEN_TYPE
    )
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_request"
    assert "disabled agent" in refused.json()["error_description"]
    still = await agent_a.token("refresh_token", refresh_token=agent_a.refresh_token)
    assert still.status_code == 200, still.text  # A's grant is untouched


# --- caller authentication -------------------------------------------------------------------


async def test_callers_authenticate_by_basic_post_or_private_key_jwt(
    registry: RegistryClient, verifier_http: httpx.AsyncClient
) -> None:
    shop, alice, agent, _ = await setup(registry, verifier_http)
    token = agent.access_token or ""
    assert (await shop.introspect(token)).json()["active"] is True
    post = Merchant(verifier_http, shop.resource, shop.client_id)
    by_post = await post.introspect(
        token, client_id=shop.client_id, client_secret=shop.secret or ""
    )
    assert by_post.json()["active"] is True

    jwt_shop = await merchant(registry, verifier_http, private_key_jwt=True)
    agent2, _ = await granted_agent(registry, alice, [api(jwt_shop.resource)])
    assertion = jwt_shop.assertion(int(registry.clock()))
    params = {
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    first = await jwt_shop.introspect(agent2.access_token or "", **params)
    assert first.json()["active"] is True
    replayed = await jwt_shop.introspect(agent2.access_token or "", **params)
    assert (replayed.status_code, replayed.json()["error"]) == (401, "invalid_client")
    body = verify_body(agent2, jwt_shop.resource + "/a", action="read")
    fresh = {**params, "client_assertion": jwt_shop.assertion(int(registry.clock()))}
    allowed = await jwt_shop.verify({**body, **fresh})
    assert allowed.json()["allowed"] is True, allowed.text
    # the same caller assertion with a fresh proof: refused as a replay
    again = await jwt_shop.verify(
        {**verify_body(agent2, jwt_shop.resource + "/a", action="read"), **fresh}
    )
    assert (again.status_code, again.json()["error"]) == (401, "invalid_client")


async def test_a_caller_assertion_is_used_up_by_a_denied_verify(
    registry: RegistryClient, verifier_http: httpx.AsyncClient
) -> None:
    """A replayed assertion cannot probe a token's state: the first use spends it even
    when the decision is a denial."""
    shop = await merchant(registry, verifier_http, private_key_jwt=True)
    agent, _ = await granted_agent(registry, await registry.human(), [api(shop.resource)])
    params = {
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": shop.assertion(int(registry.clock())),
    }
    body = verify_body(agent, shop.resource + "/a", action="write")  # not granted
    denied = await shop.verify({**body, **params})
    assert denied.status_code == 200, denied.text
    assert denied.json()["allowed"] is False
    probe = verify_body(agent, shop.resource + "/a", action="read")
    replayed = await shop.verify({**probe, **params})
    assert (replayed.status_code, replayed.json()["error"]) == (401, "invalid_client")


async def flood_of_unknown_callers(http: httpx.AsyncClient, count: int) -> list[int]:
    """``count`` parallel introspections, each from a made-up caller id."""

    async def one() -> int:
        raw = f"rs_{uuid.uuid4().hex}:secret".encode()
        response = await http.post(
            "/introspect",
            content="token=x",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": "Basic " + base64.b64encode(raw).decode(),
            },
        )
        return response.status_code

    return list(await asyncio.gather(*(one() for _ in range(count))))


async def test_unknown_callers_never_crowd_out_known_ones(
    registry: RegistryClient,
    verifier_http: httpx.AsyncClient,
    settings: Settings,
    verifier_database_url: str,
    clock: Clock,
) -> None:
    """Made-up ids use up their own allowance (401, then 503); a registered caller is
    served all along, whether its record is fresh, due for a refresh, or never used."""
    used = await merchant(registry, verifier_http)
    token = (await granted_agent(registry, await registry.human(), [api(used.resource)]))[0]
    fresh = await merchant(registry, verifier_http)  # registered, never calls this one
    app = create_verifier(
        settings.model_copy(update={"database_url": verifier_database_url}), clock=clock
    )
    async with app.running():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://v2") as http:
            known = Merchant(http, used.resource, used.client_id, used.secret)
            newcomer = Merchant(http, fresh.resource, fresh.client_id, fresh.secret)
            assert (await known.introspect(token.access_token or "")).status_code == 200
            clock.advance(61)  # the known caller's record is now due for a refresh
            statuses = await flood_of_unknown_callers(http, 400)
            assert set(statuses) == {401, 503}, set(statuses)
            for caller in (known, newcomer):
                answer = await caller.introspect(token.access_token or "")
                assert answer.status_code == 200, answer.text


async def test_caller_authentication_failures(
    registry: RegistryClient, verifier_http: httpx.AsyncClient
) -> None:
    shop, _, agent, _ = await setup(registry, verifier_http)
    token = agent.access_token or ""
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    async def introspect(headers: dict[str, str], body: str) -> httpx.Response:
        return await verifier_http.post("/introspect", content=body, headers=form | headers)

    cases = [
        ({}, f"token={token}", 401, "invalid_client"),
        ({"Authorization": "Basic !!!"}, f"token={token}", 401, "invalid_client"),
        (Merchant(verifier_http, "", shop.client_id, "wrong").basic(), f"token={token}", 401,
         "invalid_client"),
        (Merchant(verifier_http, "", "rs_unknown", "x").basic(), f"token={token}", 401,
         "invalid_client"),
        ({}, f"token={token}&client_id={shop.client_id}&client_secret=nope", 401,
         "invalid_client"),
        (shop.basic(), f"token={token}&client_id={shop.client_id}&client_secret={shop.secret}",
         400, "invalid_request"),
        ({}, f"token={token}&client_assertion_type=x&client_assertion=y", 401, "invalid_client"),
    ]  # fmt: skip
    for headers, body, status, error in cases:
        response = await introspect(headers, body)
        assert (response.status_code, response.json()["error"]) == (status, error), body
        assert response.headers["cache-control"] == "no-store"
    basic_failure = await introspect({"Authorization": "Basic !!!"}, f"token={token}")
    assert basic_failure.headers["www-authenticate"].startswith("Basic ")
    unauthenticated = await shop.verify(verify_body(agent, shop.resource), auth=False)
    assert (unauthenticated.status_code, unauthenticated.json()["error"]) == (401, "invalid_client")


async def test_malformed_requests_are_400_never_500(
    registry: RegistryClient, verifier_http: httpx.AsyncClient
) -> None:
    shop, _, agent, _ = await setup(registry, verifier_http)
    basic = shop.basic()
    form = {"Content-Type": "application/x-www-form-urlencoded", **basic}
    as_json = {"Content-Type": "application/json", **basic}
    good = verify_body(agent, shop.resource + "/x", action="read")

    def bad(**members: Any) -> bytes:
        return json.dumps({**good, **members}).encode()

    cases: list[tuple[str, str, dict[str, str], bytes, int]] = [
        ("GET", "/introspect", basic, b"", 405),
        ("POST", "/introspect", basic | {"Content-Type": "text/plain"}, b"token=x", 400),
        ("POST", "/introspect?token=x", form, b"", 400),
        ("POST", "/introspect", form, b"", 400),
        ("POST", "/introspect", form, b"token=a&token=b", 400),
        ("POST", "/introspect", form, b"token=%ff", 400),
        ("POST", "/introspect", form, b"token=" + b"a" * 70_000, 413),
        ("POST", "/verify", as_json, b"{", 400),
        ("POST", "/verify", as_json, b"[]", 400),
        ("POST", "/verify", as_json, b'{"token": 1}', 400),
        ("POST", "/verify", basic | {"Content-Type": "text/plain"}, json.dumps(good).encode(), 400),
        ("POST", "/verify", as_json, b'{"a": 1, "a": 2}', 400),
        ("POST", "/verify", as_json, bad(url="not a url"), 400),
        ("POST", "/verify", as_json, bad(url="https://evil.example/x"), 400),
        ("POST", "/verify", as_json, bad(method="post"), 400),
        ("POST", "/verify", as_json, bad(amount=5), 400),
        ("POST", "/verify", as_json, bad(amount={"value": "1.001", "currency": "EUR"}), 400),
        ("POST", "/verify", as_json, bad(action=["x"]), 400),
        ("POST", "/verify", as_json, bad(client_secret=5), 400),
        ("POST", "/verify", as_json | {"Content-Length": "abc"}, b"{}", 400),
    ]  # fmt: skip
    for method, path, headers, body, status in cases:
        response = await verifier_http.request(method, path, content=body, headers=headers)
        assert response.status_code == status, (path, body[:80], response.text)
        assert response.json()["error"] == "invalid_request"
        assert response.headers["cache-control"] == "no-store"


# --- /verify decisions -----------------------------------------------------------------------


async def reason(shop: Merchant, body: dict[str, Any]) -> str:
    response = await shop.verify(body)
    assert response.status_code == 200, response.text
    decision = response.json()
    if decision["allowed"]:
        return "allowed"
    assert set(decision) == {"allowed", "reason", "www_authenticate"}
    assert decision["www_authenticate"].startswith("DPoP ")
    return str(decision["reason"])


async def test_verify_allows_and_denies_with_every_token_and_proof_reason(
    registry: RegistryClient, verifier_http: httpx.AsyncClient
) -> None:
    shop, alice, agent, grant_id = await setup(registry, verifier_http)
    url = shop.resource + "/orders/7?expand=1"
    allowed = await shop.verify(verify_body(agent, url, action="read"))
    decision = allowed.json()
    assert decision["allowed"] is True
    assert (decision["sub"], decision["grant_id"], decision["client_id"]) == (
        alice.id, grant_id, agent.client_id,
    )  # fmt: skip
    assert decision["authorization_details"][0]["actions"] == ["read"]
    assert allowed.headers["cache-control"] == "no-store"

    token = agent.access_token or ""
    assert await reason(shop, verify_body(agent, url, token="x.y.z")) == "invalid_token"
    other = await merchant(registry, verifier_http)
    assert await reason(other, verify_body(agent, other.resource)) == "audience_mismatch"

    body = verify_body(agent, url, action="read")
    assert await reason(shop, body) == "allowed"
    assert await reason(shop, body) == "dpop_replay"

    wrong_htm = {**verify_body(agent, url, method="GET", action="read"), "method": "POST"}
    assert await reason(shop, wrong_htm) == "invalid_dpop_proof"
    wrong_htu = {**verify_body(agent, shop.resource + "/a", action="read"), "url": url}
    assert await reason(shop, wrong_htu) == "invalid_dpop_proof"
    stale = verify_body(agent, url, iat=int(registry.clock()) - 3600, action="read")
    assert await reason(shop, stale) == "invalid_dpop_proof"
    no_ath = {**body, "dpop": agent.keys.dpop(htm="POST", htu=url, iat=int(registry.clock()))}
    assert await reason(shop, no_ath) == "invalid_dpop_proof"
    thief = Agent()
    stolen = thief.dpop(htm="POST", htu=url, iat=int(registry.clock()), access_token=token)
    assert await reason(shop, {**body, "dpop": stolen}) == "dpop_key_mismatch"
    assert await reason(shop, verify_body(agent, url, action="write")) == "insufficient_capability"

    registry.clock.advance(301)
    assert await reason(shop, verify_body(agent, url, action="read")) == "expired"


async def test_verify_envelope_time_window_maximum_and_rate(
    registry: RegistryClient, verifier_http: httpx.AsyncClient
) -> None:
    shop = await merchant(registry, verifier_http)
    alice = await registry.human()
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    today = days[datetime.fromtimestamp(registry.clock(), tz=UTC).weekday()]
    other_days = [d for d in days if d != today]
    closed = {"days": other_days, "start": "00:00", "end": "24:00", "time_zone": "UTC"}
    open_now = {"days": [today], "start": "00:00", "end": "24:00", "time_zone": "UTC"}
    agent, _ = await granted_agent(
        registry,
        alice,
        [
            api(shop.resource, ["pay"], identifier="small",
                limits={"max_amount": {"value": "10.00", "currency": "EUR"},
                        "rate": {"max_requests": 3, "period": "hour"}}),
            api(shop.resource, ["pay"], identifier="closed", limits={"time_windows": [closed]}),
            api(shop.resource, ["pay"], identifier="open", limits={"time_windows": [open_now]}),
        ],
    )  # fmt: skip
    url = shop.resource + "/pay"

    def pay(value: str, identifier: str = "small", currency: str = "EUR") -> dict[str, Any]:
        amount = {"value": value, "currency": currency}
        return verify_body(agent, url, action="pay", identifier=identifier, amount=amount)

    assert await reason(shop, pay("10.01")) == "amount_exceeds_limit"
    assert await reason(shop, pay("1.00", currency="USD")) == "amount_exceeds_limit"
    assert await reason(shop, {**pay("1.00"), "amount": None}) == "amount_exceeds_limit"
    assert await reason(shop, pay("1.00", identifier="closed")) == "outside_time_window"
    assert await reason(shop, pay("1.00", identifier="open")) == "allowed"
    results = [await reason(shop, pay("1.00")) for _ in range(4)]
    assert results == ["allowed", "allowed", "allowed", "rate_limited"]


async def test_budget_counts_atomically_under_fifty_parallel_spends(
    registry: RegistryClient, verifier_http: httpx.AsyncClient
) -> None:
    budget = {"budget": {"value": "10.00", "currency": "EUR", "period": "day"}}
    shop, _, agent, _grant_id = await setup(registry, verifier_http, lambda r: payments(r, budget))
    url = shop.resource + "/pay"
    one = {"value": "1.00", "currency": "EUR"}
    bodies = [verify_body(agent, url, action="pay", amount=one) for _ in range(50)]
    responses = await asyncio.gather(*(shop.verify(body) for body in bodies))
    decisions = [r.json() for r in responses]
    assert sum(d["allowed"] for d in decisions) == 10
    assert {d.get("reason") for d in decisions if not d["allowed"]} == {"budget_exhausted"}


async def test_the_same_proof_in_parallel_is_accepted_once(
    registry: RegistryClient, verifier_http: httpx.AsyncClient
) -> None:
    shop, _, agent, _ = await setup(registry, verifier_http)
    body = verify_body(agent, shop.resource + "/x", action="read")
    responses = await asyncio.gather(*(shop.verify(body) for _ in range(20)))
    reasons = sorted(r.json().get("reason", "allowed") for r in responses)
    assert reasons == ["allowed"] + ["dpop_replay"] * 19


async def test_verifier_jwks_matches_the_registry_and_ops_endpoints(
    registry: RegistryClient, verifier_http: httpx.AsyncClient
) -> None:
    ours = (await verifier_http.get("/.well-known/jwks.json")).json()
    theirs = (await registry.http.get("/.well-known/jwks.json")).json()
    assert ours == theirs
    assert ours["keys"]
    assert (await verifier_http.get("/healthz")).json() == {"status": "ok"}
    ready = await verifier_http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {
        "keys": True, "revocations": True, "cache": True, "database": True,
    }  # fmt: skip
    metrics = (await verifier_http.get("/metrics")).text
    assert "agentauth_verifier_cached_tokens" in metrics


async def test_rotated_key_reaches_the_verifier(
    registry: RegistryClient, verifier: VerifierApp, verifier_http: httpx.AsyncClient
) -> None:
    before = {k["kid"] for k in (await verifier_http.get("/.well-known/jwks.json")).json()["keys"]}
    rotated = await registry.admin("POST", "/keys/rotate")
    assert rotated.status_code == 200, rotated.text

    async def published() -> bool:
        ours = (await verifier_http.get("/.well-known/jwks.json")).json()
        theirs = (await registry.http.get("/.well-known/jwks.json")).json()
        kids = {k["kid"] for k in ours["keys"]}
        return bool(ours == theirs and len(kids - before) == 1)

    await eventually(published)


async def test_unknown_kid_refreshes_at_most_once(
    registry: RegistryClient, verifier: VerifierApp, verifier_http: httpx.AsyncClient
) -> None:
    shop = await merchant(registry, verifier_http)
    state: Any = verifier.state
    keys = state.verifier.keys
    calls = 0
    load = keys.load

    async def counting_load() -> None:
        nonlocal calls
        calls += 1
        await load()

    keys.load = counting_load
    forged = Agent()
    for _ in range(5):
        token = forged.sign({"typ": "at+jwt", "alg": "ES256", "kid": uuid.uuid4().hex}, {"a": 1})
        assert await inactive(shop, token)
    assert calls == 1


async def test_an_unexpected_failure_is_a_plain_500_without_internals(
    registry: RegistryClient, verifier: VerifierApp, verifier_http: httpx.AsyncClient
) -> None:
    shop = await merchant(registry, verifier_http)
    state: Any = verifier.state

    async def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("secret internal detail")

    state.verifier.callers.authenticate = broken
    response = await shop.introspect("anything")
    assert response.status_code == 500
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["error"] == "server_error"
    assert "secret internal detail" not in response.text
    assert re.fullmatch(r"Internal error [0-9a-f]{16}\.", body["error_description"])
