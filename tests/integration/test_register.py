"""``POST /register`` (RFC 7591): metadata rules and enrollment-token rules on the wire."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.factories import Agent
from tests.support.registry import CIBA, AgentClient, Human, RegistryClient


async def enrollment_token(human: Human, expires_in: int = 600) -> str:
    response = await human.api("POST", "/enrollment-tokens", {"expires_in": expires_in})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


async def post(
    registry: RegistryClient, token: str | None, body: Any, *, raw: bytes | None = None
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    content = raw if raw is not None else json.dumps(body).encode()
    return await registry.http.post("/register", content=content, headers=headers)


def metadata(agent: Agent | None = None, **extra: Any) -> dict[str, Any]:
    agent = agent or Agent()
    return {"client_name": "Shopper", "jwks": {"keys": [agent.public.to_dict()]}, **extra}


async def test_registration_echoes_metadata_with_defaults(registry: RegistryClient) -> None:
    human = await registry.human()
    response = await post(
        registry, await enrollment_token(human), metadata(software_id="s", contacts=["a@b.c"])
    )
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["client_id"].startswith("agt_")
    assert isinstance(body["client_id_issued_at"], int)
    assert body["token_endpoint_auth_method"] == "private_key_jwt"
    assert body["dpop_bound_access_tokens"] is True
    assert body["grant_types"] == [
        CIBA,
        "refresh_token",
        "urn:ietf:params:oauth:grant-type:token-exchange",
        "client_credentials",
    ]
    assert body["software_id"] == "s"
    assert body["contacts"] == ["a@b.c"]
    agents = (await human.api("GET", "/agents")).json()["agents"]
    assert body["client_id"] in {a["client_id"] for a in agents}  # owned by the token's human


def _with_private(agent: Agent) -> dict[str, Any]:
    return {"keys": [{**agent.public.to_dict(), "d": "AAAA"}]}


@pytest.mark.parametrize(
    "body",
    [
        {"jwks": {"keys": []}},
        metadata(client_name=""),
        {k: v for k, v in metadata().items() if k != "client_name"},
        metadata(jwks=_with_private(Agent())),
        metadata(jwks={"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "r"}]}),
        metadata(jwks={"keys": [Agent().jwk()]}),  # no kid
        metadata(jwks={"keys": [Agent().public.to_dict() for _ in range(11)]}),
        metadata(jwks_uri="https://agent.example/jwks"),
        metadata(token_endpoint_auth_method="tls_client_auth"),
        metadata(dpop_bound_access_tokens="no"),
        metadata(grant_types=["password"]),
        metadata(grant_types=[]),
        metadata(contacts="a@b.c"),
        metadata(software_version=5),
        ["not", "an", "object"],
    ],
    ids=[
        "no-name",
        "empty-name",
        "missing-name",
        "private-key",
        "rsa",
        "no-kid",
        "oversized",
        "jwks-uri",
        "auth-method",
        "dpop-not-boolean",
        "grant-type",
        "no-grant-types",
        "contacts",
        "software-version",
        "array",
    ],
)
async def test_bad_metadata(registry: RegistryClient, body: Any) -> None:
    human = await registry.human()
    token = await enrollment_token(human)
    response = await post(registry, token, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_client_metadata"
    assert (await post(registry, token, metadata())).status_code == 201  # bad input changed nothing


async def test_only_the_validated_public_key_members_are_stored(registry: RegistryClient) -> None:
    """A submitted set's extra members (an x5c chain, unknown members) are neither stored
    nor echoed: what the registry keeps is what it validated."""
    human = await registry.human()
    agent = Agent()
    submitted = {**agent.public.to_dict(), "x5c": ["A" * 4000], "note": "n", "use": "sig"}
    response = await post(
        registry, await enrollment_token(human), metadata(jwks={"keys": [submitted]})
    )
    assert response.status_code == 201, response.text
    assert response.json()["jwks"] == {"keys": [agent.public.to_dict()]}


async def test_an_oversized_jwks_is_refused(registry: RegistryClient) -> None:
    human = await registry.human()
    padded = {**Agent().public.to_dict(), "x5c": ["A" * 60_000]}
    response = await post(
        registry, await enrollment_token(human), metadata(jwks={"keys": [padded]})
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_client_metadata"
    assert "larger than 8192 bytes" in response.json()["error_description"]


async def test_non_json_body(registry: RegistryClient) -> None:
    human = await registry.human()
    token = await enrollment_token(human)
    response = await post(registry, token, None, raw=b"client_name=x")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


async def test_enrollment_token_rules(registry: RegistryClient) -> None:
    human = await registry.human()

    async def refused(token: str | None) -> None:
        response = await post(registry, token, metadata())
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_token"
        assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')

    await refused(None)
    await refused("made-up-token")
    token = await enrollment_token(human)
    assert (await post(registry, token, metadata())).status_code == 201
    await refused(token)  # single use
    expiring = await enrollment_token(human, expires_in=60)
    registry.clock.advance(61)
    await refused(expiring)
    await human.login()
    owner_gone = await enrollment_token(human)
    assert (await registry.admin("POST", f"/humans/{human.id}/suspend")).status_code == 200
    await refused(owner_gone)


async def test_registered_agent_uses_its_keys(registry: RegistryClient) -> None:
    human = await registry.human()
    agent = AgentClient(http=registry.http, clock=registry.clock, keys=Agent("EdDSA"))
    assert (await agent.register(await enrollment_token(human))).status_code == 201
    response = await agent.post("/token", agent.form(grant_type=CIBA, auth_req_id="x"))
    assert (
        response.json()["error"] == "invalid_grant"
    )  # authenticated, DPoP accepted, no such request
