"""The official MCP Python SDK, unmodified, against `agentauth dev` and the example MCP server
(examples/mcp_server.py), both real processes. The example client (examples/mcp_client.py)
drives the SDK's OAuth client; the human logs in and consents in headless Chromium with a
WebAuthn virtual authenticator, and the browser's redirect reaches the client's own callback
server. Covered: discovery from the MCP server's 401, open registration and a Client ID
Metadata Document (served over https by this test), authorization code + PKCE + resource,
the tool call, refresh with rotation, step-up after a 403, and revocation."""

from __future__ import annotations

import asyncio
import datetime
import importlib.util
import ipaddress
import json
import ssl
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.support.browser import (
    chromium,
    consent_in_browser,
    enrol_in_browser,
    needs_chromium,
    passkey_page,
)
from tests.support.devstack import DevStack, dev_with_example
from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
SCOPES = {
    "read": [{"type": "api", "actions": ["read"]}],
    "pay": [
        {
            "type": "api",
            "actions": ["pay"],
            "limits": {"max_amount": {"value": "10.00", "currency": "EUR"}},
        }
    ],
}

pytestmark = needs_chromium


def _example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mcp_client = _example("mcp_client")


@dataclass
class Certificate:
    cert: Path
    key: Path


def _self_signed(directory: Path) -> Certificate:
    """A certificate for localhost and 127.0.0.1, the CA the registry trusts for metadata
    documents in this test (AGENTAUTH_CLIENT_METADATA_CA_FILE)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    paths = Certificate(directory / "cert.pem", directory / "key.pem")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@dataclass
class MCPStack:
    dev: DevStack
    certificate: Certificate

    @property
    def registry(self) -> str:
        return self.dev.registry

    @property
    def local(self) -> str:
        return self.dev.local

    @property
    def admin(self) -> str:
        return self.dev.admin

    @property
    def server(self) -> str:  # the MCP endpoint, http://localhost:<port>/mcp
        return self.dev.resource


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MCPStack]:
    data = tmp_path_factory.mktemp("mcp-dev")
    certificate = _self_signed(data)
    server = {"name": "Example MCP shop", "dpop_required": False, "scopes": SCOPES}
    trust = {"AGENTAUTH_CLIENT_METADATA_CA_FILE": str(certificate.cert)}
    with dev_with_example(data, "mcp_server.py", server, path="/mcp", dev_env=trust) as dev:
        yield MCPStack(dev, certificate)


@pytest.fixture
async def page(stack: MCPStack) -> AsyncIterator[Any]:
    """A new human's browser profile: a virtual passkey, enrolled from an invite, then
    logged out (the MCP flow includes the login)."""
    async with chromium() as browser:
        page = await passkey_page(browser)
        async with httpx.AsyncClient(base_url=stack.local) as http:
            created = await http.post(
                "/admin/humans",
                json={"display_name": "Alice"},
                headers={"Authorization": f"Bearer {stack.admin}"},
            )
        assert created.status_code == 201, created.text
        await enrol_in_browser(page, stack.registry, created.json()["invite_token"])
        await page.context.clear_cookies()
        yield page


class Human:
    """What the person does in the browser when the client sends them to /authorize."""

    def __init__(self, page: Any, stack: MCPStack) -> None:
        self.page = page
        self.stack = stack
        self.consents: list[str] = []  # the consent pages' text, in order
        self.refuse = False
        self.refused = 0  # how often the client asked while ``refuse`` was set

    async def open(self, url: str) -> None:
        if self.refuse:
            self.refused += 1
            raise RuntimeError("the client asked the human again")
        assert url.startswith(f"{self.stack.registry}/authorize?"), url
        self.consents.append(await consent_in_browser(self.page, self.stack.registry, url))
        # The redirect to the client's callback follows the approval by itself.
        await self.page.wait_for_url("http://127.0.0.1:*/callback?*")


async def admin(stack: MCPStack, method: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.local) as http:
        return await http.request(
            method, f"/admin{path}", headers={"Authorization": f"Bearer {stack.admin}"}
        )


async def test_the_mcp_sdk_client_gets_a_token_with_passkey_consent_and_calls_tools(
    stack: MCPStack, page: Any
) -> None:
    human = Human(page, stack)
    callback = mcp_client.Callback(free_port())
    await callback.start()
    storage = mcp_client.MemoryStorage()
    try:
        auth = mcp_client.provider(stack.server, callback, open_url=human.open, storage=storage)
        answers = await mcp_client.call_tools(
            stack.server,
            auth,
            [("balance", {}), ("pay", {"amount": "4.50", "to": "bookshop"})],
        )
        assert answers == ["100.00 EUR", "paid 4.50 EUR to bookshop"]
        # Two consents: "read" first (the 401's scope), then "pay" after the 403 step-up.
        assert len(human.consents) == 2
        assert "read" in human.consents[0]
        assert "pay" in human.consents[1]
        assert storage.client is not None
        assert storage.tokens is not None
        assert storage.client.client_id.startswith("agt_")  # open registration
        assert set((storage.tokens.scope or "").split()) == {"read", "pay"}

        # Refresh: the access token is expired for the client; the refresh token rotates.
        old_refresh = storage.tokens.refresh_token
        auth.context.token_expiry_time = 1.0  # long past
        human.refuse = True  # a refresh needs no human
        assert await mcp_client.call_tools(stack.server, auth, [("balance", {})]) == ["100.00 EUR"]
        assert storage.tokens.refresh_token not in (None, old_refresh)

        # Revocation: the human's grants go; the next call is refused and the client would
        # have to ask the human again.
        token = storage.tokens.access_token
        grants = (await admin(stack, "GET", f"/grants?agent={storage.client.client_id}")).json()
        for grant in grants["grants"]:
            if grant["status"] == "active":
                revoked = await admin(stack, "POST", f"/grants/{grant['id']}/revoke")
                assert revoked.status_code == 200, revoked.text
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient() as http:
            refused = await http.post(
                stack.server,
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                headers={
                    "Authorization": f"Bearer {token}",
                    "Accept": "application/json, text/event-stream",
                },
            )
        assert refused.status_code == 401
        assert 'resource_metadata="' in refused.headers["www-authenticate"]
        assert 'scope="read"' in refused.headers["www-authenticate"]
        assert human.refused == 0
        with pytest.raises(BaseExceptionGroup):
            await mcp_client.call_tools(stack.server, auth, [("balance", {})])
        assert human.refused == 1  # the revoked token sent the client back to the human
    finally:
        await callback.stop()


@pytest.fixture
async def metadata_document(stack: MCPStack) -> AsyncIterator[tuple[str, Any]]:
    """A Client ID Metadata Document over https on 127.0.0.1, for one callback port."""
    port, callback_port = free_port(), free_port()
    url = f"https://localhost:{port}/mcp-client.json"
    document = json.dumps(
        {
            "client_id": url,
            "client_name": "Example MCP client (metadata document)",
            "redirect_uris": [f"http://127.0.0.1:{callback_port}/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }
    ).encode()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(document), document))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(stack.certificate.cert, stack.certificate.key)
    server = await asyncio.start_server(serve, "127.0.0.1", port, ssl=tls)
    callback = mcp_client.Callback(callback_port)
    await callback.start()
    try:
        yield url, callback
    finally:
        await callback.stop()
        server.close()


async def test_the_mcp_sdk_client_identified_by_a_metadata_document(
    stack: MCPStack, page: Any, metadata_document: tuple[str, Any]
) -> None:
    url, callback = metadata_document
    human = Human(page, stack)
    storage = mcp_client.MemoryStorage()
    auth = mcp_client.provider(
        stack.server, callback, open_url=human.open, client_metadata_url=url, storage=storage
    )
    answers = await mcp_client.call_tools(stack.server, auth, [("balance", {})])
    assert answers == ["100.00 EUR"]
    assert storage.client is not None
    assert storage.client.client_id == url  # no registration: the URL is the client_id
    assert len(human.consents) == 1
    assert f"as described at {url}" in human.consents[0]


async def _standing_client(
    stack: MCPStack, registration: dict[str, Any], authenticate: Callable[[str, Any], Any]
) -> tuple[dict[str, Any], str]:
    """A client registered with ``registration`` (through an enrollment token a human made)
    and a standing grant for the MCP server that human approved with a software passkey:
    the client's registration answer and the grant's id. ``authenticate(client_id, answer)``
    gives the keyword arguments that authenticate the client at ``/bc-authorize``."""
    from tests.support.webauthn import SoftwareAuthenticator

    auth = {"Authorization": f"Bearer {stack.admin}"}
    async with (
        httpx.AsyncClient(base_url=stack.registry) as browser,
        httpx.AsyncClient(base_url=stack.local) as http,
    ):
        created = await http.post("/admin/humans", json={"display_name": "Bob"}, headers=auth)
        invite = created.json()["invite_token"]
        passkey = SoftwareAuthenticator()
        options = await browser.post(
            "/ui/api/passkeys/register/options", json={"invite_token": invite}
        )
        credential = passkey.create(options.json(), origin=stack.registry)
        enrolled = await browser.post(
            "/ui/api/passkeys/register/verify",
            json={"invite_token": invite, "credential": credential},
        )
        assert enrolled.status_code == 200, enrolled.text
        csrf = {"X-CSRF-Token": (await browser.get("/ui/api/session")).json()["csrf_token"]}
        enrollment = await browser.post("/ui/api/enrollment-tokens", json={}, headers=csrf)
        registered = await http.post(
            "/register",
            json=registration,
            headers={"Authorization": f"Bearer {enrollment.json()['token']}"},
        )
        assert registered.status_code == 201, registered.text
        answer = registered.json()
        details = [{"type": "api", "locations": [stack.server], "actions": ["read"]}]
        form = {"authorization_details": json.dumps(details), "standing": "true"}
        extra = authenticate(answer["client_id"], answer)
        started = await http.post("/bc-authorize", data={**form, **extra.pop("data", {})}, **extra)
        assert started.status_code == 200, started.text
        auth_req_id = started.json()["auth_req_id"]
        options = await browser.post(
            f"/ui/api/requests/{auth_req_id}/approve/options", headers=csrf
        )
        approved = await browser.post(
            f"/ui/api/requests/{auth_req_id}/approve",
            json={"credential": passkey.get(options.json(), origin=stack.registry)},
            headers=csrf,
        )
        assert approved.status_code == 200, approved.text
        return answer, str(approved.json()["grant_id"])


async def test_the_mcp_sdk_client_credentials_provider_uses_a_standing_grant(
    stack: MCPStack,
) -> None:
    """An unattended MCP client: the SDK's ``ClientCredentialsOAuthProvider``, unmodified,
    with a client id and secret, redeems a standing grant a human approved with a passkey,
    and calls a tool; once the grant is revoked it gets no token."""
    from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider

    registration = {
        "client_name": "nightly job",
        "token_endpoint_auth_method": "client_secret_basic",
        "dpop_bound_access_tokens": False,
    }
    answer, grant_id = await _standing_client(
        stack, registration, lambda cid, answer: {"auth": (cid, answer["client_secret"])}
    )
    client_id, secret = answer["client_id"], answer["client_secret"]

    storage = mcp_client.MemoryStorage()
    provider = ClientCredentialsOAuthProvider(
        server_url=stack.server,
        storage=storage,
        client_id=client_id,
        client_secret=secret,
        issuer=stack.registry,
    )
    assert await mcp_client.call_tools(stack.server, provider, [("balance", {})]) == ["100.00 EUR"]
    assert storage.tokens is not None
    assert storage.tokens.refresh_token is None

    assert (await admin(stack, "POST", f"/grants/{grant_id}/revoke")).status_code == 200
    fresh = ClientCredentialsOAuthProvider(
        server_url=stack.server,
        storage=mcp_client.MemoryStorage(),
        client_id=client_id,
        client_secret=secret,
        issuer=stack.registry,
    )
    with pytest.raises(BaseExceptionGroup):
        await mcp_client.call_tools(stack.server, fresh, [("balance", {})])


async def test_the_mcp_sdk_private_key_jwt_provider_uses_a_standing_grant(
    stack: MCPStack,
) -> None:
    """The SDK's ``PrivateKeyJWTOAuthProvider``, unmodified, signing its own assertions
    (ES256, no ``kid``) for an agent that registered its public key and Bearer tokens
    (it sends no DPoP proof): it redeems the standing grant and calls a tool, and gets no
    token once the grant is revoked."""
    from cryptography.hazmat.primitives import serialization
    from mcp.client.auth.extensions.client_credentials import (
        PrivateKeyJWTOAuthProvider,
        SignedJWTParameters,
    )

    from app.core.urns import CLIENT_ASSERTION_TYPE
    from tests.factories import Agent

    key = Agent()  # the job's key pair: it also signs the one request for the standing grant

    def authenticate(client_id: str, _: Any) -> dict[str, Any]:
        key.client_id, now = client_id, int(time.time())
        assertion = key.assertion(aud=stack.registry, iat=now, exp=now + 60)
        return {"data": {"client_assertion_type": CLIENT_ASSERTION_TYPE,
                         "client_assertion": assertion}}  # fmt: skip

    registration = {
        "client_name": "nightly job with a key",
        "jwks": {"keys": [key.public.to_dict()]},
        "dpop_bound_access_tokens": False,
    }
    answer, grant_id = await _standing_client(stack, registration, authenticate)
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()

    def provider() -> PrivateKeyJWTOAuthProvider:
        params = SignedJWTParameters(
            issuer=answer["client_id"],
            subject=answer["client_id"],
            signing_key=pem,
            signing_algorithm="ES256",
        )
        return PrivateKeyJWTOAuthProvider(
            server_url=stack.server,
            storage=mcp_client.MemoryStorage(),
            client_id=answer["client_id"],
            assertion_provider=params.create_assertion_provider(),
            issuer=stack.registry,
        )

    assert await mcp_client.call_tools(stack.server, provider(), [("balance", {})]) == [
        "100.00 EUR"
    ]
    assert (await admin(stack, "POST", f"/grants/{grant_id}/revoke")).status_code == 200
    with pytest.raises(BaseExceptionGroup):
        await mcp_client.call_tools(stack.server, provider(), [("balance", {})])
