"""The raw-ASGI path of the hottest endpoints: the registry's ``/token`` and the verifier's
``/introspect`` and ``/verify``.

They skip the framework's routing, dependency solving and middleware stack, so everything
those would do is done here, once: ``POST`` only (405 otherwise), no parameters in the URL,
the one body reader (:func:`read_body`: declared and actual size limits, a client that hangs
up), errors rendered by the shared renderer (``app.api.errors.exception_response``: an
unreachable cache or database is a 503 there), the request id where the process has no
middleware setting it, and the request's metrics.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.api import metrics
from app.api.errors import exception_response
from app.api.logs import REQUEST_ID, request_id_for
from app.core.errors import InvalidRequest
from app.core.params import MAX_BODY_BYTES, ascii_int

MAX_BODY = MAX_BODY_BYTES
_NO_STORE = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"no-store"),
    (b"pragma", b"no-cache"),
]
# What a hot endpoint answers: a JSON body for 200 (sent with ``no-store``), or a response.
Endpoint = Callable[[Scope, Receive, Mapping[bytes, bytes]], Awaitable[bytes | Response]]


async def read_body(
    receive: Receive, headers: Mapping[bytes, bytes], limit: int = MAX_BODY
) -> bytes:
    """The request body, at most ``limit`` bytes (413), with a well-formed ``Content-Length``
    when there is one (400); a client that hangs up mid-body is a 400 answered to nobody."""
    declared = headers.get(b"content-length")
    length = None if declared is None else ascii_int(declared)
    if declared is not None and length is None:
        raise InvalidRequest("The Content-Length header is malformed.")
    if length is not None and length > limit:
        raise InvalidRequest("The request body is too large.", status_code=413)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequest("The client went away.", detail="client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise InvalidRequest("The request body is too large.", status_code=413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def media_type(headers: Mapping[bytes, bytes]) -> bytes:
    return headers.get(b"content-type", b"").split(b";")[0].strip().lower()


async def _send_json(send: Send, body: bytes, request_id: str | None) -> None:
    headers = [*_NO_STORE, (b"content-length", str(len(body)).encode())]
    if request_id is not None:
        headers.append((b"x-request-id", request_id.encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class HotRoute:
    """One hot endpoint at ``path``. ``sets_request_id``: the process has no request-id
    middleware around it (the verifier), so the route sets the id and its header itself."""

    def __init__(self, path: str, endpoint: Endpoint, *, sets_request_id: bool) -> None:
        self.path = path
        self._endpoint = endpoint
        self._sets_request_id = sets_request_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 200
        headers = dict(scope["headers"])
        request_id = request_id_for(headers) if self._sets_request_id else None
        context = REQUEST_ID.set(request_id) if request_id is not None else None
        try:
            if scope["method"] != "POST":
                raise InvalidRequest("Use POST.", status_code=405, headers={"Allow": "POST"})
            if scope.get("query_string"):
                raise InvalidRequest("Parameters must be sent in the request body, not the URL.")
            answer = await self._endpoint(scope, receive, headers)
            if isinstance(answer, bytes):
                await _send_json(send, answer, request_id)
            else:
                status = answer.status_code
                await answer(scope, receive, send)
        except Exception as exc:  # errors take the slower, shared rendering path
            response = exception_response(exc)
            if request_id is not None:
                response.headers["x-request-id"] = request_id
            status = response.status_code
            await response(scope, receive, send)
        finally:
            if context is not None:
                REQUEST_ID.reset(context)
            metrics.record_request(self.path, status, time.perf_counter() - started)
