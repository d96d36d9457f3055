"""Hostile bodies at every registry endpoint: never a 5xx or a stack trace; every refusal is
the JSON error shape. (Some bodies are acceptable to lenient endpoints, which ignore unknown
members; those may succeed.)"""

from __future__ import annotations

import json

import pytest

from tests.support.registry import RegistryClient

JSON_BODIES: list[object] = [
    None,
    [],
    "string",
    5,
    {"credential": None},
    {"credential": "x"},
    {"credential": {"response": {"clientDataJSON": "!!!"}}},
    {
        "credential": {
            "id": "AA",
            "rawId": "AA",
            "type": "public-key",
            "response": {"clientDataJSON": "e30", "authenticatorData": "AA", "signature": "AA"},
        }
    },
    {"invite_token": ["x"]},
    {"invite_token": "x" * 5000},
    {"display_name": {"a": 1}},
    {"owner": 5, "expires_in": "x"},
    {"expires_in": 10**30},
    {"prepublish_seconds": True},
    {"name": "x", "resource": ["https://a"], "authorization_details_types": []},
    {"client_name": "x", "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "x": 1, "y": []}]}},
    {"a": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]},
]
FORM_BODIES = [
    b"",
    b"%",
    b"%ff",
    b"grant_type=%00",
    b"&&&===",
    b"a=" + b"%41" * 3000,
    b"grant_type=refresh_token&refresh_token=" + b"x" * 10000,
    b"client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
    b"&client_assertion=a.b.c&grant_type=refresh_token",
    b"authorization_details=" + b"%5B" * 5000,
]
JSON_ENDPOINTS = [
    "/register",
    "/admin/humans",
    "/admin/resource-servers",
    "/admin/enrollment-tokens",
    "/admin/keys/rotate",
    "/ui/api/passkeys/register/options",
    "/ui/api/passkeys/register/verify",
    "/ui/api/login/options",
    "/ui/api/login/verify",
    "/ui/api/enrollment-tokens",
    "/ui/api/requests/unknown/approve",
    "/ui/api/requests/unknown/approve/options",
]
FORM_ENDPOINTS = ["/token", "/bc-authorize", "/revoke"]


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
async def test_json_endpoints(registry: RegistryClient, path: str) -> None:
    human = await registry.human()
    headers = {
        "Authorization": f"Bearer {registry.admin_token}",
        "X-CSRF-Token": human.csrf,
        "Content-Type": "application/json",
    }
    for body in JSON_BODIES:
        response = await human.browser.post(path, content=json.dumps(body), headers=headers)
        assert response.status_code < 500, (path, body, response.text)
        if response.status_code >= 400:
            assert response.json()["error"], response.text
    for raw in (b"{", b"\xff\xfe", b"[" * 10000):
        response = await human.browser.post(path, content=raw, headers=headers)
        assert 400 <= response.status_code < 500, (path, raw[:20], response.text)


@pytest.mark.parametrize("path", FORM_ENDPOINTS)
async def test_form_endpoints(registry: RegistryClient, path: str) -> None:
    for body in FORM_BODIES:
        response = await registry.http.post(
            path,
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", "DPoP": "x.y.z"},
        )
        assert 400 <= response.status_code < 500, (path, body[:40], response.text)
        assert response.headers["cache-control"] == "no-store"
