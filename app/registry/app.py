"""The registry application factory."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from app.api.background import stop_tasks
from app.api.cors import PublicCORS
from app.api.errors import (
    error_response,
    http_error_handler,
    oauth_error_handler,
    unexpected_error_handler,
)
from app.api.logs import RequestIdMiddleware
from app.api.metrics import MetricsMiddleware
from app.api.security_headers import SecurityHeadersMiddleware
from app.cache.base import Cache, CacheUnavailable
from app.cache.factory import create_cache
from app.core.dpop import NonceSource
from app.core.errors import InvalidRequest, OAuthError
from app.registry.fast_path import TokenFastPath
from app.registry.ports import Database
from app.registry.routes import (
    admin,
    authorize,
    ciba,
    discovery,
    ops,
    register,
    revoke,
    ui_api,
    ui_pages,
)
from app.registry.services.issuance import TokenSigner
from app.registry.services.keys import KeyManager
from app.registry.services.limits import RateLimits
from app.registry.services.revocation import run_heartbeats
from app.registry.state import RegistryState
from app.settings.registry import RegistrySettings, decode_key_encryption_key
from app.store.db import create_engine, session_factory
from app.store.sql import DATABASE_ERRORS

log = logging.getLogger("agentauth.registry")


DEV_KEK_FILE = Path(".agentauth-kek")


def _kek(settings: RegistrySettings) -> bytes:
    """The key-encryption key; in development without one, a local file (mode 0600) keeps
    the signing keys readable across restarts. Production refuses to start without it."""
    if settings.key_encryption_key is not None:
        return decode_key_encryption_key(settings.key_encryption_key.get_secret_value())
    if not DEV_KEK_FILE.exists():
        fd = os.open(DEV_KEK_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_bytes(32))
    log.warning(
        "AGENTAUTH_KEY_ENCRYPTION_KEY is not set: using the development key in %s",
        DEV_KEK_FILE.resolve(),
    )
    return DEV_KEK_FILE.read_bytes()


def _nonces(settings: RegistrySettings) -> NonceSource | None:
    if settings.dpop_nonce_secret is None:
        return None
    return NonceSource(settings.dpop_nonce_secret.get_secret_value().encode(), realm="registry")


async def _reload_keys(registry: RegistryState, stop: asyncio.Event) -> None:
    """Pick up keys rotated by another worker or replica (the pre-publication period must be
    longer than this interval, which the default of one hour is)."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=registry.settings.key_reload_seconds)
        if stop.is_set():
            return
        try:
            await registry.keys.load(registry.sessions, registry.now())
        except (SQLAlchemyError, OSError):
            log.warning("could not reload signing keys; keeping the current set", exc_info=True)


async def validation_error_handler(_: Request, exc: Exception) -> Response:
    """Never FastAPI's 422: malformed parameters are a plain 400 ``invalid_request``."""
    return error_response(InvalidRequest("The request parameters are invalid.", detail=str(exc)))


CORS_PATHS = ("/token", "/register", "/revoke")  # what browser-based OAuth clients call


def create_app(
    settings: RegistrySettings,
    *,
    clock: Callable[[], float] = time.time,
    cache: Cache | None = None,
) -> FastAPI:
    """The registry. ``cache`` shares one cache with other apps in the same process (the
    embedded ``agentauth dev`` stack); its owner closes it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url, pool_size=settings.database_pool_size)
        sessions = session_factory(engine)
        keys = KeyManager(
            _kek(settings),
            alg=settings.signing_alg,
            max_token_ttl=settings.access_token_ttl + settings.clock_skew,
        )
        shared = cache or create_cache(settings.redis_url, namespace=settings.cache_namespace)
        registry = RegistryState(
            settings=settings,
            database=Database(engine, sessions),
            cache=shared,
            keys=keys,
            signer=TokenSigner(
                keys,
                issuer=settings.issuer,
                ttl=settings.access_token_ttl,
                leeway=settings.clock_skew,
            ),
            limits=RateLimits(shared, settings.rate_limit_scale),
            nonces=_nonces(settings),
            clock=clock,
        )
        created = await keys.load(sessions, registry.now())
        try:  # items issued from now on are single-use in this cache (docs: "Data epoch")
            await registry.cache.ensure_epoch(registry.now())
            if created is not None:  # verifiers that started first serve it at once
                await registry.cache.publish_key_change(created)
        except CacheUnavailable:
            log.warning("the cache is unreachable; its data epoch is set on first use")
        app.state.registry = registry
        # Background loops end when ``stop`` is set: redis-py absorbs a cancellation that
        # arrives during a command, so cancelling them alone could leave them running.
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(_reload_keys(registry, stop)),
            asyncio.create_task(
                run_heartbeats(
                    registry.cache, sessions, settings.revocation_heartbeat_interval, stop
                )
            ),
        ]
        # As in the verifier: objects that live as long as the process leave the collector's
        # view, so full collections stay short on the /token path.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            stop.set()
            await stop_tasks(tasks)
            if cache is None:
                await registry.cache.close()
            await engine.dispose()

    app = FastAPI(
        title="AgentAuth registry",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(SecurityHeadersMiddleware, prefix="/ui")
    app.add_middleware(TokenFastPath)
    # Outside the /token hot route, which answers POST only: preflights are answered here.
    app.add_middleware(PublicCORS, paths=CORS_PATHS, prefixes=("/.well-known/",))
    app.add_middleware(RequestIdMiddleware)  # added last: the outermost of the app's own
    app.add_exception_handler(OAuthError, oauth_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    for kind in (*DATABASE_ERRORS, CacheUnavailable):  # 503 when unreachable, before the catch-all
        app.add_exception_handler(kind, unexpected_error_handler)
    app.add_exception_handler(Exception, unexpected_error_handler)
    routers = (discovery, register, authorize, ciba, revoke, admin, ui_api, ui_pages, ops)
    for module in routers:
        app.include_router(module.router)
    app.mount("/ui/static", StaticFiles(directory=ui_pages.UI / "static"), name="ui-static")
    return app
