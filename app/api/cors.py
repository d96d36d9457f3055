"""Cross-origin access to the endpoints that browser-based OAuth clients call (an MCP client
running in a web page, say): the registry's discovery documents, JWK set, ``/register``,
``/token`` and ``/revoke``.

Any origin may call them, without credentials: they authenticate by what the request carries
(a client assertion, a secret, PKCE, a DPoP proof), never by a cookie, so
``Access-Control-Allow-Credentials`` is never sent and the browser sends no cookie. The
approval pages and their JSON API, which do use the session cookie, get no CORS headers at
all: another origin can neither read them nor preflight a call to them.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ALLOW_HEADERS = b"authorization, content-type, dpop"
EXPOSE_HEADERS = b"dpop-nonce, www-authenticate, retry-after"
MAX_AGE = b"600"


class PublicCORS:
    """CORS for ``paths`` (exact) and ``prefixes`` only."""

    def __init__(self, app: ASGIApp, *, paths: Iterable[str], prefixes: Iterable[str] = ()) -> None:
        self.app = app
        self.paths = frozenset(paths)
        self.prefixes = tuple(prefixes)

    def _covers(self, path: str) -> bool:
        return path in self.paths or path.startswith(self.prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._covers(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if b"origin" not in headers:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [
                        (b"access-control-allow-origin", b"*"),
                        (b"access-control-allow-methods", b"GET, POST"),
                        (b"access-control-allow-headers", ALLOW_HEADERS),
                        (b"access-control-max-age", MAX_AGE),
                        (b"vary", b"origin"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"access-control-allow-origin", b"*"),
                    (b"access-control-expose-headers", EXPOSE_HEADERS),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)
