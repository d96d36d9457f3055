"""The verifier application factory: raw ASGI hot routes in front of a small Starlette app
for the JWK set and operations endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api import metrics as exported
from app.api.background import stop_tasks
from app.api.errors import http_error_handler, json_response, unexpected_error_handler
from app.api.hot_route import HotRoute
from app.api.logs import RequestIdMiddleware
from app.api.metrics import scrape
from app.cache.base import Cache
from app.cache.factory import create_cache
from app.cache.redis import RedisCache
from app.settings.verifier import VerifierSettings
from app.verifier import routes
from app.verifier.database import StoreUnavailable
from app.verifier.openapi import openapi_body
from app.verifier.state import VerifierState, build_verifier

log = logging.getLogger("agentauth.verifier")
STARTUP_WAIT = 5.0
KEY_RELOAD = 30.0  # seconds between reloads of the key set once loaded


async def _load_keys(verifier: VerifierState, stop: asyncio.Event) -> None:
    """Keys are needed before anything verifies: retry every second until the database
    answers with at least one (a registry that has not started yet has none). The registered
    callers are read then too, so a flood of unknown ids never delays them. Afterwards the
    set is reloaded every ``KEY_RELOAD`` seconds, besides the registry's announcements, so a
    new key is served even if an announcement was missed."""
    interval = 1.0
    while not stop.is_set():
        try:
            if verifier.keys.loaded:
                await verifier.keys.reload()
            else:
                await verifier.keys.load()
                if verifier.keys.loaded:
                    await verifier.callers.preload()
                    interval = KEY_RELOAD
                else:
                    log.warning("the registry has published no signing key yet; retrying")
        except StoreUnavailable as exc:
            log.warning("signing keys not loaded yet, retrying: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


async def _housekeeping(verifier: VerifierState, stop: asyncio.Event) -> None:
    """Time-driven upkeep without I/O: key statuses, expired cache entries."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=10)
        now = verifier.now()
        verifier.keys.tick()
        verifier.tokens.prune(now)
        verifier.revocations.revoked.prune(now)


class VerifierApp:
    """ASGI entry point: ``/introspect`` and ``/verify`` go straight to their handlers."""

    def __init__(self, inner: Starlette, hot: dict[str, ASGIApp]) -> None:
        self.inner = inner
        self._hot = hot

    @property
    def state(self) -> object:
        return self.inner.state

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the lifespan (start-up and shutdown) outside a server, e.g. in tests."""
        async with self.inner.router.lifespan_context(self.inner):
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self._hot.get(scope["path"])
            if route is not None:
                await route(scope, receive, send)
                return
        await self.inner(scope, receive, send)


def create_app(
    settings: VerifierSettings,
    *,
    clock: Callable[[], float] = time.time,
    cache: Cache | None = None,
) -> VerifierApp:
    """The verifier. ``cache`` shares one cache with other apps in the same process (the
    embedded ``agentauth dev`` stack); its owner closes it."""
    holder: dict[str, VerifierState] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        shared = cache or create_cache(
            settings.redis_url,
            namespace=settings.cache_namespace,
            spend_replicas=settings.spend_replicas,
            spend_wait_ms=settings.spend_replica_timeout_ms,
        )
        verifier = build_verifier(settings, shared, clock)
        if isinstance(shared, RedisCache):  # a lost cache restores only what the ledger lacks
            shared.spends_recorded = verifier.store.recorded_spends
        holder["verifier"] = verifier
        app.state.verifier = verifier
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(_load_keys(verifier, stop)),
            asyncio.create_task(verifier.revocations.run(stop)),
            asyncio.create_task(verifier.revocations.watch(stop)),
            asyncio.create_task(_housekeeping(verifier, stop)),
        ]
        # Start answering once ready, or after STARTUP_WAIT with 503s until then.
        deadline = time.monotonic() + STARTUP_WAIT
        while not verifier.ready and time.monotonic() < deadline:  # noqa: ASYNC110 - two flags
            await asyncio.sleep(0.02)
        # Objects that live as long as the process (modules, settings, caches' skeletons)
        # leave the collector's view, so full collections stay short on the hot path.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            stop.set()
            await stop_tasks(tasks)
            if cache is None:
                await shared.close()
            await verifier.store.close()

    def current() -> VerifierState:
        return holder["verifier"]

    async def jwks(_: Request) -> Response:
        body = current().keys.jwks_body
        return Response(
            body, media_type="application/json", headers={"Cache-Control": "public, max-age=60"}
        )

    async def healthz(_: Request) -> Response:
        return json_response({"status": "ok"})

    async def openapi(_: Request) -> Response:
        return Response(openapi_body(), media_type="application/json")

    async def readyz(_: Request) -> Response:
        verifier = current()
        checks = {
            "keys": verifier.keys.loaded,
            "revocations": verifier.revocations.fresh,
            "cache": await verifier.cache.ping(),
            "database": verifier.store.available is True,  # as of the last cold read
        }
        # The database serves cold misses only: warm tokens keep verifying without it.
        ready = checks["keys"] and checks["revocations"] and checks["cache"]
        return json_response({"ready": ready, "checks": checks}, 200 if ready else 503)

    async def metrics(request: Request) -> Response:
        verifier = current()
        exported.CACHED_TOKENS.set(len(verifier.tokens))
        exported.REVOKED_ENTRIES.set(len(verifier.revocations.revoked))
        token = settings.metrics_token
        return scrape(
            token.get_secret_value() if token else None, request.headers.get("authorization")
        )

    inner = Starlette(
        routes=[
            Route("/.well-known/jwks.json", jwks),
            Route("/healthz", healthz),
            Route("/openapi.json", openapi),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ],
        exception_handlers={
            StarletteHTTPException: http_error_handler,
            Exception: unexpected_error_handler,
        },
        lifespan=lifespan,
        middleware=[Middleware(RequestIdMiddleware)],
    )
    hot: dict[str, ASGIApp] = {
        path: HotRoute(path, routes.endpoint(handler, current), sets_request_id=True)
        for path, handler in (("/introspect", routes.introspect), ("/verify", routes.verify))
    }
    return VerifierApp(inner, hot)
