"""The one place errors become HTTP responses.

``OAuthError`` renders as RFC 6749 §5.2 JSON with its own status and headers; a database
that cannot be reached is a 503 ``temporarily_unavailable`` with ``Retry-After``, and a value
whose characters the database cannot store (a NUL in PostgreSQL text) a 400
``invalid_request``. Anything else
becomes ``server_error`` with no detail; the exception is logged with a correlation id that
is also returned, so an operator can find it without leaking internals.
"""

from __future__ import annotations

import logging
import secrets
from typing import Literal

import orjson
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Match

from app.api.metrics import dependency_error
from app.cache.base import CacheUnavailable
from app.core.errors import InvalidRequest, OAuthError, TemporarilyUnavailable
from app.store.sql import database_unavailable, unstorable_text

log = logging.getLogger("agentauth.errors")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_HTTP_CODES = {
    401: "invalid_token",
    403: "forbidden",
    404: "not_found",
    405: "invalid_request",
    409: "conflict",
    413: "invalid_request",
    415: "invalid_request",
    429: "rate_limited",
}


def json_response(
    body: object, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """JSON, ``no-store`` unless ``headers`` say how it may be cached (then without the
    HTTP/1.0 ``Pragma: no-cache``, which would contradict them)."""
    sent = {**NO_STORE, **(headers or {})}
    if sent["Cache-Control"] != NO_STORE["Cache-Control"]:
        del sent["Pragma"]
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=sent
    )


def error_response(error: OAuthError) -> Response:
    if error.detail != error.description:
        log.info("%s: %s", error.error, error.detail)
    return json_response(error.body(), error.status, dict(error.headers))


async def oauth_error_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)  # noqa: S101 - registered for OAuthError only
    return error_response(exc)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed_methods(request: Request) -> set[str]:
    """Every method some route at the request's path answers (RFC 9110 §15.5.6: ``Allow``
    lists the resource's methods, while the router names only the first route's)."""
    routes = getattr(request.app.router, "routes", ())
    allowed = set()
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in routes):
            allowed.add(method)
    return allowed


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405/... in the same JSON shape."""
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it only
    code = _HTTP_CODES.get(exc.status_code, "invalid_request")
    body = {"error": code, "error_description": str(exc.detail)}
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        if allowed:
            headers["Allow"] = ", ".join(sorted(allowed))
    return json_response(body, exc.status_code, headers)


def exception_response(exc: Exception) -> Response:
    """The answer to any exception: an ``OAuthError`` as itself, an unreachable cache or
    database as ``503 temporarily_unavailable`` (``Retry-After: 1``), anything else as a
    plain ``server_error`` whose correlation id is logged with the stack trace."""
    if isinstance(exc, OAuthError):
        return error_response(exc)
    if isinstance(exc, CacheUnavailable):  # Redis did not answer: fail closed, try again
        return error_response(unavailable(str(exc), "redis"))
    if database_unavailable(exc):
        log.warning("database unavailable: %s", exc)
        return error_response(unavailable(str(exc), "postgres"))
    if isinstance(exc, ClientDisconnect):  # hung up mid-request: not a server error
        return error_response(InvalidRequest("The client went away.", detail=str(exc)))
    if unstorable_text(exc):
        return error_response(
            InvalidRequest(
                "The request contains a character that cannot be stored.", detail=str(exc)
            )
        )
    correlation = secrets.token_hex(8)
    log.error("unhandled error %s", correlation, exc_info=exc)
    body = {"error": "server_error", "error_description": f"Internal error {correlation}."}
    return json_response(body, 500)


async def unexpected_error_handler(_: Request, exc: Exception) -> Response:
    return exception_response(exc)


def unavailable(
    what: str, failed: Literal["redis", "postgres"] | None = None
) -> TemporarilyUnavailable:
    """503 with ``Retry-After``; ``failed`` names the dependency whose call failed, counted
    for the dependency-errors alert (a state being rebuilt or a throttle is not counted)."""
    if failed is not None:
        dependency_error(failed)
    return TemporarilyUnavailable(
        "The service is temporarily unavailable.", detail=what, headers={"Retry-After": "1"}
    )


class RateLimited(OAuthError):
    """429 with ``Retry-After``: too many requests from one client or address."""

    error = "rate_limited"
    status_code = 429
    default_description = "Too many requests; retry later."


class NotFound(OAuthError):
    error = "not_found"
    status_code = 404
    default_description = "No such resource."


class Conflict(OAuthError):
    error = "conflict"
    status_code = 409
    default_description = "The resource is not in a state that allows this."


class Forbidden(OAuthError):
    error = "forbidden"
    status_code = 403
    default_description = "Not allowed."
