"""The OpenAPI documents are true of the successful protocol answers too: tokens from
``/token``, an active introspection, an allowed and a denied ``/verify`` (the processes'
documents, served at ``/openapi.json``, checked with schemathesis's response validation)."""

from __future__ import annotations

from typing import Any

import httpx
import schemathesis

from app.core.urns import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT
from tests.support.registry import RegistryClient
from tests.support.verifier import shop_with_grant, verify_body


async def _schema(http: httpx.AsyncClient) -> Any:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    return schemathesis.openapi.from_dict(response.json())


async def test_token_and_verifier_answers_match_the_documents(
    registry: RegistryClient, verifier_http: httpx.AsyncClient
) -> None:
    shop, _alice, agent, _grant_id = await shop_with_grant(registry, verifier_http)
    registry_schema = await _schema(registry.http)
    verifier_schema = await _schema(verifier_http)
    exchanged = await agent.token(
        TOKEN_EXCHANGE_GRANT,
        subject_token=agent.access_token,
        subject_token_type=ACCESS_TOKEN_TYPE,
        resource=shop.resource,
    )
    assert exchanged.status_code == 200, exchanged.text
    refreshed = await agent.token("refresh_token", refresh_token=agent.refresh_token)
    assert refreshed.status_code == 200, refreshed.text
    for response in (exchanged, refreshed):
        registry_schema["/token"]["POST"].validate_response(response)
    token = exchanged.json()["access_token"]
    active = await shop.introspect(token)
    assert active.json()["active"] is True
    inactive = await shop.introspect("not-a-token")
    assert inactive.json() == {"active": False}
    allowed = await shop.verify(
        verify_body(agent, shop.resource + "/x", token=token, action="read")
    )
    assert allowed.json()["allowed"] is True
    denied = await shop.verify(verify_body(agent, shop.resource + "/x", token=token, action="pay"))
    assert denied.json()["allowed"] is False
    for path, response in (
        ("/introspect", active),
        ("/introspect", inactive),
        ("/verify", allowed),
        ("/verify", denied),
    ):
        verifier_schema[path]["POST"].validate_response(response)


async def test_a_405_names_every_method_of_the_resource(registry: RegistryClient) -> None:
    """RFC 9110 §15.5.6: ``/admin/humans`` answers GET and POST, so a DELETE is told both."""
    response = await registry.http.delete("/admin/humans")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.json()["error"] == "invalid_request"
