"""The hot endpoints as raw ASGI handlers: no framework routing, dependency graph or
pydantic on the path; bodies parsed strictly, answers written with orjson.

``POST /introspect`` (RFC 7662, form body) and ``POST /verify`` (JSON body). Both answer
errors as RFC 6749 §5.2 JSON with ``Cache-Control: no-store``, 503 when revocation state or
replay protection cannot be established, and never a stack trace.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.types import Receive, Scope, Send

from app.api import metrics
from app.api.bodies import MAX_BODY
from app.api.errors import exception_response
from app.api.logs import REQUEST_ID, request_id_for
from app.cache.base import Once
from app.core.decision import VerifyRequest
from app.core.dpop import normalize_htu
from app.core.envelope import amount_from_request
from app.core.errors import InvalidClient, InvalidRequest
from app.core.params import ascii_int, parse_form
from app.core.resources import url_within_resource
from app.core.strict_json import JSONError, parse_json
from app.verifier import decisions
from app.verifier.callers import Authenticated
from app.verifier.state import Verifier

_NO_STORE = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"no-store"),
    (b"pragma", b"no-cache"),
]
_CREDENTIALS = ("client_id", "client_secret", "client_assertion_type", "client_assertion")
_METHOD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
Handler = Callable[[Verifier, Mapping[bytes, bytes], bytes], Any]


async def _send(send: Send, status: int, body: bytes, request_id: str) -> None:
    headers = [
        *_NO_STORE,
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read(receive: Receive, headers: Mapping[bytes, bytes]) -> bytes:
    declared = headers.get(b"content-length")
    length = None if declared is None else ascii_int(declared)
    if declared is not None and (length is None or length > MAX_BODY):
        status = 400 if length is None else 413
        raise InvalidRequest("The request body is too large or malformed.", status_code=status)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequest("The client went away.")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise InvalidRequest("The request body is too large.", status_code=413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _media_type(headers: Mapping[bytes, bytes]) -> bytes:
    return headers.get(b"content-type", b"").split(b";")[0].strip().lower()


def _authorization(headers: Mapping[bytes, bytes]) -> str | None:
    value = headers.get(b"authorization")
    return value.decode("latin-1") if value is not None else None


async def introspect(verifier: Verifier, headers: Mapping[bytes, bytes], raw: bytes) -> bytes:
    if _media_type(headers) != b"application/x-www-form-urlencoded":
        raise InvalidRequest("The body must be application/x-www-form-urlencoded.")
    form = parse_form(raw)
    authenticated = await _authenticate(verifier, headers, form)
    token = form.require("token")
    caller = authenticated.caller
    return await decisions.introspect(
        verifier, caller.resource, token, bearer_accepted=not caller.dpop_required
    )


async def _authenticate(
    verifier: Verifier, headers: Mapping[bytes, bytes], credentials: Mapping[str, Any]
) -> Authenticated:
    """The caller, with its client assertion (if any) used up before anything is decided:
    a replayed assertion can never probe a token's state."""
    authenticated = await verifier.callers.authenticate(_authorization(headers), credentials)
    if authenticated.assertion is not None:
        await _remember_assertion(verifier, authenticated.assertion)
    return authenticated


async def _remember_assertion(verifier: Verifier, assertion: Once) -> None:
    fresh = await verifier.cache.remember(assertion, verifier.now())
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


async def verify(verifier: Verifier, headers: Mapping[bytes, bytes], raw: bytes) -> bytes:
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
    authenticated = await _authenticate(verifier, headers, credentials)
    request = _verify_request(body, authenticated.caller.resource)
    decision = await decisions.verify(verifier, authenticated, request)
    metrics.VERIFY_DECISIONS.labels(decision.get("reason", "allowed")).inc()
    return orjson.dumps(decision)


class HotRoute:
    """One POST endpoint as a raw ASGI application."""

    def __init__(self, path: str, handler: Handler, verifier: Callable[[], Verifier]) -> None:
        self.path = path
        self._handler = handler
        self._verifier = verifier

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 200
        headers = dict(scope["headers"])
        request_id = request_id_for(headers)  # what RequestIdMiddleware does elsewhere
        context = REQUEST_ID.set(request_id)
        try:
            if scope["method"] != "POST":
                raise InvalidRequest("Use POST.", status_code=405, headers={"Allow": "POST"})
            if scope.get("query_string"):
                raise InvalidRequest("Parameters must be sent in the request body, not the URL.")
            raw = await _read(receive, headers)
            body = await self._handler(self._verifier(), headers, raw)
            await _send(send, 200, body, request_id)
        except Exception as exc:  # errors take the slower, shared rendering path
            response = exception_response(exc)
            response.headers["x-request-id"] = request_id
            status = response.status_code
            await response(scope, receive, send)
        finally:
            REQUEST_ID.reset(context)
            metrics.record_request(self.path, status, time.perf_counter() - started)
