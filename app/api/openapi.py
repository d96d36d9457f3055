"""Building blocks of the processes' OpenAPI 3.1 documents (``GET /openapi.json``).

The documents describe what the processes answer, status by status, so that a client
generator or a fuzzer (the test suite runs schemathesis against both) can rely on them. The
bodies they describe are the wire's: every error is RFC 6749 §5.2 JSON.
"""

from __future__ import annotations

from typing import Any

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "pattern": "^[\\x20-\\x21\\x23-\\x5B\\x5D-\\x7E]+$"},
        "error_description": {"type": "string"},
    },
}

_REASONS = {
    400: "The request is malformed or the grant refused (`error` says which).",
    401: "Client or caller authentication failed (`invalid_client`, `invalid_token`).",
    403: "Authenticated, but not allowed.",
    404: "No such resource.",
    405: "Method not allowed.",
    409: "Conflicts with the current state.",
    413: "The request body is too large.",
    415: "Wrong content type.",
    429: "Rate limited; `Retry-After` says when to try again.",
    503: "A dependency is unavailable; fail closed (`temporarily_unavailable`, `Retry-After`).",
}


def json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {JSON: {"schema": schema}}


def errors(*statuses: int) -> dict[str, Any]:
    """Error responses, each the RFC 6749 §5.2 body."""
    return {
        str(status): {
            "description": _REASONS[status],
            "content": json_content({"$ref": "#/components/schemas/Error"}),
        }
        for status in statuses
    }


def ok(description: str, schema: dict[str, Any], status: int = 200) -> dict[str, Any]:
    return {str(status): {"description": description, "content": json_content(schema)}}


def form_body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            FORM: {"schema": {"type": "object", "properties": properties, "required": required}}
        },
    }


def json_body(schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": json_content(schema)}


def obj(required: list[str] | None = None, **properties: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


STRING: dict[str, Any] = {"type": "string"}
INTEGER: dict[str, Any] = {"type": "integer"}
BOOLEAN: dict[str, Any] = {"type": "boolean"}
ANY_OBJECT: dict[str, Any] = {"type": "object"}


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


# Client authentication in the form (client_secret_post, private_key_jwt), which OpenAPI has
# no security scheme for: its members are listed in the request body instead.
CLIENT_AUTH_FORM: dict[str, Any] = {
    "client_id": STRING,
    "client_secret": STRING,
    "client_assertion": STRING,
    "client_assertion_type": STRING,
}


def query(*names: str) -> list[dict[str, Any]]:
    """Optional string query parameters."""
    return [{"name": name, "in": "query", "required": False, "schema": STRING} for name in names]


def operations_paths(ready_checks: list[str]) -> dict[str, Any]:
    """``/healthz``, ``/readyz``, ``/metrics`` and ``/openapi.json``, the same on every
    process."""
    ready = obj(
        ["ready", "checks"],
        ready=BOOLEAN,
        checks=obj(ready_checks, **dict.fromkeys(ready_checks, BOOLEAN)),
    )
    return {
        "/healthz": {
            "get": {
                "summary": "The process is up",
                "responses": ok("Up.", obj(["status"], status=STRING)),
            }
        },
        "/readyz": {
            "get": {
                "summary": "Its dependencies are reachable",
                "responses": {
                    **ok("Ready.", ready),
                    "503": {"description": "Not ready.", "content": json_content(ready)},
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (a bearer token when one is configured)",
                "responses": {
                    "200": {
                        "description": "Text exposition format.",
                        "content": {"text/plain": {"schema": STRING}},
                    },
                    "401": {"description": "The configured bearer token was not sent."},
                },
            }
        },
        "/openapi.json": {
            "get": {"summary": "This document", "responses": ok("OpenAPI 3.1.", ANY_OBJECT)}
        },
    }


JWK_SET = obj(["keys"], keys=array(obj(["kty", "kid"], kty=STRING, kid=STRING, alg=STRING)))


def document(
    title: str, description: str, paths: dict[str, Any], security_schemes: dict[str, Any]
) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1", "description": description},
        "paths": paths,
        "components": {"schemas": {"Error": ERROR}, "securitySchemes": security_schemes},
    }
