"""The authorization-code grant with PKCE and passkey consent (RFC 6749 §4.1, RFC 7636,
RFC 8707, RFC 9207, RFC 9449 §10), public and secret-holding clients, open registration and
Bearer tokens, on the wire."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.settings import Settings
from tests.factories import Agent
from tests.support.oauth import REDIRECT_URI, CodeClient, query
from tests.support.registry import ISSUER, Human, RegistryClient
from tests.support.verifier import Merchant, eventually, is_inactive

PAY = {
    "type": "api",
    "actions": ["pay"],
    "limits": {"max_amount": {"value": "10.00", "currency": "EUR"}},
}
READ = {"type": "api", "actions": ["read"]}


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = dict(response.json())
    assert body["error"] == code, body
    assert response.headers["cache-control"] == "no-store"
    return body


async def resource_server(
    registry: RegistryClient, *, dpop_required: bool = True
) -> dict[str, Any]:
    resource = f"https://tools-{uuid.uuid4().hex[:8]}.example.com/mcp"
    body = {
        "name": "Tools",
        "resource": resource,
        "dpop_required": dpop_required,
        "scopes": {"pay": [PAY], "read": [READ]},
    }
    created = await registry.admin("POST", "/resource-servers", body)
    assert created.status_code == 201, created.text
    return dict(created.json())


@pytest.fixture
def open_registration(registry: RegistryClient, settings: Settings) -> None:
    assert registry.app is not None
    state = registry.app.state.registry
    state.settings = settings.model_copy(update={"registration_policy": "open-public"})


@pytest.fixture
async def alice(registry: RegistryClient) -> Human:
    return await registry.human("Alice")


@pytest.fixture
async def client(registry: RegistryClient, open_registration: None) -> CodeClient:
    client = CodeClient(http=registry.http, clock=registry.clock)
    registered = await client.register()
    assert registered.status_code == 201, registered.text
    return client


@pytest.fixture
async def shop(registry: RegistryClient, verifier_http: httpx.AsyncClient) -> Merchant:
    created = await resource_server(registry, dpop_required=False)
    return Merchant(
        verifier_http, created["resource"], created["client_id"], created["client_secret"]
    )


# the happy path ----------------------------------------------------------------------------


async def test_a_public_client_gets_dpop_bound_tokens_with_the_humans_passkey_consent(
    registry: RegistryClient, alice: Human, client: CodeClient
) -> None:
    rs = await resource_server(registry)
    _, answer = await client.consent(alice, scope="pay", resource=rs["resource"], state="s-1")
    assert answer["state"] == "s-1"  # passed through untouched
    assert answer["iss"] == ISSUER  # RFC 9207
    tokens = await client.redeem(answer["code"])
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert tokens.headers["cache-control"] == "no-store"
    assert body["token_type"] == "DPoP"
    assert body["scope"] == "pay"
    claims = claims_of(body["access_token"])
    assert claims["sub"] == alice.id
    assert claims["aud"] == rs["resource"]
    assert claims["client_id"] == client.client_id == claims["act"]["sub"]
    assert claims["cnf"] == {"jkt": client.dpop.jkt}  # its own key, never registered
    assert claims["authorization_details"] == [{**PAY, "locations": [rs["resource"]]}]


async def test_the_approval_is_stored_and_audited_like_a_ciba_approval(
    registry: RegistryClient, alice: Human, client: CodeClient
) -> None:
    rs = await resource_server(registry)
    auth_req_id, _ = await client.consent(alice, scope="read", resource=rs["resource"])
    grants = (await registry.admin("GET", f"/grants?human={alice.id}")).json()["grants"]
    assert [g["agent"] for g in grants if g["status"] == "active"] == [client.client_id]
    audit = await registry.audit_events()  # every page: earlier tests share the database
    approved = [e for e in audit if e["event"] == "grant.approved"]
    assert approved[-1]["data"]["auth_req_id"] == auth_req_id


async def test_without_a_session_the_human_logs_in_first(
    registry: RegistryClient, client: CodeClient, alice: Human
) -> None:
    rs = await resource_server(registry)
    stranger = Human(id="", browser=registry.new_browser())
    asked = await client.authorize(stranger, scope="read", resource=rs["resource"])
    assert asked.status_code == 303
    location = asked.headers["location"]
    assert location.startswith("/ui/login?next=%2Fauthorize%3F")


async def test_deny_returns_access_denied_with_state_and_iss(
    registry: RegistryClient, alice: Human, client: CodeClient
) -> None:
    rs = await resource_server(registry)
    asked = await client.authorize(alice, scope="read", resource=rs["resource"], state="d-1")
    auth_req_id = asked.headers["location"].rsplit("/", 1)[1]
    denied = await alice.api("POST", f"/requests/{auth_req_id}/deny")
    assert denied.status_code == 200, denied.text
    answer = query(denied.json()["redirect_to"])
    assert (answer["error"], answer["state"], answer["iss"]) == ("access_denied", "d-1", ISSUER)
    assert "code" not in answer


# PKCE ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "description"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "PKCE is required"),
        ({"code_challenge_method": "plain"}, "S256"),
        ({"code_challenge_method": None}, "S256"),
        ({"code_challenge": "short"}, "BASE64URL"),
    ],
    ids=["missing", "plain", "no-method", "malformed"],
)
async def test_pkce_is_s256_and_required(
    registry: RegistryClient,
    alice: Human,
    client: CodeClient,
    params: dict[str, Any],
    description: str,
) -> None:
    rs = await resource_server(registry)
    asked = await client.authorize(
        alice, scope="read", resource=rs["resource"], state="p", **params
    )
    assert asked.status_code == 303
    answer = query(asked.headers["location"])
    assert asked.headers["location"].startswith(REDIRECT_URI + "?")
    assert (answer["error"], answer["state"], answer["iss"]) == ("invalid_request", "p", ISSUER)
    assert description in answer["error_description"]


async def test_a_wrong_code_verifier_is_refused_and_changes_nothing(
    registry: RegistryClient, alice: Human, client: CodeClient
) -> None:
    rs = await resource_server(registry)
    _, answer = await client.consent(alice, scope="read", resource=rs["resource"])
    wrong = await client.redeem(answer["code"], code_verifier="x" * 64)
    assert "code_verifier" in error(wrong, 400, "invalid_grant")["error_description"]
    missing = await client.token(
        grant_type="authorization_code", code=answer["code"], redirect_uri=REDIRECT_URI
    )
    error(missing, 400, "invalid_request")
    assert (await client.redeem(answer["code"])).status_code == 200


# the code ----------------------------------------------------------------------------------


async def test_a_reused_code_is_refused_and_revokes_what_it_issued(
    registry: RegistryClient, alice: Human, client: CodeClient, shop: Merchant
) -> None:
    _, answer = await client.consent(alice, scope="read", resource=shop.resource)
    first = await client.redeem(answer["code"])
    assert first.status_code == 200, first.text
    token = first.json()["access_token"]
    assert (await shop.introspect(token)).json()["active"] is True
    again = await client.redeem(answer["code"])
    error(again, 400, "invalid_grant")
    # The revocation reaches the verifier through the cache's event stream, within moments.
    await eventually(lambda: is_inactive(shop, token))
    refreshed = await client.token(grant_type="refresh_token", refresh_token=client.refresh_token)
    error(refreshed, 400, "invalid_grant")


async def test_parallel_redemptions_of_one_code_give_one_token(
    registry: RegistryClient, alice: Human, client: CodeClient
) -> None:
    rs = await resource_server(registry)
    _, answer = await client.consent(alice, scope="read", resource=rs["resource"])
    responses = await asyncio.gather(*(client.redeem(answer["code"]) for _ in range(8)))
    assert sorted(r.status_code for r in responses).count(200) == 1


async def test_a_code_lives_at_most_sixty_seconds(
    registry: RegistryClient, alice: Human, client: CodeClient
) -> None:
    rs = await resource_server(registry)
    _, answer = await client.consent(alice, scope="read", resource=rs["resource"])
    registry.clock.advance(61)
    error(await client.redeem(answer["code"]), 400, "invalid_grant")


async def test_a_code_is_redeemed_only_by_its_client(
    registry: RegistryClient, alice: Human, client: CodeClient
) -> None:
    rs = await resource_server(registry)
    _, answer = await client.consent(alice, scope="read", resource=rs["resource"])
    other = CodeClient(http=registry.http, clock=registry.clock, verifier=client.verifier)
    assert (await other.register()).status_code == 201
    error(await other.redeem(answer["code"]), 400, "invalid_grant")
    assert (await client.redeem(answer["code"])).status_code == 200


async def test_the_redirect_uri_of_the_token_request_must_match(
    registry: RegistryClient, alice: Human, client: CodeClient
) -> None:
    rs = await resource_server(registry)
    _, answer = await client.consent(alice, scope="read", resource=rs["resource"])
    wrong = await client.redeem(answer["code"], redirect_uri=REDIRECT_URI + "/other")
    error(wrong, 400, "invalid_grant")


# redirect URIs and clients: shown on a page, never redirected ------------------------------


async def test_a_redirect_uri_that_was_not_registered_is_shown_never_redirected(
    registry: RegistryClient, alice: Human, client: CodeClient
) -> None:
    rs = await resource_server(registry)
    asked = await client.authorize(
        alice, scope="read", resource=rs["resource"], redirect_uri="https://attacker.example/cb"
    )
    assert asked.status_code == 400
    assert "location" not in asked.headers
    assert "redirect URI" in asked.text
    assert "text/html" in asked.headers["content-type"]


async def test_a_native_clients_loopback_redirect_may_use_any_port(
    registry: RegistryClient, alice: Human, client: CodeClient
) -> None:
    rs = await resource_server(registry)
    other_port = "http://127.0.0.1:40001/callback"
    asked = await client.authorize(
        alice, scope="read", resource=rs["resource"], redirect_uri=other_port
    )
    assert asked.status_code == 303
    assert asked.headers["location"].startswith("/ui/requests/")
    wrong_path = await client.authorize(
        alice, scope="read", resource=rs["resource"], redirect_uri="http://127.0.0.1:40001/other"
    )
    assert wrong_path.status_code == 400


async def test_an_unknown_client_is_shown_never_redirected(
    registry: RegistryClient, alice: Human, client: CodeClient
) -> None:
    client.client_id = "agt_unknown"
    asked = await client.authorize(alice, scope="read")
    assert asked.status_code == 400
    assert "location" not in asked.headers
    assert "Unknown application" in asked.text


# what is asked for ------------------------------------------------------------------------


async def test_an_unknown_resource_is_invalid_target(
    registry: RegistryClient, alice: Human, client: CodeClient
) -> None:
    asked = await client.authorize(alice, scope="read", resource="https://nowhere.example/mcp")
    answer = query(asked.headers["location"])
    assert answer["error"] == "invalid_target"


async def test_an_unknown_scope_is_invalid_scope(
    registry: RegistryClient, alice: Human, client: CodeClient
) -> None:
    rs = await resource_server(registry)
    asked = await client.authorize(alice, scope="read admin", resource=rs["resource"])
    assert query(asked.headers["location"])["error"] == "invalid_scope"


async def test_authorization_details_are_asked_for_directly(
    registry: RegistryClient, alice: Human, client: CodeClient
) -> None:
    rs = await resource_server(registry)
    details = [{**READ, "locations": [rs["resource"]]}]
    _, answer = await client.consent(alice, authorization_details=json.dumps(details))
    tokens = await client.redeem(answer["code"])
    assert tokens.json()["authorization_details"] == details
    assert "scope" not in tokens.json()


async def test_prompt_none_is_consent_required(
    registry: RegistryClient, alice: Human, client: CodeClient
) -> None:
    rs = await resource_server(registry)
    asked = await client.authorize(alice, scope="read", resource=rs["resource"], prompt="none")
    assert query(asked.headers["location"])["error"] == "consent_required"


async def test_the_token_request_picks_one_of_the_approved_resources(
    registry: RegistryClient, alice: Human, client: CodeClient
) -> None:
    first, second = await resource_server(registry), await resource_server(registry)
    _, answer = await client.consent(
        alice, scope="read", resource=[first["resource"], second["resource"]]
    )
    other = await resource_server(registry)
    refused = await client.redeem(answer["code"], resource=other["resource"])
    error(refused, 400, "invalid_target")
    tokens = await client.redeem(answer["code"], resource=second["resource"])
    assert claims_of(tokens.json()["access_token"])["aud"] == second["resource"]


# consent ceremonies ----------------------------------------------------------------------


async def test_another_humans_session_cannot_answer_the_consent(
    registry: RegistryClient, alice: Human, client: CodeClient
) -> None:
    rs = await resource_server(registry)
    bob = await registry.human("Bob")
    asked = await client.authorize(alice, scope="read", resource=rs["resource"])
    auth_req_id = asked.headers["location"].rsplit("/", 1)[1]
    options = await bob.api("POST", f"/requests/{auth_req_id}/approve/options")
    assert options.status_code == 404
    assert (await bob.api("POST", f"/requests/{auth_req_id}/deny")).status_code == 404
    page = await bob.browser.get(f"/ui/requests/{auth_req_id}")
    assert page.status_code == 404


async def test_a_consent_assertion_cannot_be_replayed(
    registry: RegistryClient, alice: Human, client: CodeClient
) -> None:
    rs = await resource_server(registry)
    asked = await client.authorize(alice, scope="read", resource=rs["resource"])
    auth_req_id = asked.headers["location"].rsplit("/", 1)[1]
    options = await alice.api("POST", f"/requests/{auth_req_id}/approve/options")
    credential = alice.authenticator.get(options.json(), origin=alice.origin)
    first = await alice.api("POST", f"/requests/{auth_req_id}/approve", {"credential": credential})
    assert first.status_code == 200, first.text
    again = await alice.api("POST", f"/requests/{auth_req_id}/approve", {"credential": credential})
    assert again.status_code in (400, 409)
    assert "redirect_to" not in again.json()


# DPoP and Bearer --------------------------------------------------------------------------


async def test_bearer_tokens_only_for_resource_servers_that_accept_them(
    registry: RegistryClient, alice: Human, client: CodeClient, shop: Merchant
) -> None:
    strict = await resource_server(registry, dpop_required=True)
    _, answer = await client.consent(alice, scope="read", resource=strict["resource"])
    refused = await client.redeem(answer["code"], dpop=False)
    description = error(refused, 400, "invalid_request")["error_description"]
    assert "accepts only DPoP-bound tokens" in description
    _, answer = await client.consent(alice, scope="read", resource=shop.resource)
    tokens = await client.redeem(answer["code"], dpop=False)
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["token_type"] == "Bearer"
    assert "cnf" not in claims_of(tokens.json()["access_token"])
    introspected = (await shop.introspect(tokens.json()["access_token"])).json()
    assert (introspected["active"], introspected["token_type"]) == (True, "Bearer")
    assert "cnf" not in introspected


async def test_the_verifier_refuses_a_bearer_token_where_dpop_is_required(
    registry: RegistryClient, alice: Human, client: CodeClient, verifier_http: httpx.AsyncClient
) -> None:
    created = await resource_server(registry, dpop_required=False)
    shop = Merchant(
        verifier_http, created["resource"], created["client_id"], created["client_secret"]
    )
    _, answer = await client.consent(alice, scope="read", resource=shop.resource)
    token = (await client.redeem(answer["code"], dpop=False)).json()["access_token"]
    # The operator then requires DPoP for this resource server, before the verifier first
    # hears from it: the Bearer token it holds is refused from then on.
    assert registry.app is not None
    async with registry.app.state.registry.engine.begin() as connection:
        await connection.execute(
            text("UPDATE resource_servers SET dpop_required = true WHERE resource = :r"),
            {"r": shop.resource},
        )
    request = {"token": token, "method": "GET", "url": shop.resource + "/x", "action": "read"}
    decision = (await shop.verify(request)).json()
    assert (decision["allowed"], decision["reason"]) == (False, "invalid_token")
    assert (await shop.introspect(token)).json() == {"active": False}


async def test_a_bearer_token_is_allowed_without_a_proof_where_bearer_is_accepted(
    registry: RegistryClient, alice: Human, client: CodeClient, shop: Merchant
) -> None:
    _, answer = await client.consent(alice, scope="pay", resource=shop.resource)
    token = (await client.redeem(answer["code"], dpop=False)).json()["access_token"]
    pay = {
        "token": token,
        "method": "POST",
        "url": shop.resource + "/pay",
        "action": "pay",
        "amount": {"value": "9.00", "currency": "EUR"},
    }
    decision = (await shop.verify(pay)).json()
    assert decision["allowed"] is True, decision
    over = {**pay, "amount": {"value": "11.00", "currency": "EUR"}}
    assert (await shop.verify(over)).json()["reason"] == "amount_exceeds_limit"


async def test_dpop_jkt_binds_the_code_to_that_key(
    registry: RegistryClient, alice: Human, client: CodeClient
) -> None:
    rs = await resource_server(registry)
    _, answer = await client.consent(
        alice, scope="read", resource=rs["resource"], dpop_jkt=client.dpop.jkt
    )
    other_key = client.proof(key=Agent())
    error(await client.redeem(answer["code"], dpop=other_key), 400, "invalid_dpop_proof")
    error(await client.redeem(answer["code"], dpop=False), 400, "invalid_dpop_proof")
    assert (await client.redeem(answer["code"])).status_code == 200


async def test_a_public_clients_refresh_token_is_bound_to_its_dpop_key_and_rotates(
    registry: RegistryClient, alice: Human, client: CodeClient
) -> None:
    rs = await resource_server(registry)
    _, answer = await client.consent(alice, scope="read", resource=rs["resource"])
    assert (await client.redeem(answer["code"])).status_code == 200
    first = client.refresh_token
    other_key = client.proof(key=Agent())
    stolen = await client.token(grant_type="refresh_token", refresh_token=first, dpop=other_key)
    error(stolen, 400, "invalid_dpop_proof")
    no_proof = await client.token(grant_type="refresh_token", refresh_token=first, dpop=False)
    error(no_proof, 400, "invalid_dpop_proof")
    rotated = await client.token(grant_type="refresh_token", refresh_token=first)
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["refresh_token"] != first
    assert rotated.json()["scope"] == "read"
    reused = await client.token(grant_type="refresh_token", refresh_token=first)
    error(reused, 400, "invalid_grant")
    family = await client.token(grant_type="refresh_token", refresh_token=client.refresh_token)
    error(family, 400, "invalid_grant")  # reuse revoked the whole grant


async def test_a_client_that_registered_dpop_bound_tokens_must_send_a_proof(
    registry: RegistryClient, alice: Human, open_registration: None
) -> None:
    client = CodeClient(http=registry.http, clock=registry.clock)
    assert (await client.register(dpop_bound_access_tokens=True)).status_code == 201
    rs = await resource_server(registry, dpop_required=False)
    _, answer = await client.consent(alice, scope="read", resource=rs["resource"])
    error(await client.redeem(answer["code"], dpop=False), 400, "invalid_dpop_proof")


# registration -----------------------------------------------------------------------------


async def test_open_registration_follows_the_policy(
    registry: RegistryClient, settings: Settings
) -> None:
    assert registry.app is not None
    state = registry.app.state.registry
    client = CodeClient(http=registry.http, clock=registry.clock)
    state.settings = settings.model_copy(update={"registration_policy": "enrollment-token"})
    response = await client.register()
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    state.settings = settings.model_copy(update={"registration_policy": "closed"})
    assert (await client.register()).status_code == 403
    state.settings = settings.model_copy(update={"registration_policy": "open-public"})
    registered = await client.register()
    assert registered.status_code == 201, registered.text
    assert registered.headers["cache-control"] == "no-store"
    body = registered.json()
    assert body["token_endpoint_auth_method"] == "none"
    assert body["application_type"] == "native"
    assert "client_secret" not in body


@pytest.mark.parametrize(
    ("metadata", "code"),
    [
        ({"redirect_uris": ["http://app.example/cb"]}, "invalid_redirect_uri"),
        (
            {"application_type": "web", "redirect_uris": ["http://127.0.0.1:9/cb"]},
            "invalid_redirect_uri",
        ),
        ({"redirect_uris": ["https://app.example/cb#frag"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
        ({"token_endpoint_auth_method": "client_secret_basic"}, "invalid_client_metadata"),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
        (
            {"grant_types": ["authorization_code", "urn:openid:params:grant-type:ciba"]},
            "invalid_client_metadata",
        ),
        ({"redirect_uris": []}, "invalid_client_metadata"),
    ],
    ids=[
        "http-not-loopback",
        "web-http",
        "fragment",
        "javascript",
        "secret",
        "pkjwt",
        "ciba",
        "none",
    ],
)
async def test_open_registration_refuses_bad_public_clients(
    registry: RegistryClient, open_registration: None, metadata: dict[str, Any], code: str
) -> None:
    client = CodeClient(http=registry.http, clock=registry.clock)
    error(await client.register(**metadata), 400, code)


async def test_open_registration_is_rate_limited_per_address(
    registry: RegistryClient, open_registration: None
) -> None:
    statuses = []
    for _ in range(25):
        client = CodeClient(http=registry.http, clock=registry.clock)
        statuses.append((await client.register()).status_code)
    assert statuses[:20] == [201] * 20
    assert statuses[-1] == 429


async def test_a_confidential_client_authenticates_with_its_secret(
    registry: RegistryClient, alice: Human
) -> None:
    rs = await resource_server(registry)
    enrollment = (await alice.api("POST", "/enrollment-tokens", {"expires_in": 600})).json()
    client = CodeClient(http=registry.http, clock=registry.clock)
    registered = await client.register(
        enrollment["token"], token_endpoint_auth_method="client_secret_basic"
    )
    assert registered.status_code == 201, registered.text
    secret = client.client_secret
    assert secret
    _, answer = await client.consent(alice, scope="read", resource=rs["resource"])
    basic = "Basic " + base64.b64encode(f"{client.client_id}:{secret}".encode()).decode()
    wrong = "Basic " + base64.b64encode(f"{client.client_id}:nope".encode()).decode()
    params = {
        "grant_type": "authorization_code",
        "code": answer["code"],
        "redirect_uri": REDIRECT_URI,
        "code_verifier": client.verifier,
    }
    error(await client.token(headers={"Authorization": wrong}, **params), 401, "invalid_client")
    error(await client.token(**params), 401, "invalid_client")  # client_id alone
    ok = await client.token(headers={"Authorization": basic}, **params)
    assert ok.status_code == 200, ok.text


async def test_secrets_are_stored_hashed(registry: RegistryClient, alice: Human) -> None:
    enrollment = (await alice.api("POST", "/enrollment-tokens", {"expires_in": 600})).json()
    client = CodeClient(http=registry.http, clock=registry.clock)
    await client.register(enrollment["token"], token_endpoint_auth_method="client_secret_post")
    assert registry.app is not None
    async with registry.app.state.registry.engine.connect() as connection:
        stored = (
            await connection.execute(
                text("SELECT secret_hash FROM agents WHERE id = :id"), {"id": client.client_id}
            )
        ).scalar_one()
    assert stored != client.client_secret
    assert len(stored) == 64


# metadata ---------------------------------------------------------------------------------


async def test_metadata_describes_the_authorization_code_grant(registry: RegistryClient) -> None:
    document = (await registry.http.get("/.well-known/oauth-authorization-server")).json()
    assert document["authorization_endpoint"] == f"{ISSUER}/authorize"
    assert "authorization_code" in document["grant_types_supported"]
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["authorization_response_iss_parameter_supported"] is True
    assert document["client_id_metadata_document_supported"] is True
    assert "none" in document["token_endpoint_auth_methods_supported"]
    assert "client_secret_basic" in document["token_endpoint_auth_methods_supported"]
    openid = (await registry.http.get("/.well-known/openid-configuration")).json()
    assert openid == document
    assert "id_token_signing_alg_values_supported" not in openid


# browser-based clients ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/token", "/register", "/revoke"])
async def test_a_browser_client_may_preflight_the_oauth_endpoints(
    registry: RegistryClient, path: str
) -> None:
    preflight = await registry.http.options(
        path,
        headers={
            "Origin": "https://inspector.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, dpop",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "dpop" in preflight.headers["access-control-allow-headers"]
    assert "access-control-allow-credentials" not in preflight.headers


async def test_discovery_and_token_answers_are_readable_cross_origin(
    registry: RegistryClient,
) -> None:
    origin = {"Origin": "https://inspector.example"}
    metadata = await registry.http.get("/.well-known/oauth-authorization-server", headers=origin)
    assert metadata.headers["access-control-allow-origin"] == "*"
    refused = await registry.http.post(
        "/token",
        content="grant_type=authorization_code",
        headers={**origin, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == "*"
    assert "www-authenticate" in refused.headers["access-control-expose-headers"]


async def test_the_approval_api_is_never_open_cross_origin(
    registry: RegistryClient, alice: Human
) -> None:
    origin = {"Origin": "https://evil.example"}
    session = await alice.browser.get("/ui/api/session", headers=origin)
    assert "access-control-allow-origin" not in session.headers
    preflight = await alice.browser.options(
        "/ui/api/requests/x/approve",
        headers={**origin, "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    authorize = await alice.browser.get("/authorize?client_id=x", headers=origin)
    assert "access-control-allow-origin" not in authorize.headers


async def test_a_client_authenticates_only_with_the_method_it_registered(
    registry: RegistryClient, open_registration: None
) -> None:
    """A public client that registered keys (for its DPoP key policy) still cannot
    authenticate with private_key_jwt, nor reach /bc-authorize with them."""
    keys = Agent()
    client = CodeClient(http=registry.http, clock=registry.clock, dpop=keys)
    registered = await client.register(
        jwks={"keys": [keys.public.to_dict()]}, dpop_key_policy="registered"
    )
    assert registered.status_code == 201, registered.text
    keys.client_id = client.client_id
    now = int(registry.clock())
    assertion = {
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": keys.assertion(iat=now, exp=now + 60, aud=ISSUER),
    }
    token = await client.token(grant_type="refresh_token", refresh_token="x", **assertion)
    error(token, 401, "invalid_client")
    ciba = await registry.http.post(
        "/bc-authorize",
        data={**assertion, "authorization_details": json.dumps([READ])},
    )
    assert ciba.status_code == 401
    assert ciba.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "body",
    [
        {"scopes": {"pay": [{**PAY, "locations": ["https://x.example"]}]}},
        {"scopes": {"pay": [{"type": "urn:unregistered", "actions": ["pay"]}]}},
        {"scopes": {"bad scope": [READ]}},
        {"scopes": {"read": []}},
        {"scopes": ["read"]},
        {"dpop_required": "no"},
        {"surprise": True},
    ],
    ids=[
        "locations",
        "unknown-type",
        "scope-name",
        "empty",
        "not-a-map",
        "dpop-required",
        "unknown",
    ],
)
async def test_a_resource_servers_scopes_and_bearer_flag_are_checked(
    registry: RegistryClient, body: dict[str, Any]
) -> None:
    resource = f"https://tools-{uuid.uuid4().hex[:8]}.example.com/mcp"
    created = await registry.admin(
        "POST", "/resource-servers", {"name": "Tools", "resource": resource, **body}
    )
    assert created.status_code == 400, created.text
    assert created.json()["error"] == "invalid_request"
