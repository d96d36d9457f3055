"""Client ID Metadata Documents: a client_id that is a URL, fetched by an SSRF-safe client
and checked, served here by a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from app.registry.services.client_documents import document_client_id
from app.settings import Settings
from tests.support.oauth import REDIRECT_URI, CodeClient
from tests.support.registry import Human, RegistryClient

SCOPES = {"read": [{"type": "api", "actions": ["read"]}]}


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class DocumentServer:
    """A minimal HTTP/1.1 server: one response per connection, by path."""

    routes: dict[str, Route] = field(default_factory=dict)
    port: int = 0
    fetches: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self, path: str, document: dict[str, Any] | bytes, **route: Any) -> str:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        headers = {"Content-Type": "application/json", **route.pop("headers", {})}
        self.routes[path] = Route(body=body, headers=headers, **route)
        return self.url(path)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            path = request.split(b" ", 2)[1].decode()
            self.fetches += 1
            route = self.routes.get(path, Route(status=404))
            if route.delay:
                await asyncio.sleep(route.delay)
            head = [f"HTTP/1.1 {route.status} X", f"Content-Length: {len(route.body)}"]
            head += [f"{k}: {v}" for k, v in route.headers.items()]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + route.body)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def documents() -> AsyncIterator[DocumentServer]:
    server = DocumentServer()
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    server.port = listening.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listening.close()


def allow_private(registry: RegistryClient, settings: Settings, allowed: bool = True) -> None:
    assert registry.app is not None
    state = registry.app.state.registry
    state.settings = settings.model_copy(update={"client_metadata_allow_private": allowed})


def document_for(url: str, **members: Any) -> dict[str, Any]:
    return {
        "client_id": url,
        "client_name": "Document client",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
        **members,
    }


@pytest.fixture
async def resource(registry: RegistryClient) -> str:
    resource = f"https://tools-{uuid.uuid4().hex[:8]}.example.com/mcp"
    body = {"name": "Tools", "resource": resource, "scopes": SCOPES}
    assert (await registry.admin("POST", "/resource-servers", body)).status_code == 201
    return resource


@pytest.fixture
async def alice(registry: RegistryClient) -> Human:
    return await registry.human("Alice")


async def test_a_metadata_document_client_gets_tokens(
    registry: RegistryClient,
    settings: Settings,
    documents: DocumentServer,
    alice: Human,
    resource: str,
) -> None:
    allow_private(registry, settings)
    url = documents.url("/client.json")
    documents.serve("/client.json", document_for(url), headers={"Cache-Control": "max-age=600"})
    client = CodeClient(http=registry.http, clock=registry.clock, client_id=url)
    asked = await client.authorize(alice, scope="read", resource=resource)
    page = await alice.browser.get(asked.headers["location"])
    assert page.status_code == 200
    assert f"as described at {url}" in page.text  # the human sees which application asks
    _, answer = await client.consent(alice, scope="read", resource=resource)
    tokens = await client.redeem(answer["code"])
    assert tokens.status_code == 200, tokens.text
    assert documents.fetches == 1  # cached for as long as the document said


@pytest.mark.parametrize(
    ("route", "shown"),
    [
        ({"document": {"client_id": "https://else.example/c.json"}}, "client_id is not the URL"),
        ({"document": b"x" * 20_000}, "over 16384 bytes"),
        ({"document": {}, "delay": 6.0}, "took too long"),
        (
            {"document": b"", "status": 302, "headers": {"Location": "https://else.example/"}},
            "redirects",
        ),
        ({"document": b"not json"}, "not JSON"),
        ({"document": {"token_endpoint_auth_method": "client_secret_basic"}}, "shared secret"),
        ({"document": {"redirect_uris": ["http://evil.example/cb"]}}, "redirect URI"),
    ],
    ids=["client-id-differs", "oversized", "slow", "redirecting", "not-json", "secret", "http-uri"],
)
async def test_a_bad_document_is_refused_on_a_page(
    registry: RegistryClient,
    settings: Settings,
    documents: DocumentServer,
    alice: Human,
    resource: str,
    route: dict[str, Any],
    shown: str,
) -> None:
    allow_private(registry, settings)
    url = documents.url("/client.json")
    route = dict(route)  # the parameters are shared between the two databases' runs
    document = route.pop("document")
    if isinstance(document, dict):
        document = document_for(url, **document)
    documents.serve("/client.json", document, **route)
    client = CodeClient(http=registry.http, clock=registry.clock, client_id=url)
    asked = await client.authorize(alice, scope="read", resource=resource)
    assert asked.status_code == 400, asked.text
    assert "location" not in asked.headers
    assert shown in asked.text


async def test_a_document_on_a_private_address_is_not_fetched(
    registry: RegistryClient,
    settings: Settings,
    documents: DocumentServer,
    alice: Human,
    resource: str,
) -> None:
    allow_private(registry, settings, allowed=False)
    url = documents.url("/client.json")
    documents.serve("/client.json", document_for(url))
    client = CodeClient(http=registry.http, clock=registry.clock, client_id=url)
    asked = await client.authorize(alice, scope="read", resource=resource)
    assert asked.status_code == 400
    assert "https URL" in asked.text  # plain http is refused before any connection
    https_loopback = "https://127.0.0.1:1/client.json"
    client.client_id = https_loopback
    asked = await client.authorize(alice, scope="read", resource=resource)
    assert asked.status_code == 400
    assert "not on a public address" in asked.text
    assert documents.fetches == 0


async def test_the_token_endpoint_refuses_a_bad_document_as_invalid_client(
    registry: RegistryClient, settings: Settings, documents: DocumentServer
) -> None:
    allow_private(registry, settings)
    url = documents.url("/gone.json")
    client = CodeClient(http=registry.http, clock=registry.clock, client_id=url)
    response = await client.token(grant_type="authorization_code", code="x", code_verifier="y" * 43)
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    "url", ["https://[::1/client.json", "https://a.example:99999/c.json", "https://a:x/c.json"]
)
async def test_a_malformed_client_id_url_is_refused_not_a_server_error(
    registry: RegistryClient, alice: Human, resource: str, url: str
) -> None:
    client = CodeClient(http=registry.http, clock=registry.clock, client_id=url)
    asked = await client.authorize(alice, scope="read", resource=resource)
    assert asked.status_code == 400
    assert "not a valid URL" in asked.text
    token = await client.token(grant_type="authorization_code", code="x", code_verifier="y" * 43)
    assert (token.status_code, token.json()["error"]) == (401, "invalid_client")


async def test_a_new_document_client_asked_for_ten_times_at_once_is_recorded_once(
    registry: RegistryClient,
    settings: Settings,
    documents: DocumentServer,
    alice: Human,
    resource: str,
) -> None:
    allow_private(registry, settings)
    path = f"/{uuid.uuid4().hex}.json"
    url = documents.url(path)
    documents.serve(path, document_for(url), delay=0.2)
    client = CodeClient(http=registry.http, clock=registry.clock, client_id=url)
    asked = await asyncio.gather(
        *(client.authorize(alice, scope="read", resource=resource) for _ in range(10))
    )
    assert [r.status_code for r in asked] == [303] * 10, [r.text for r in asked]
    assert documents.fetches == 10  # all ten missed the cache: they raced to record it
    client_id = document_client_id(url)
    agents = (await registry.admin("GET", "/agents")).json()["agents"]
    assert [a["client_id"] for a in agents].count(client_id) == 1
    events = await registry.audit_events()
    registered = [
        e for e in events if e["event"] == "agent.registered" and e["subject"] == client_id
    ]
    assert len(registered) == 1
