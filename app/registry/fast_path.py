"""``POST /token`` without the framework's per-request machinery.

The token endpoint takes the raw request and parses everything itself, so FastAPI's routing
and dependency solving add nothing but time on the busiest registry path. This middleware,
the outermost of the app's own, hands ``POST /token`` straight to the same endpoint function
and renders its errors the way the app's handlers do; everything else passes through.
"""

from __future__ import annotations

import logging
import secrets
import time

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import error_response, json_response
from app.api.metrics import METRICS
from app.core.errors import OAuthError
from app.registry.routes.token import token
from app.registry.state import Registry

log = logging.getLogger("agentauth.errors")
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
        except OAuthError as error:
            response = error_response(error)
        except Exception:  # the one place an unexpected failure becomes a plain 500
            correlation = secrets.token_hex(8)
            log.exception("unhandled error %s", correlation)
            body = {"error": "server_error", "error_description": f"Internal error {correlation}."}
            response = json_response(body, 500)
        await response(scope, receive, send)
        METRICS.inc(
            "agentauth_http_requests_total",
            "HTTP requests by route and status.",
            route=PATH,
            status=str(response.status_code),
        )
        METRICS.observe(time.perf_counter() - started, route=PATH)
