"""Fail-closed introspection (IN-05..IN-11), RFC 8414 metadata (MD-xx) and resources (RI-xx)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from app.core.introspection import active_response, allowed_decision, inactive, introspect
from app.core.keys import new_signing_key
from app.core.metadata import authorization_server_metadata
from app.core.resources import canonical_resource, url_within_resource
from app.core.tokens import AccessTokenClaims, mint_access_token
from app.registry.grants import grant_types
from tests.factories import ISSUER, NOW, RESOURCE, Agent

KEY = new_signing_key(activates_at=0)
AGENT = Agent()
OTHER = "https://other.example.com"
CLAIMS = AccessTokenClaims(
    iss=ISSUER,
    sub="usr_alice",
    aud=RESOURCE,
    client_id=AGENT.client_id,
    act={"sub": "agt_b", "act": {"sub": AGENT.client_id}},
    iat=NOW,
    exp=NOW + 300,
    jkt=AGENT.jkt,
    grant_id="grt_1",
    auth_time=NOW - 5,
    authorization_details=[
        {"type": "api", "locations": [RESOURCE], "actions": ["read"]},
        {"type": "api", "locations": [OTHER], "actions": ["read"]},
    ],
    scope="read",
)


def run(token: str, **kwargs: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "issuer": ISSUER,
        "keys": {KEY.kid: KEY.public},
        "now": NOW,
        "caller_resource": RESOURCE,
        "is_revoked": lambda claims: False,
    }
    options.update(kwargs)
    return introspect(token, **options)


def test_active_response_members() -> None:  # IN-05, IN-08, DP-B2, DP-B3, TX-37
    body = run(mint_access_token(CLAIMS, KEY))
    assert body == {
        "active": True,
        "iss": ISSUER,
        "sub": "usr_alice",
        "aud": RESOURCE,
        "client_id": AGENT.client_id,
        "act": {"sub": "agt_b", "act": {"sub": AGENT.client_id}},
        "exp": NOW + 300,
        "iat": NOW,
        "jti": CLAIMS.jti,
        "cnf": {"jkt": AGENT.jkt},
        "token_type": "DPoP",
        "authorization_details": [{"type": "api", "locations": [RESOURCE], "actions": ["read"]}],
        "grant_id": "grt_1",
        "auth_time": NOW - 5,
        "scope": "read",
    }
    assert "scope" not in active_response(dataclasses.replace(CLAIMS, scope=None))


def test_a_bearer_token_is_active_only_for_a_caller_that_accepts_bearer_tokens() -> None:
    bearer = mint_access_token(dataclasses.replace(CLAIMS, jkt=None), KEY)
    assert run(bearer) == {"active": False}
    body = run(bearer, bearer_accepted=True)
    assert (body["active"], body["token_type"]) == (True, "Bearer")
    assert "cnf" not in body


@pytest.mark.parametrize(
    ("token", "kwargs"),
    [
        ("garbage", {}),
        ("a.b.c", {}),
        (mint_access_token(CLAIMS, KEY), {"now": NOW + 300}),  # expired
        (mint_access_token(CLAIMS, KEY), {"caller_resource": OTHER}),  # IN-07
        (mint_access_token(CLAIMS, KEY), {"issuer": "https://evil.example"}),
        (mint_access_token(CLAIMS, KEY), {"is_revoked": lambda claims: True}),  # IN-11
        (mint_access_token(CLAIMS, new_signing_key(activates_at=0)), {}),
    ],
    ids=[
        "garbage",
        "malformed",
        "expired",
        "other-audience",
        "other-issuer",
        "revoked",
        "foreign-key",
    ],
)
def test_inactive_is_exactly_active_false(token: str, kwargs: dict[str, Any]) -> None:  # IN-06
    assert run(token, **kwargs) == {"active": False}


def test_revocation_lookup_failure_propagates() -> None:
    def unknown(_: AccessTokenClaims) -> bool:
        raise ConnectionError("revocation state unavailable")

    with pytest.raises(ConnectionError):
        run(mint_access_token(CLAIMS, KEY), is_revoked=unknown)


def test_inactive_is_a_fresh_dict() -> None:
    first = inactive()
    first["active"] = True
    assert inactive() == {"active": False}


def test_metadata() -> None:
    doc = authorization_server_metadata(
        issuer=ISSUER,
        verifier_url="https://verify.example.com",
        grant_types=grant_types(),
        capability_types=["urn:x"],
    )
    assert doc["issuer"] == ISSUER
    assert doc["introspection_endpoint"] == "https://verify.example.com/introspect"
    assert doc["token_endpoint"] == f"{ISSUER}/token"
    assert doc["authorization_details_types_supported"] == ["api", "urn:x"]
    assert "urn:ietf:params:oauth:grant-type:token-exchange" in doc["grant_types_supported"]
    assert doc["authorization_endpoint"] == f"{ISSUER}/authorize"
    assert doc["response_types_supported"] == ["code"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert doc["client_id_metadata_document_supported"] is True
    assert doc["token_endpoint_auth_methods_supported"] == [
        "private_key_jwt",
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]
    assert "scopes_supported" not in doc  # each resource server publishes its own
    for name, value in doc.items():
        if isinstance(value, list):
            assert value, f"{name} is empty"  # MD-16
            assert not any(str(v).startswith("HS") for v in value)
            # "none" only where a public client authenticates by its client_id alone.
            if name not in (
                "token_endpoint_auth_methods_supported",
                "revocation_endpoint_auth_methods_supported",
            ):
                assert "none" not in value


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("https://shop.example.com/api", "https://shop.example.com/api"),
        ("HTTPS://Shop.Example.COM:443/api/", "https://shop.example.com/api"),
        ("https://shop.example.com/", "https://shop.example.com"),
        ("https://shop.example.com:8443", "https://shop.example.com:8443"),
        ("http://localhost:9000/x", "http://localhost:9000/x"),
        ("http://127.0.0.1/x", "http://127.0.0.1/x"),
        ("http://[::1]:80/x", "http://[::1]/x"),
    ],
)
def test_canonical_resource(raw: str, canonical: str) -> None:  # RI-05
    assert canonical_resource(raw) == canonical


@pytest.mark.parametrize(
    "raw",
    [
        "",
        5,
        "/relative",
        "shop.example.com",
        "ftp://shop.example.com",
        "http://shop.example.com",
        "https://user@shop.example.com",
        "https://shop.example.com/a?x=1",
        "https://shop.example.com#f",
        "https://shop.example.com/a b",
        "https://shop.example.com:99999",
        "https://shop.example.com/a/../b",
        "https://shop.example.com/" + "a" * 600,
        "https://shöp.example.com",
    ],
)
def test_invalid_resources(raw: Any) -> None:  # RI-01
    with pytest.raises(ValueError, match=r"resource|[Pp]ort"):
        canonical_resource(raw)


def test_url_within_resource() -> None:
    assert url_within_resource("https://shop.example.com/api", RESOURCE.replace("shop", "shop"))
    assert url_within_resource(
        "https://shop.example.com/api/orders?id=1", "https://shop.example.com/api"
    )
    assert url_within_resource("HTTPS://SHOP.example.com:443/api/", "https://shop.example.com/api")
    assert not url_within_resource("https://shop.example.com/apix", "https://shop.example.com/api")
    assert not url_within_resource(
        "https://shop.example.com/api/../admin", "https://shop.example.com/api"
    )
    assert not url_within_resource("http://shop.example.com/api", "https://shop.example.com/api")
    assert not url_within_resource("https://evil.example/api", "https://shop.example.com/api")
    assert not url_within_resource("not a url", "https://shop.example.com/api")


def test_allowed_decision_names_the_chain_and_the_one_capability() -> None:
    capability = CLAIMS.authorization_details[0]
    decision = allowed_decision(CLAIMS, capability)
    assert decision["allowed"] is True
    assert decision["act"] == {"sub": "agt_b", "act": {"sub": AGENT.client_id}}
    assert decision["authorization_details"] == [capability]
    assert decision["scope"] == "read"
    without_scope = allowed_decision(dataclasses.replace(CLAIMS, scope=None), capability)
    assert "scope" not in without_scope
