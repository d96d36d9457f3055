"""Hostile bodies at every registry endpoint: never a 5xx or a stack trace; every refusal is
the JSON error shape. (Some bodies are acceptable to lenient endpoints, which ignore unknown
members; those may succeed.)"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import httpx
import pytest

from app.core.jwk import b64url_encode
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


# --- numbers no parser may turn into a 500 (threat model, hardening rule 7) -----------------

HUGE = "1" * 5000  # beyond Python's 4,300-digit limit for int()
JWS_WITH_HUGE_INT = (
    b64url_encode(('{"typ":"dpop+jwt","alg":"ES256","x":' + HUGE + "}").encode())
    + "."
    + b64url_encode(b"{}")
    + ".AA"
)
JWT_WITH_HUGE_INT = (
    b64url_encode(('{"alg":"ES256","kid":' + HUGE + "}").encode())
    + "."
    + b64url_encode(b"{}")
    + ".AA"
)
ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.mark.parametrize("path", [p for p in JSON_ENDPOINTS if not p.endswith("/options")])
@pytest.mark.parametrize("number", [HUGE, "-" + HUGE, "1e99999", "-1e99999"])
async def test_json_numbers_out_of_range_are_400(
    registry: RegistryClient, path: str, number: str
) -> None:
    human = await registry.human()
    headers = {
        "Authorization": f"Bearer {registry.admin_token}",
        "X-CSRF-Token": human.csrf,
        "Content-Type": "application/json",
    }
    body = '{"expires_in": ' + number + ', "display_name": "x"}'
    response = await human.browser.post(path, content=body, headers=headers)
    assert response.status_code == 400, (path, response.text)
    assert response.json()["error"] in ("invalid_request", "invalid_client_metadata")


@pytest.mark.parametrize(
    "body",
    [
        {"grant_type": "refresh_token", "refresh_token": "x"},
        {"client_assertion_type": ASSERTION, "client_assertion": JWT_WITH_HUGE_INT},
        {"requested_expiry": "²", "scope": "openid"},
        {"requested_expiry": "\u0661\u0662\u0660", "scope": "openid"},
        {"max_delegation_depth": "²", "scope": "openid"},
        {"grant_lifetime": HUGE, "scope": "openid"},
    ],
)
@pytest.mark.parametrize("path", FORM_ENDPOINTS)
async def test_form_numbers_and_jose_headers_out_of_range_are_4xx(
    registry: RegistryClient, path: str, body: dict[str, str]
) -> None:
    response = await registry.http.post(
        path,
        content=urlencode(body),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "DPoP": JWS_WITH_HUGE_INT,
        },
    )
    assert response.status_code in (400, 401), (path, body, response.text)
    assert response.json()["error"] in ("invalid_request", "invalid_client", "invalid_dpop_proof")
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("length", ["²", "\u0661", HUGE])
async def test_a_content_length_that_is_not_ascii_digits_is_refused(
    registry: RegistryClient, verifier_http: httpx.AsyncClient, length: str
) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    json_body = {"Content-Type": "application/json"}
    admin = {"Authorization": f"Bearer {registry.admin_token}", **json_body}
    for http, path, headers in (
        (registry.http, "/token", form),
        (registry.http, "/admin/humans", admin),
        (verifier_http, "/verify", json_body),
        (verifier_http, "/introspect", form),
    ):
        request = http.build_request("POST", path, content=b"a=b", headers=headers)
        request.headers["Content-Length"] = length
        response = await http.send(request)
        assert response.status_code == 400, (path, length, response.text)
        assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "path", ["/token", "/register", "/revoke", "/bc-authorize", "/ui/api/login/options"]
)
async def test_a_client_that_hangs_up_mid_body_is_no_server_error(
    registry: RegistryClient, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Half a body, then the connection goes: answered 400 (to nobody) and never logged as
    an unhandled error."""
    assert registry.app is not None
    messages = iter(
        [
            {"type": "http.request", "body": b"grant_type=refr", "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict[str, object]:
        return next(messages, {"type": "http.disconnect"})

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    content_type = (
        "application/json"
        if path.startswith("/ui") or path == "/register"
        else ("application/x-www-form-urlencoded")
    )
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), (b"content-type", content_type.encode()),
                    (b"content-length", b"100")],
        "client": ("127.0.0.1", 50000),
        "server": ("localhost", 80),
    }  # fmt: skip
    with caplog.at_level("ERROR"):
        await registry.app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] in (400, 401)  # /register asks for its token first
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
