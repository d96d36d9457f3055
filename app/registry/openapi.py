"""The registry's OpenAPI 3.1 document, served at ``GET /openapi.json`` (docs/api.md).

It covers the protocol endpoints, the operator API and operations. The approval app's
browser API under ``/ui`` (a session cookie, CSRF tokens, WebAuthn ceremonies) is the
approval pages' own and is left out.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson

from app.api.openapi import (
    ANY_OBJECT,
    BOOLEAN,
    CLIENT_AUTH_FORM,
    FORM,
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
    query,
)

TOKEN = obj(
    ["access_token", "token_type", "expires_in"],
    access_token=STRING,
    token_type={"enum": ["DPoP", "Bearer"]},
    expires_in=INTEGER,
    refresh_token=STRING,
    authorization_details=array(ANY_OBJECT),
    scope=STRING,
    issued_token_type=STRING,
)
ADMIN: list[dict[str, list[str]]] = [{"adminToken": []}]
_ID = {"name": "id", "in": "path", "required": True, "schema": STRING}


def _param(name: str) -> list[dict[str, Any]]:
    return [{**_ID, "name": name}]


def _admin(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "summary": summary,
        "security": ADMIN,
        "responses": {**errors(400), **responses, **errors(401, 503)},
        **extra,
    }


def _listing(name: str) -> dict[str, Any]:
    return obj([name], **{name: array(ANY_OBJECT)})


def _admin_paths() -> dict[str, Any]:
    human = obj(["display_name"], display_name=STRING, email=STRING)
    server = obj(
        ["name", "resource"],
        name=STRING,
        resource=STRING,
        authorization_details_types=ANY_OBJECT,
        token_endpoint_auth_method={
            "enum": ["client_secret_basic", "client_secret_post", "private_key_jwt"]
        },
        jwks=ANY_OBJECT,
        dpop_required=BOOLEAN,
        scopes=ANY_OBJECT,
    )
    enrollment = obj(["owner"], owner=STRING, expires_in=INTEGER)
    created_token = obj(["token", "expires_at"], token=STRING, expires_at=STRING)
    return {
        "/admin/humans": {
            "post": _admin(
                "Invite a human",
                {
                    **ok(
                        "Invited.",
                        obj(
                            ["id", "invite_token", "invite_url"],
                            id=STRING,
                            invite_token=STRING,
                            invite_url=STRING,
                        ),
                        201,
                    ),
                    **errors(413),
                },
                requestBody=json_body(human),
            ),
            "get": _admin("Every human", ok("Humans.", _listing("humans"))),
        },
        "/admin/humans/{human_id}/suspend": {
            "post": _admin(
                "Suspend a human (their grants and tokens die)",
                {**ok("Suspended.", ANY_OBJECT), **errors(404)},
                parameters=_param("human_id"),
            )
        },
        "/admin/resource-servers": {
            "post": _admin(
                "Register a resource server",
                {
                    **ok(
                        "Registered; a client secret is shown once.",
                        obj(
                            ["client_id", "resource"],
                            client_id=STRING,
                            resource=STRING,
                            client_secret=STRING,
                            dpop_required=BOOLEAN,
                            scopes=ANY_OBJECT,
                        ),
                        201,
                    ),
                    **errors(409, 413),
                },
                requestBody=json_body(server),
            ),
            "get": _admin(
                "Every resource server", ok("Resource servers.", _listing("resource_servers"))
            ),
        },
        "/admin/enrollment-tokens": {
            "post": _admin(
                "An enrollment token for a human's agents",
                {**ok("Created.", created_token, 201), **errors(413)},
                requestBody=json_body(enrollment),
            )
        },
        "/admin/agents": {"get": _admin("Every agent", ok("Agents.", _listing("agents")))},
        "/admin/agents/{client_id}/disable": {
            "post": _admin(
                "Disable an agent (its tokens die)",
                {**ok("Disabled.", ANY_OBJECT), **errors(404)},
                parameters=_param("client_id"),
            )
        },
        "/admin/grants": {
            "get": _admin(
                "Grants, filtered",
                ok("Grants.", _listing("grants")),
                parameters=query("human", "agent", "status"),
            )
        },
        "/admin/grants/{grant_id}/revoke": {
            "post": _admin(
                "Revoke a grant and every token derived from it",
                {**ok("Revoked.", ANY_OBJECT), **errors(404)},
                parameters=_param("grant_id"),
            )
        },
        "/admin/keys/rotate": {
            "post": _admin(
                "Create the next signing key, published ahead of use",
                {
                    **ok(
                        "The next key.",
                        obj(
                            ["kid", "alg", "activates_at"],
                            kid=STRING,
                            alg=STRING,
                            activates_at=STRING,
                        ),
                    ),
                    **errors(413),
                },
                requestBody=json_body(obj(prepublish_seconds=INTEGER), required=False),
            )
        },
        "/admin/audit": {
            "get": _admin(
                "Audit events after a sequence number",
                ok("Events.", _listing("events")),
                parameters=[
                    {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    },
                ],
            )
        },
        "/admin/audit/verify": {
            "get": _admin("Verify the audit chain", ok("The report.", obj(["ok"], ok=BOOLEAN)))
        },
    }


def _protocol_paths() -> dict[str, Any]:
    metadata = obj(["issuer", "token_endpoint"], issuer=STRING, token_endpoint=STRING)
    client_errors = errors(400, 401, 413, 429, 503)
    return {
        "/.well-known/oauth-authorization-server": {
            "get": {
                "summary": "RFC 8414 authorization server metadata",
                "responses": {**ok("The metadata.", metadata), **errors(503)},
            }
        },
        "/.well-known/openid-configuration": {
            "get": {
                "summary": "The same metadata, where OpenID clients look",
                "responses": {**ok("The metadata.", metadata), **errors(503)},
            }
        },
        "/.well-known/jwks.json": {
            "get": {
                "summary": "The published signing keys (current, next and retiring)",
                "responses": ok("The key set (RFC 7517).", JWK_SET),
            }
        },
        "/token": {
            "post": {
                "summary": (
                    "The token endpoint: CIBA, refresh, token exchange, authorization code,"
                    " client credentials (a standing grant)"
                ),
                "description": "A `DPoP` header (RFC 9449) binds the tokens; most grants need one.",
                "requestBody": form_body(
                    {
                        "grant_type": STRING,
                        "auth_req_id": STRING,
                        "refresh_token": STRING,
                        "code": STRING,
                        "code_verifier": STRING,
                        "redirect_uri": STRING,
                        "subject_token": STRING,
                        "subject_token_type": STRING,
                        "actor_token": STRING,
                        "actor_token_type": STRING,
                        "requested_token_type": STRING,
                        "resource": STRING,
                        "audience": STRING,
                        "authorization_details": STRING,
                        "scope": STRING,
                        **CLIENT_AUTH_FORM,
                    },
                    ["grant_type"],
                ),
                "responses": {**ok("Tokens.", TOKEN), **client_errors},
            }
        },
        "/revoke": {
            "post": {
                "summary": "RFC 7009 revocation (200 whether or not the token was known)",
                "requestBody": form_body(
                    {"token": STRING, "token_type_hint": STRING, **CLIENT_AUTH_FORM}, ["token"]
                ),
                "responses": {**ok("Done.", ANY_OBJECT), **client_errors},
            }
        },
        "/bc-authorize": {
            "post": {
                "summary": "OpenID CIBA: an agent asks a human for a grant",
                "requestBody": form_body(
                    {
                        "authorization_details": STRING,
                        "login_hint": STRING,
                        "binding_message": STRING,
                        "requested_expiry": STRING,
                        "grant_lifetime": STRING,
                        "max_delegation_depth": STRING,
                        "standing": {"type": "string", "enum": ["true", "false"]},
                        **CLIENT_AUTH_FORM,
                    },
                    ["authorization_details"],
                ),
                "responses": {
                    **ok(
                        "The request is open.",
                        obj(
                            ["auth_req_id", "expires_in", "interval"],
                            auth_req_id=STRING,
                            expires_in=INTEGER,
                            interval=INTEGER,
                        ),
                    ),
                    **client_errors,
                },
            }
        },
        "/register": {
            "post": {
                "summary": "RFC 7591 dynamic client registration",
                "description": "An enrollment token (`Authorization: Bearer`) unless the"
                " registration policy lets public clients register without one.",
                "requestBody": json_body(
                    obj(
                        client_name=STRING,
                        jwks=ANY_OBJECT,
                        redirect_uris=array(STRING),
                        grant_types=array(STRING),
                        token_endpoint_auth_method=STRING,
                    )
                ),
                "responses": {
                    **ok(
                        "Registered.",
                        obj(["client_id"], client_id=STRING, client_secret=STRING),
                        201,
                    ),
                    **errors(400, 401, 403, 413, 429, 503),
                },
            }
        },
        "/authorize": {
            "get": {
                "summary": "OAuth 2.1 authorization request (PKCE), answered by the approval app",
                "parameters": query(
                    "response_type",
                    "client_id",
                    "redirect_uri",
                    "state",
                    "code_challenge",
                    "code_challenge_method",
                    "scope",
                    "resource",
                    "authorization_details",
                    "dpop_jkt",
                ),
                "responses": {
                    "303": {"description": "To the login or consent page, or back to the client."},
                    "400": {
                        "description": "A request that cannot be redirected, shown as a page.",
                        "content": {"text/html": {"schema": STRING}},
                    },
                    **errors(429, 503),
                },
            },
            "post": {
                "summary": "The same request as a form, redirected to its GET form",
                "requestBody": {
                    "required": True,
                    "content": {FORM: {"schema": {"type": "object"}}},
                },
                "responses": {
                    "303": {"description": "To the same request as a query."},
                    "400": {
                        "description": "Not a form, or not a valid one, shown as a page.",
                        "content": {"text/html": {"schema": STRING}},
                    },
                    **errors(413),
                },
            },
        },
    }


@cache
def openapi_body() -> bytes:
    """The document as JSON, built once."""
    paths = {
        **_protocol_paths(),
        **_admin_paths(),
        **operations_paths(["database", "cache", "keys"]),
    }
    schemes = {"adminToken": {"type": "http", "scheme": "bearer"}}
    return orjson.dumps(
        document(
            "AgentAuth registry",
            "Agents, grants approved with passkeys, tokens and the operator API.",
            paths,
            schemes,
        )
    )
