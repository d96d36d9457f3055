"""``POST /token`` without the framework's per-request machinery.

The token endpoint takes the raw request and parses everything itself, so FastAPI's routing
and dependency solving add nothing but time on the busiest registry path. This middleware,
the outermost of the app's own, hands ``POST /token`` straight to the same endpoint function
and renders its errors the way the app's handlers do; everything else passes through.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api import metrics
from app.api.errors import exception_response
from app.registry.routes.token import token
from app.registry.state import Registry

PATH = "/token"


class TokenFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request = Request(scope, receive)
        registry: Registry = request.app.state.registry
        try:
            response = await token(request, registry)
        except Exception as exc:  # rendered exactly as the app's exception handlers do
            response = exception_response(exc)
        await response(scope, receive, send)
        metrics.record_request(PATH, response.status_code, time.perf_counter() - started)
