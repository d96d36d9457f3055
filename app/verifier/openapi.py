"""The verifier's OpenAPI 3.1 document, served at ``GET /openapi.json`` (docs/api.md)."""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

from app.api.openapi import (
    ANY_OBJECT,
    BOOLEAN,
    CLIENT_AUTH_FORM,
    INTEGER,
    JWK_SET,
    STRING,
    array,
    document,
    errors,
    form_body,
    json_body,
    obj,
    ok,
    operations_paths,
)

# Resource servers also authenticate in the form (client_secret_post, private_key_jwt), which
# OpenAPI has no security scheme for: the form's members are listed instead.
CALLER: list[dict[str, list[str]]] = [{"basic": []}]
CALLER_ERRORS = errors(400, 401, 413, 503)

_ACTIVE = obj(
    ["active"],
    active=BOOLEAN,
    iss=STRING,
    sub=STRING,
    aud=STRING,
    client_id=STRING,
    act=ANY_OBJECT,
    exp=INTEGER,
    iat=INTEGER,
    jti=STRING,
    cnf=obj(["jkt"], jkt=STRING),
    token_type=STRING,
    authorization_details=array(ANY_OBJECT),
    grant_id=STRING,
    auth_time=INTEGER,
    scope=STRING,
)
_DECISION = {
    "oneOf": [
        obj(
            ["allowed", "sub", "act", "client_id", "grant_id"],
            allowed={"const": True},
            sub=STRING,
            act=ANY_OBJECT,
            client_id=STRING,
            grant_id=STRING,
            authorization_details=array(ANY_OBJECT),
        ),
        obj(
            ["allowed", "reason", "www_authenticate"],
            allowed={"const": False},
            reason=STRING,
            www_authenticate=STRING,
        ),
    ]
}
_AMOUNT = obj(["value", "currency"], value=STRING, currency=STRING)


def _paths() -> dict[str, Any]:
    return {
        "/introspect": {
            "post": {
                "summary": "RFC 7662 token introspection for the calling resource server",
                "security": CALLER,
                "requestBody": form_body(
                    {"token": STRING, "token_type_hint": STRING, **CLIENT_AUTH_FORM}, ["token"]
                ),
                "responses": {
                    **ok('`{"active": false}`, or the active token\'s claims.', _ACTIVE),
                    **CALLER_ERRORS,
                },
            }
        },
        "/verify": {
            "post": {
                "summary": "The whole decision for one request a resource server received",
                "security": CALLER,
                "requestBody": json_body(
                    obj(
                        ["token", "method", "url"],
                        token=STRING,
                        dpop=STRING,
                        method=STRING,
                        url=STRING,
                        action=STRING,
                        identifier=STRING,
                        amount=_AMOUNT,
                    )
                ),
                "responses": {
                    **ok("Allowed, or denied with a reason.", _DECISION),
                    **CALLER_ERRORS,
                },
            }
        },
        "/.well-known/jwks.json": {
            "get": {
                "summary": "The registry's published signing keys, served from cache",
                "responses": ok("The key set (RFC 7517).", JWK_SET),
            }
        },
        **operations_paths(["keys", "revocations", "cache", "database"]),
    }


@cache
def openapi_body() -> bytes:
    """The document as JSON, built once."""
    schemes = {"basic": {"type": "http", "scheme": "basic"}}
    return orjson.dumps(
        document(
            "AgentAuth verifier",
            "Token introspection, request decisions and the key set for resource servers."
            " Callers are registered resource servers.",
            _paths(),
            schemes,
        )
    )
