"""A FastAPI shop protected by the merchant middleware, called by an SDK agent, decided by
the real verifier."""

from __future__ import annotations

import base64
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from starlette.exceptions import HTTPException

from app.sdk import AgentClient, AgentKey, DPoPAuth
from app.sdk.local import LocalVerifier
from app.sdk.merchant import (
    AgentAuthMiddleware,
    Verifier,
    VerifierClient,
    requires,
)
from tests.support.registry import ISSUER, RegistryClient
from tests.support.verifier import merchant

OTHER_SHOP = "https://other-mw.example/api"


async def amount_from_body(request: Request) -> dict[str, str]:
    body = await request.json()
    return {"value": str(body["value"]), "currency": "EUR"}


def shop_app(verifier: Verifier, shop: str) -> FastAPI:
    app = FastAPI()
    app.add_middleware(
        AgentAuthMiddleware,
        verifier=verifier,
        prefix="/api",
        resource=shop,
        authorization_servers=[ISSUER],
    )

    @app.post("/api/pay")
    async def pay(
        grant: Annotated[dict[str, Any], Depends(requires("pay", amount=amount_from_body))],
    ) -> dict[str, Any]:
        return {"paid_for": grant["sub"], "by": grant["client_id"]}

    @app.post("/api/subscribe")
    async def subscribe(
        grant: Annotated[dict[str, Any], Depends(requires("subscribe", amount=amount_from_body))],
    ) -> dict[str, Any]:
        return {"by": grant["client_id"]}

    @app.get("/api/orders")
    async def orders(grant: Annotated[dict[str, Any], Depends(requires("read"))]) -> Any:
        return {"human": grant["sub"]}

    return app


async def approved_buyer(registry: RegistryClient, shop: str) -> tuple[AgentClient, str]:
    """An SDK agent holding an approved grant: pay up to 20 EUR at the shop, subscribe within
    a daily budget, and pay at another shop (so a token for that audience can be had)."""
    alice = await registry.human()
    enrollment = (await alice.api("POST", "/enrollment-tokens", {"expires_in": 600})).json()
    agent = AgentClient(ISSUER, AgentKey.generate(), http=registry.http)
    await agent.register(enrollment["token"], client_name="Buyer")
    details = [
        {"type": "api", "locations": [shop], "actions": ["pay"],
         "limits": {"max_amount": {"value": "20.00", "currency": "EUR"}}},
        {"type": "api", "locations": [shop], "actions": ["subscribe"],
         "limits": {"budget": {"value": "50.00", "currency": "EUR", "period": "day"}}},
        {"type": "api", "locations": [OTHER_SHOP], "actions": ["pay"]},
    ]  # fmt: skip
    request = await agent.request_grant(details)
    assert (await alice.approve(request.auth_req_id)).status_code == 200
    await request.wait_for_approval()
    return agent, alice.id


@pytest.mark.parametrize("checking", ["verifier", "local"])
async def test_shop_accepts_the_agent_and_refuses_everything_else(
    registry: RegistryClient, verifier_http: httpx.AsyncClient, checking: str
) -> None:
    origin = f"https://shop-{checking}.example"
    shop_rs = await merchant(registry, verifier_http, f"{origin}/api")
    assert shop_rs.secret is not None
    await registry.ensure_resource_server(OTHER_SHOP)
    agent, human = await approved_buyer(registry, f"{origin}/api")
    assert agent.tokens is not None
    verifier: Verifier = (
        VerifierClient("http://verifier", shop_rs.client_id, shop_rs.secret, http=verifier_http)
        if checking == "verifier"
        else LocalVerifier(ISSUER, f"{origin}/api", http=registry.http)
    )
    transport = httpx.ASGITransport(app=shop_app(verifier, f"{origin}/api"))
    async with httpx.AsyncClient(transport=transport, base_url=origin) as shop:
        paid = await shop.post("/api/pay", json={"value": "12.50"}, auth=agent.auth())
        assert paid.status_code == 200, paid.text
        assert paid.json() == {"paid_for": human, "by": agent.client_id}

        too_much = await shop.post("/api/pay", json={"value": "25.00"}, auth=agent.auth())
        assert too_much.status_code == 403
        assert 'error="insufficient_scope"' in too_much.headers["www-authenticate"]
        # every refusal has one body shape, the middleware's and RFC 6750's codes
        assert too_much.json() == {
            "error": "insufficient_scope",
            "error_description": "amount_exceeds_limit",
        }

        not_allowed = await shop.get("/api/orders", auth=agent.auth())
        assert not_allowed.status_code == 403

        anonymous = await shop.post("/api/pay", json={"value": "1.00"})
        assert anonymous.status_code == 401
        assert set(anonymous.json()) == {"error", "error_description"}
        assert anonymous.headers["www-authenticate"].startswith("DPoP ")
        where = f'resource_metadata="{origin}/.well-known/oauth-protected-resource/api"'
        assert where in anonymous.headers["www-authenticate"]  # RFC 9728 §5.1

        thief = DPoPAuth(AgentKey.generate(), agent.tokens.access_token)
        stolen = await shop.post("/api/pay", json={"value": "1.00"}, auth=thief)
        assert stolen.status_code == 401
        assert 'error="invalid_token"' in stolen.headers["www-authenticate"]
        assert where in stolen.headers["www-authenticate"]

        elsewhere = DPoPAuth(agent.key, await agent.exchange(OTHER_SHOP))  # aud: the other shop
        wrong_audience = await shop.post("/api/pay", json={"value": "1.00"}, auth=elsewhere)
        assert wrong_audience.status_code == 401
        assert 'error="invalid_token"' in wrong_audience.headers["www-authenticate"]

        malformed = await shop.post("/api/pay", json={"value": "12.5.0"}, auth=agent.auth())
        assert malformed.status_code == 400  # the agent's mistake, not the verifier's
        assert malformed.json()["error"] == "invalid_request"
        assert "detail" not in malformed.json()
        no_amount = await shop.post("/api/pay", json={}, auth=agent.auth())
        assert no_amount.status_code == 400
        junk = {"Authorization": "DPoP x", "DPoP": "y", "Content-Type": "application/json"}
        unreadable = await shop.post("/api/pay", content=b"{not json", headers=junk)
        assert unreadable.status_code == 400

        # RFC 9728 §3.1: the well-known path goes between the host and the resource's path,
        # and §3.3: the document's resource is the identifier itself.
        described = await shop.get("/.well-known/oauth-protected-resource/api")
        assert described.status_code == 200
        assert described.json()["resource"] == f"{origin}/api"
        assert described.json()["authorization_servers"] == [ISSUER]
        assert described.json()["dpop_bound_access_tokens_required"] is True
        assert (await shop.get("/.well-known/oauth-protected-resource")).status_code == 404


async def test_local_checking_refuses_counted_limits_and_replays(
    registry: RegistryClient,
) -> None:
    origin = "https://shop-local-limits.example"
    shop = f"{origin}/api"
    await registry.ensure_resource_server(shop)
    await registry.ensure_resource_server(OTHER_SHOP)
    agent, _ = await approved_buyer(registry, shop)
    transport = httpx.ASGITransport(
        app=shop_app(LocalVerifier(ISSUER, shop, http=registry.http), shop)
    )
    async with httpx.AsyncClient(transport=transport, base_url=origin) as http:
        # a budget needs the grant's shared counters: refused locally
        counted = await http.post("/api/subscribe", json={"value": "1.00"}, auth=agent.auth())
        assert counted.status_code == 403
        assert "insufficient_capability" in counted.text

        replayed = httpx.Request("POST", f"{shop}/pay", json={"value": "1.00"})
        signed = next(agent.auth().auth_flow(replayed))
        first = await http.send(signed)
        again = await http.send(signed)
        assert first.status_code == 200, first.text
        assert again.status_code == 401
        assert "dpop_replay" in again.text


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b"<html>oops</html>", 503),
        (200, b"[1, 2]", 503),
        (400, b"<html>bad</html>", 400),
        (400, b"[1]", 400),
        (502, b"", 503),
    ],
)
async def test_a_verifier_answer_that_is_not_a_decision_is_no_crash(
    status: int, body: bytes, expected: int
) -> None:
    def answer(_: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=body)

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://verifier")
    client = VerifierClient("http://verifier", "rs", "secret", http=http)
    with pytest.raises(HTTPException) as refused:
        await client.verify(token="t", dpop="p", method="GET", url="https://shop/api")
    assert refused.value.status_code == expected
    await client.aclose()


async def test_local_checking_fetches_keys_for_an_unknown_kid_only(
    registry: RegistryClient,
) -> None:
    shop = "https://shop-local-keys.example/api"
    await registry.ensure_resource_server(shop)
    await registry.ensure_resource_server(OTHER_SHOP)
    agent, _ = await approved_buyer(registry, shop)
    assert agent.tokens is not None
    assert registry.app is not None
    registry_transport = httpx.ASGITransport(app=registry.app)
    fetched: list[str] = []

    class Counting(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            fetched.append(request.url.path)
            return await registry_transport.handle_async_request(request)

    http = httpx.AsyncClient(transport=Counting())
    local = LocalVerifier(ISSUER, "HTTPS://Shop-Local-Keys.example/api/", http=http)
    header, payload, signature = agent.tokens.access_token.split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"  # a known kid, a signature that fails
    request = {"dpop": "p", "method": "POST", "url": f"{shop}/pay"}
    assert (await local.verify(token=forged, **request))["reason"] == "invalid_token"
    local._fetched -= 6  # as if the first load were 6 s old, past the 5 s between fetches
    for _ in range(3):
        assert (await local.verify(token=forged, **request))["reason"] == "invalid_token"
    assert fetched == ["/.well-known/jwks.json"]  # the first load only: a bad signature
    # is not a reason to fetch, an unknown kid is
    unknown = base64.urlsafe_b64encode(b'{"alg":"ES256","typ":"at+jwt","kid":"next"}')
    rotated = f"{unknown.decode().rstrip('=')}.{payload}.{signature}"
    for _ in range(3):
        assert (await local.verify(token=rotated, **request))["reason"] == "invalid_token"
    assert len(fetched) == 2  # one more for the unknown kid, then at most every 5 s
    assert local.resource == shop  # canonicalised like the tokens' aud
    await http.aclose()


@pytest.mark.parametrize("checking", ["verifier", "local"])
async def test_a_capability_of_a_type_without_actions_allows_no_action(
    registry: RegistryClient, verifier_http: httpx.AsyncClient, checking: str
) -> None:
    origin = f"https://shop-types-{checking}.example"
    receipt = "urn:shop:receipt"
    types = {receipt: {"type": "object", "properties": {"order": {"type": "string"}}}}
    shop_rs = await merchant(registry, verifier_http, f"{origin}/api", types=types)
    assert shop_rs.secret is not None
    alice = await registry.human()
    enrollment = (await alice.api("POST", "/enrollment-tokens", {"expires_in": 600})).json()
    agent = AgentClient(ISSUER, AgentKey.generate(), http=registry.http)
    await agent.register(enrollment["token"], client_name="Buyer")
    details = [
        {"type": receipt, "locations": [shop_rs.resource], "order": "42"},
        {"type": "api", "locations": [shop_rs.resource], "actions": ["pay"],
         "limits": {"max_amount": {"value": "10.00", "currency": "EUR"}}},
    ]  # fmt: skip
    request = await agent.request_grant(details)
    assert (await alice.approve(request.auth_req_id)).status_code == 200
    await request.wait_for_approval()
    verifier: Verifier = (
        VerifierClient("http://verifier", shop_rs.client_id, shop_rs.secret, http=verifier_http)
        if checking == "verifier"
        else LocalVerifier(ISSUER, shop_rs.resource, http=registry.http)
    )
    transport = httpx.ASGITransport(app=shop_app(verifier, shop_rs.resource))
    async with httpx.AsyncClient(transport=transport, base_url=origin) as shop:
        huge = await shop.post("/api/pay", json={"value": "99999.00"}, auth=agent.auth())
        assert huge.status_code == 403
        assert "amount_exceeds_limit" in huge.text
        small = await shop.post("/api/pay", json={"value": "5.00"}, auth=agent.auth())
        assert small.status_code == 200, small.text


@pytest.mark.parametrize("checking", ["verifier", "local"])
async def test_a_shop_that_accepts_bearer_tokens_takes_them_without_a_proof(
    registry: RegistryClient, verifier_http: httpx.AsyncClient, checking: str, settings: Any
) -> None:
    from tests.support.oauth import CodeClient

    origin = f"https://bearer-{checking}.example"
    resource = f"{origin}/api"
    body = {
        "name": "Bearer shop",
        "resource": resource,
        "dpop_required": False,
        "scopes": {"pay": [{"type": "api", "actions": ["pay"]}]},
    }
    created = (await registry.admin("POST", "/resource-servers", body)).json()
    assert registry.app is not None
    state = registry.app.state.registry
    state.settings = settings.model_copy(update={"registration_policy": "open-public"})
    human = await registry.human()
    client = CodeClient(http=registry.http, clock=registry.clock)
    assert (await client.register()).status_code == 201
    _, answer = await client.consent(human, scope="pay", resource=resource)
    token = (await client.redeem(answer["code"], dpop=False)).json()["access_token"]

    def shop(dpop_required: bool) -> httpx.AsyncClient:
        verifier: Verifier = (
            VerifierClient(
                "http://verifier",
                created["client_id"],
                created["client_secret"],
                http=verifier_http,
            )
            if checking == "verifier"
            else LocalVerifier(ISSUER, resource, http=registry.http, dpop_required=dpop_required)
        )
        app = FastAPI()
        app.add_middleware(
            AgentAuthMiddleware, verifier=verifier, prefix="/api", dpop_required=dpop_required
        )

        @app.post("/api/pay")
        async def pay(grant: Annotated[dict[str, Any], Depends(requires("pay"))]) -> Any:
            return {"paid_for": grant["sub"]}

        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=origin)

    bearer = {"Authorization": f"Bearer {token}"}
    async with shop(dpop_required=False) as accepting:
        paid = await accepting.post("/api/pay", json={}, headers=bearer)
        assert paid.status_code == 200, paid.text
        assert paid.json() == {"paid_for": human.id}
        anonymous = await accepting.post("/api/pay", json={})
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        assert ", DPoP " in anonymous.headers["www-authenticate"]
    async with shop(dpop_required=True) as strict:
        refused = await strict.post("/api/pay", json={}, headers=bearer)
        assert refused.status_code == 401
