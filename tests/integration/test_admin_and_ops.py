"""Admin API, discovery, key rotation, approvals re-verification, audit tampering, operations."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import select, update

from app.registry.services.approvals import reverify
from app.store.models import Approval, AuditEvent, Passkey
from tests.support.registry import CIBA, AgentClient, RegistryClient

SHOP = "https://shop-a.example.com"
DETAILS = [{"type": "api", "locations": [SHOP], "actions": ["read"]}]


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    return dict(response.json())


async def test_admin_authentication(registry: RegistryClient) -> None:
    refused(await registry.http.get("/admin/humans"), 401, "invalid_token")
    wrong = await registry.http.get("/admin/humans", headers={"Authorization": "Bearer nope"})
    assert refused(wrong, 401, "invalid_token")
    assert wrong.headers["www-authenticate"].startswith("Bearer")


async def test_admin_bad_input_is_400_never_422(registry: RegistryClient) -> None:
    refused(await registry.admin("POST", "/humans", {"display_name": ""}), 400, "invalid_request")
    refused(await registry.admin("GET", "/audit?after=-1"), 400, "invalid_request")
    refused(await registry.admin("GET", "/audit?limit=abc"), 400, "invalid_request")
    bad_json = await registry.http.post(
        "/admin/humans",
        content="{",
        headers={
            "Authorization": f"Bearer {registry.admin_token}",
            "Content-Type": "application/json",
        },
    )
    refused(bad_json, 400, "invalid_request")
    refused(await registry.admin("POST", "/humans/usr_missing/suspend"), 404, "not_found")
    refused(await registry.admin("POST", "/grants/grt_missing/revoke"), 404, "not_found")
    refused(await registry.admin("POST", "/agents/agt_missing/disable"), 404, "not_found")
    # A NUL in a path: PostgreSQL text cannot hold it (the caller's 400); SQLite finds nothing.
    postgres = registry.app is not None and registry.app.state.registry.engine.name == "postgresql"
    for path in ("/humans/a%00b/suspend", "/grants/a%00b/revoke", "/agents/a%00b/disable"):
        if postgres:
            refused(await registry.admin("POST", path), 400, "invalid_request")
        else:
            refused(await registry.admin("POST", path), 404, "not_found")
    refused(
        await registry.admin("POST", "/enrollment-tokens", {"owner": "usr_missing"}),
        400,
        "invalid_request",
    )
    big = await registry.http.post(
        "/admin/humans",
        content=b"x" * 70_000,
        headers={
            "Authorization": f"Bearer {registry.admin_token}",
            "Content-Type": "application/json",
        },
    )
    assert big.status_code == 413
    malformed = await registry.http.post(
        "/admin/humans",
        content=b"{}",
        headers={
            "Authorization": f"Bearer {registry.admin_token}",
            "Content-Type": "application/json",
            "Content-Length": "abc",
        },
    )
    refused(malformed, 400, "invalid_request")


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "resource": "http://shop.example.com"},
        {"name": "x", "resource": "https://shop.example.com#f"},
        {"name": "x", "resource": "https://s.example.com", "token_endpoint_auth_method": "none"},
        {
            "name": "x",
            "resource": "https://s.example.com",
            "authorization_details_types": {"t": {"type": 5}},
        },
        {
            "name": "x",
            "resource": "https://s.example.com",
            "authorization_details_types": {"api": {}},
        },
        {
            "name": "x",
            "resource": "https://s.example.com",
            "token_endpoint_auth_method": "private_key_jwt",
        },
    ],
)
async def test_resource_server_validation(registry: RegistryClient, body: dict[str, Any]) -> None:
    refused(await registry.admin("POST", "/resource-servers", body), 400, "invalid_request")


async def test_a_type_schema_with_a_remote_reference_is_refused(registry: RegistryClient) -> None:
    schema = {"type": "object", "properties": {"payee": {"$ref": "http://127.0.0.1:9/x.json"}}}
    body = {
        "name": "x",
        "resource": "https://remote-ref.example.com",
        "authorization_details_types": {"urn:pay": schema},
    }
    error = refused(await registry.admin("POST", "/resource-servers", body), 400, "invalid_request")
    assert "references must point inside the schema" in error["error_description"]
    listed = (await registry.admin("GET", "/resource-servers")).json()["resource_servers"]
    assert body["resource"] not in {server["resource"] for server in listed}


async def test_resource_server_secret_shown_once_and_conflict(registry: RegistryClient) -> None:
    created = await registry.resource_server("https://unique-rs.example.com/api/")
    assert created["resource"] == "https://unique-rs.example.com/api"
    assert len(created["client_secret"]) >= 40
    listed = (await registry.admin("GET", "/resource-servers")).json()["resource_servers"]
    assert created["client_secret"] not in json.dumps(listed)
    again = await registry.admin(
        "POST",
        "/resource-servers",
        {"name": "dup", "resource": "https://unique-rs.example.com/api"},
    )
    refused(again, 409, "conflict")


async def test_metadata_and_jwks(registry: RegistryClient) -> None:
    await registry.ensure_resource_server(SHOP)
    metadata = (await registry.http.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["issuer"] == "http://localhost"
    assert metadata["token_endpoint"] == "http://localhost/token"
    assert metadata["introspection_endpoint"] == "http://localhost:8081/introspect"
    assert metadata["backchannel_token_delivery_modes_supported"] == ["poll"]
    jwks = (await registry.http.get("/.well-known/jwks.json")).json()
    assert jwks["keys"]
    assert all("d" not in k and k["use"] == "sig" for k in jwks["keys"])


async def test_key_rotation_prepublishes_then_signs(registry: RegistryClient) -> None:
    await registry.ensure_resource_server(SHOP)
    human = await registry.human()
    agent = await registry.agent(human)
    before = {k["kid"] for k in (await registry.http.get("/.well-known/jwks.json")).json()["keys"]}
    rotated = await registry.admin("POST", "/keys/rotate", {"prepublish_seconds": 600})
    assert rotated.status_code == 200, rotated.text
    new_kid = rotated.json()["kid"]
    published = {
        k["kid"] for k in (await registry.http.get("/.well-known/jwks.json")).json()["keys"]
    }
    assert new_kid in published
    assert before <= published

    async def token_kid() -> str:
        auth_req_id = (await agent.bc_authorize(DETAILS)).json()["auth_req_id"]
        assert (await human.approve(auth_req_id)).status_code == 200
        issued = await agent.token(CIBA, auth_req_id=auth_req_id)
        assert issued.status_code == 200, issued.text
        header = issued.json()["access_token"].split(".")[0]
        from app.core.jwk import b64url_decode

        return str(json.loads(b64url_decode(header))["kid"])

    assert await token_kid() != new_kid  # pre-published, not signing yet
    registry.clock.advance(601)
    await human.login()
    assert await token_kid() == new_kid
    refused(
        await registry.admin("POST", "/keys/rotate", {"prepublish_seconds": -1}),
        400,
        "invalid_request",
    )


async def test_stored_approval_reverifies_from_the_database(registry: RegistryClient) -> None:
    await registry.ensure_resource_server(SHOP)
    human = await registry.human()
    agent = await registry.agent(human)
    auth_req_id = (await agent.bc_authorize(DETAILS)).json()["auth_req_id"]
    assert (await human.approve(auth_req_id)).status_code == 200
    async with registry.app.state.registry.sessions() as session:
        approval = (
            await session.scalars(select(Approval).where(Approval.auth_req_id == auth_req_id))
        ).one()
        passkey = await session.get(Passkey, approval.credential_id)
    assert passkey is not None
    assert reverify(approval, passkey.public_key)
    approval.request_document = {**approval.request_document, "binding_message": "forged"}
    assert not reverify(approval, passkey.public_key)


async def test_tampered_audit_row_is_reported(registry: RegistryClient) -> None:
    await registry.human()  # at least one event
    sessions = registry.app.state.registry.sessions
    async with sessions() as session:
        victim = (
            await session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
        ).one()
    original = victim.actor
    async with sessions() as session, session.begin():
        await session.execute(
            update(AuditEvent).where(AuditEvent.seq == victim.seq).values(actor="mallory")
        )
    try:
        report = (await registry.admin("GET", "/audit/verify")).json()
        assert report["ok"] is False
        assert report["first_broken_seq"] == victim.seq
    finally:
        async with sessions() as session, session.begin():
            await session.execute(
                update(AuditEvent).where(AuditEvent.seq == victim.seq).values(actor=original)
            )
    assert (await registry.admin("GET", "/audit/verify")).json()["ok"] is True


async def test_rate_limit_gives_429_with_retry_after(registry: RegistryClient) -> None:
    responses = [await registry.http.post("/register", json={}) for _ in range(31)]
    assert [r.status_code for r in responses[:30]] == [401] * 30
    assert responses[30].status_code == 429
    assert int(responses[30].headers["retry-after"]) >= 1


async def test_health_readiness_metrics(registry: RegistryClient) -> None:
    assert (await registry.http.get("/healthz")).json() == {"status": "ok"}
    ready = await registry.http.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": True, "cache": True, "keys": True}
    metrics = await registry.http.get("/metrics")
    assert "agentauth_http_requests_total" in metrics.text
    assert 'route="/readyz"' in metrics.text


async def test_metrics_need_the_metrics_token_when_one_is_set(
    settings: Any, clock: Any, verifier_database_url: str
) -> None:
    from app.registry.app import create_app
    from app.verifier.app import create_app as create_verifier

    token = "m" * 40
    guarded = settings.model_copy(update={"metrics_token": SecretStr(token)})
    registry = create_app(guarded, clock=clock)
    verifier = create_verifier(
        guarded.model_copy(update={"database_url": verifier_database_url}), clock=clock
    )
    async with registry.router.lifespan_context(registry), verifier.running():
        for app in (registry, verifier):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
                for headers in (
                    {},
                    {"Authorization": "Bearer " + "x" * 40},
                    {"Authorization": token},
                ):
                    refused = await http.get("/metrics", headers=headers)
                    assert refused.status_code == 401
                    assert refused.headers["www-authenticate"] == 'Bearer realm="agentauth-metrics"'
                    assert "agentauth_" not in refused.text
                allowed = await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
                assert allowed.status_code == 200
                assert "agentauth_http_requests_total" in allowed.text


async def test_unknown_path_is_json_404(registry: RegistryClient) -> None:
    refused(await registry.http.get("/nope"), 404, "not_found")


async def test_redis_outage_fails_closed_with_503(settings: Any, clock: Any) -> None:
    from app.registry.app import create_app

    broken = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    app = create_app(broken, clock=clock)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            response = await http.post(
                "/token",
                content="grant_type=x",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert response.status_code == 503
            assert response.json()["error"] == "temporarily_unavailable"
            assert response.headers["retry-after"] == "1"
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["cache"] is False


async def test_rotation_reaches_every_worker(settings: Any, clock: Any) -> None:
    import asyncio

    from app.registry.app import create_app

    fast = settings.model_copy(update={"key_reload_seconds": 0.2})
    worker_a, worker_b = create_app(fast, clock=clock), create_app(fast, clock=clock)
    async with (
        worker_a.router.lifespan_context(worker_a),
        worker_b.router.lifespan_context(worker_b),
    ):
        transport_a, transport_b = (
            httpx.ASGITransport(app=worker_a),
            httpx.ASGITransport(app=worker_b),
        )
        async with (
            httpx.AsyncClient(transport=transport_a, base_url="http://localhost") as a,
            httpx.AsyncClient(transport=transport_b, base_url="http://localhost") as b,
        ):
            auth = {"Authorization": f"Bearer {settings.admin_token.get_secret_value()}"}
            rotated = await a.post(
                "/admin/keys/rotate", json={"prepublish_seconds": 0}, headers=auth
            )
            new_kid = rotated.json()["kid"]
            await asyncio.sleep(0.6)
            kids = {k["kid"] for k in (await b.get("/.well-known/jwks.json")).json()["keys"]}
            assert new_kid in kids
            assert worker_b.state.registry.keys.current(int(clock())).kid == new_kid


async def test_a_flood_of_bad_credentials_never_locks_out_a_valid_caller(
    registry: RegistryClient,
) -> None:
    """Failed authentications count per address, apart from callers that authenticate:
    after the junk from this address is answered 429, a valid agent and a valid enrollment
    token from the same address are still served."""
    await registry.ensure_resource_server(SHOP)
    alice = await registry.human()
    agent = await registry.agent(alice)
    token = (await alice.api("POST", "/enrollment-tokens", {"expires_in": 600})).json()["token"]
    stranger = AgentClient(http=registry.http, clock=registry.clock)
    floods = {
        "/bc-authorize": (lambda: stranger.bc_authorize(DETAILS), 121),
        "/register": (lambda: registry.http.post("/register", json={}), 31),
    }
    for path, (junk, count) in floods.items():
        statuses: list[int] = []
        for wave in range(0, count, 11):  # parallel waves, within the database pool
            answers = await asyncio.gather(*(junk() for _ in range(min(11, count - wave))))
            statuses += [answer.status_code for answer in answers]
        assert statuses.count(429) >= 1, (path, statuses)
        assert set(statuses) == {401, 429}
    assert (await agent.bc_authorize(DETAILS)).status_code == 200
    newcomer = AgentClient(http=registry.http, clock=registry.clock)
    assert (await newcomer.register(token)).status_code == 201


async def test_cacheable_documents_do_not_also_say_no_cache(registry: RegistryClient) -> None:
    for path, max_age in (
        ("/.well-known/oauth-authorization-server", 300),
        ("/.well-known/jwks.json", 60),
    ):
        response = await registry.http.get(path)
        assert response.headers["cache-control"] == f"public, max-age={max_age}"
        assert "pragma" not in response.headers, path
    refused_one = await registry.http.post("/token", content=b"")
    assert refused_one.headers["cache-control"] == "no-store"
    assert refused_one.headers["pragma"] == "no-cache"  # what must not be cached still says so


async def test_the_grant_registry_is_what_metadata_and_registration_say(
    registry: RegistryClient,
) -> None:
    from app.registry.grants import grant_types

    document = (await registry.http.get("/.well-known/oauth-authorization-server")).json()
    assert document["grant_types_supported"] == grant_types()
    human = await registry.human()
    agent = await registry.agent(human)
    token = await human.api("POST", "/enrollment-tokens", {"expires_in": 600})
    other = AgentClient(http=registry.http, clock=registry.clock)
    registered = await other.register(token.json()["token"])
    # An agent without redirect URIs registers for every grant but the authorization code.
    assert registered.json()["grant_types"] == [
        g for g in grant_types() if g != "authorization_code"
    ]
    unknown = await agent.post("/token", agent.form(grant_type="password"))
    assert (unknown.status_code, unknown.json()["error"]) == (400, "unsupported_grant_type")
