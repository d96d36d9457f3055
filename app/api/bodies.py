"""Reading request bodies with size limits and content-type checks."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from app.api import hot_route
from app.core.errors import InvalidRequest, OAuthError
from app.core.params import FormParams, parse_form
from app.core.strict_json import JSONError, parse_json

MAX_BODY = hot_route.MAX_BODY


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The body of a framework route, read by the hot routes' one reader."""
    return await hot_route.read_body(request.receive, dict(request.scope["headers"]), limit)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_form(request: Request) -> FormParams:
    """An OAuth form body (RFC 6749 §3.2): only ``application/x-www-form-urlencoded``."""
    if request.url.query:
        # Parameters, and above all tokens, never travel in the URL (RFC 6750 §2.3).
        raise InvalidRequest("Parameters must be sent in the request body, not the URL.")
    if _media_type(request) != "application/x-www-form-urlencoded":
        raise InvalidRequest("The body must be application/x-www-form-urlencoded.")
    return parse_form(await read_body(request))


async def read_json(
    request: Request, error: type[OAuthError] = InvalidRequest, *, allow_empty: bool = False
) -> dict[str, Any]:
    """A JSON object body; other media types and malformed JSON raise ``error``."""
    raw = await read_body(request)
    if not raw.strip() and allow_empty:
        return {}
    if _media_type(request) != "application/json":
        raise error("The body must be application/json.")
    try:
        value = parse_json(raw)
    except JSONError:
        raise error("The body is not valid JSON.") from None
    if not isinstance(value, dict):
        raise error("The body must be a JSON object.")
    return value
