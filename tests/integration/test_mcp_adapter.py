"""``app.sdk.mcp`` on the wire: the MCP SDK's server wrapped by the adapter, checking tokens
at a real verifier (in process, on the test database and cache)."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from mcp.server.mcpserver import MCPServer

from app.sdk.mcp import AgentAuthMCP, IntrospectionTokenVerifier, Tool, auth_settings
from app.sdk.merchant import VerifierClient
from app.settings import Settings
from app.verifier.app import VerifierApp
from tests.support.oauth import CodeClient
from tests.support.registry import ISSUER, RegistryClient

PAY = {
    "type": "api",
    "actions": ["pay"],
    "limits": {"max_amount": {"value": "10.00", "currency": "EUR"}},
}
# Each test registers its own MCP server; a distinct port keeps the resources distinct on a
# database the tests share (SQLite's lives for the session).
PORTS = itertools.count(9200)
TOOLS = {
    "balance": Tool(scope="read", action="read"),
    "pay": Tool(
        scope="pay", action="pay", amount=lambda a: {"value": a["amount"], "currency": "EUR"}
    ),
}


@pytest.fixture
async def mcp(
    registry: RegistryClient, verifier: VerifierApp, settings: Settings
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    resource = f"http://localhost:{next(PORTS)}/mcp"
    body = {
        "name": "MCP shop",
        "resource": resource,
        "dpop_required": False,
        "scopes": {"read": [{"type": "api", "actions": ["read"]}], "pay": [PAY]},
    }
    created = await registry.admin("POST", "/resource-servers", body)
    assert created.status_code == 201, created.text
    to_verifier = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=verifier), base_url="http://localhost:8081"
    )
    client = VerifierClient(
        "http://localhost:8081",
        created.json()["client_id"],
        created.json()["client_secret"],
        http=to_verifier,
    )
    server = MCPServer(
        "shop",
        token_verifier=IntrospectionTokenVerifier(client, resource),
        auth=auth_settings(ISSUER, resource),
    )
    app = AgentAuthMCP(
        server.streamable_http_app(host="localhost"),
        verifier=client,
        resource=resource,
        issuer=ISSUER,
        tools=TOOLS,
        default_scopes=["read"],
    )
    base = resource.rsplit("/", 1)[0]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base) as http:
        yield http, resource
    await to_verifier.aclose()
    assert registry.app is not None
    registry.app.state.registry.settings = settings


async def _token(
    registry: RegistryClient, settings: Settings, resource: str, scope: str, *, dpop: bool
) -> str:
    assert registry.app is not None
    state = registry.app.state.registry
    state.settings = settings.model_copy(update={"registration_policy": "open-public"})
    human = await registry.human(f"Human {uuid.uuid4().hex[:6]}")
    client = CodeClient(http=registry.http, clock=registry.clock)
    assert (await client.register()).status_code == 201
    _, answer = await client.consent(human, scope=scope, resource=resource)
    tokens = await client.redeem(answer["code"], dpop=dpop)
    assert tokens.status_code == 200, tokens.text
    return str(tokens.json()["access_token"])


def _call(tool: str, **arguments: Any) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    }


async def _post(http: httpx.AsyncClient, body: dict[str, Any], token: str | None) -> httpx.Response:
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return await http.post("/mcp", content=json.dumps(body), headers=headers)


async def test_the_protected_resource_metadata_names_the_scopes_and_bearer(
    mcp: tuple[httpx.AsyncClient, str],
) -> None:
    http, resource = mcp
    document = (await http.get("/.well-known/oauth-protected-resource/mcp")).json()
    assert document["resource"] == resource
    assert document["authorization_servers"] == [ISSUER]
    assert document["scopes_supported"] == ["pay", "read"]
    assert document["dpop_bound_access_tokens_required"] is False


async def test_a_401_names_the_metadata_and_the_first_scope(
    mcp: tuple[httpx.AsyncClient, str],
) -> None:
    http, _ = mcp
    refused = await _post(http, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, None)
    assert refused.status_code == 401
    challenge = refused.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'resource_metadata="http://localhost:' in challenge
    assert 'scope="read"' in challenge


async def test_a_missing_capability_is_a_step_up_403(
    mcp: tuple[httpx.AsyncClient, str], registry: RegistryClient, settings: Settings
) -> None:
    http, resource = mcp
    token = await _token(registry, settings, resource, "read", dpop=False)
    refused = await _post(http, _call("pay", amount="4.00", to="x"), token)
    assert refused.status_code == 403
    challenge = refused.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="pay"' in challenge
    body = refused.json()
    assert body["error"] == "insufficient_scope"
    assert body["scope"] == "pay"
    assert body["authorization_details"] == [
        {
            "type": "api",
            "locations": [resource],
            "actions": ["pay"],
            "limits": {"max_amount": {"value": "4.00", "currency": "EUR"}},
        }
    ]


async def test_an_amount_over_the_limit_is_refused_per_call(
    mcp: tuple[httpx.AsyncClient, str], registry: RegistryClient, settings: Settings
) -> None:
    http, resource = mcp
    token = await _token(registry, settings, resource, "pay", dpop=False)
    refused = await _post(http, _call("pay", amount="11.00", to="x"), token)
    assert refused.status_code == 403
    assert refused.json()["error_description"] == "amount_exceeds_limit"
    unreadable = await _post(http, _call("pay", to="x"), token)
    assert unreadable.status_code == 400


async def test_a_dpop_bound_token_is_never_accepted_as_bearer(
    mcp: tuple[httpx.AsyncClient, str], registry: RegistryClient, settings: Settings
) -> None:
    http, resource = mcp
    token = await _token(registry, settings, resource, "read", dpop=True)
    refused = await _post(http, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, token)
    assert refused.status_code == 401
    call = await _post(http, _call("balance"), token)
    assert call.status_code == 401  # /verify: a DPoP-bound token needs its proof
