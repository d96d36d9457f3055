"""The hot endpoints as raw ASGI handlers: no framework routing, dependency graph or
pydantic on the path; bodies parsed strictly, answers written with orjson.

``POST /introspect`` (RFC 7662, form body) and ``POST /verify`` (JSON body). Both answer
errors as RFC 6749 §5.2 JSON with ``Cache-Control: no-store``, 503 when revocation state or
replay protection cannot be established, and never a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.types import Receive, Scope

from app.api import metrics
from app.api.hot_route import Endpoint, media_type, read_body
from app.cache.base import Once
from app.core.decision import VerifyRequest
from app.core.dpop import normalize_htu
from app.core.envelope import amount_from_request
from app.core.errors import InvalidClient, InvalidRequest
from app.core.params import parse_form
from app.core.resources import url_within_resource
from app.core.strict_json import JSONError, parse_json
from app.verifier import decisions
from app.verifier.callers import Authenticated
from app.verifier.state import VerifierState

_NO_STORE = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"no-store"),
    (b"pragma", b"no-cache"),
]
_CREDENTIALS = ("client_id", "client_secret", "client_assertion_type", "client_assertion")
_METHOD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
Handler = Callable[[VerifierState, Mapping[bytes, bytes], bytes], Any]


_media_type = media_type


def _authorization(headers: Mapping[bytes, bytes]) -> str | None:
    value = headers.get(b"authorization")
    return value.decode("latin-1") if value is not None else None


async def introspect(verifier: VerifierState, headers: Mapping[bytes, bytes], raw: bytes) -> bytes:
    if _media_type(headers) != b"application/x-www-form-urlencoded":
        raise InvalidRequest("The body must be application/x-www-form-urlencoded.")
    form = parse_form(raw)
    now = verifier.now()  # the one reading of the clock this request's decision uses
    authenticated = await _authenticate(verifier, headers, form, now)
    token = form.require("token")
    caller = authenticated.caller
    return await decisions.introspect(
        verifier, caller.resource, token, now=now, bearer_accepted=not caller.dpop_required
    )


async def _authenticate(
    verifier: VerifierState,
    headers: Mapping[bytes, bytes],
    credentials: Mapping[str, Any],
    now: int,
) -> Authenticated:
    """The caller, with its client assertion (if any) used up before anything is decided:
    a replayed assertion can never probe a token's state."""
    authenticated = await verifier.callers.authenticate(
        _authorization(headers), credentials, now=now
    )
    if authenticated.assertion is not None:
        await _remember_assertion(verifier, authenticated.assertion, now)
    return authenticated


async def _remember_assertion(verifier: VerifierState, assertion: Once, now: int) -> None:
    fresh = await verifier.cache.remember(assertion, now)
    if not fresh:
        raise InvalidClient(detail="client assertion jti already used")


def _string(body: Mapping[str, Any], name: str, limit: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise InvalidRequest(f"{name} must be a non-empty string of at most {limit} characters.")
    return value


def _optional(body: Mapping[str, Any], name: str, limit: int) -> str | None:
    return None if body.get(name) is None else _string(body, name, limit)


def _verify_request(body: Mapping[str, Any], resource: str) -> VerifyRequest:
    token = _string(body, "token", 16384)
    dpop = _optional(body, "dpop", 16384)
    method = _string(body, "method", 16)
    url = _string(body, "url", 2048)
    if not set(method) <= _METHOD_CHARS:
        raise InvalidRequest("method must be an upper-case HTTP method such as POST.")
    try:
        normalize_htu(url)
    except ValueError:
        raise InvalidRequest("url must be the absolute http(s) URL of the request.") from None
    if not url_within_resource(url, resource):
        raise InvalidRequest("url must lie under the calling resource server's resource.")
    amount = None
    if body.get("amount") is not None:
        try:
            amount = amount_from_request(body["amount"])
        except ValueError as exc:
            raise InvalidRequest(f"amount: {exc}.") from None
    return VerifyRequest(
        token=token,
        dpop=dpop,
        method=method,
        url=url,
        kind=_optional(body, "type", 256),
        action=_optional(body, "action", 256),
        identifier=_optional(body, "identifier", 256),
        amount=amount,
    )


async def verify(verifier: VerifierState, headers: Mapping[bytes, bytes], raw: bytes) -> bytes:
    if _media_type(headers) != b"application/json":
        raise InvalidRequest("The body must be application/json.")
    try:
        body = parse_json(raw)
    except JSONError:
        raise InvalidRequest("The body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.")
    credentials = {name: body[name] for name in _CREDENTIALS if name in body}
    if not all(isinstance(value, str) for value in credentials.values()):
        raise InvalidRequest("Client credentials must be strings.")
    now = verifier.now()  # the one reading of the clock this request's decision uses
    authenticated = await _authenticate(verifier, headers, credentials, now)
    request = _verify_request(body, authenticated.caller.resource)
    decision = await decisions.verify(verifier, authenticated, request, now)
    metrics.VERIFY_DECISIONS.labels(decision.get("reason", "allowed")).inc()
    return orjson.dumps(decision)


def endpoint(handler: Handler, verifier: Callable[[], VerifierState]) -> Endpoint:
    """``handler`` as a hot route's endpoint: the verifier's state, the headers, the body."""

    async def answer(scope: Scope, receive: Receive, headers: Mapping[bytes, bytes]) -> bytes:
        raw = await read_body(receive, headers)
        body: bytes = await handler(verifier(), headers, raw)
        return body

    return answer
