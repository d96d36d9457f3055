"""``POST /token`` on the hot route (``app.api.hot_route``): the token endpoint takes the raw
request and parses everything itself, so the framework's routing and dependency solving would
add nothing but time on the busiest registry path. This middleware, inside the request-id
middleware, hands every request for ``/token`` to it; everything else passes through.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.hot_route import HotRoute
from app.registry.routes.token import token
from app.registry.state import RegistryState

PATH = "/token"


async def _token(scope: Scope, receive: Receive, _: Mapping[bytes, bytes]) -> Response:
    request = Request(scope, receive)
    registry: RegistryState = request.app.state.registry
    return await token(request, registry)


class TokenFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.route = HotRoute(PATH, _token, sets_request_id=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH:
            await self.route(scope, receive, send)
            return
        await self.app(scope, receive, send)
