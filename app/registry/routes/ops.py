"""``/healthz``, ``/readyz``, ``/metrics`` and ``/openapi.json``."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.api import metrics as exported
from app.api.errors import json_response
from app.api.metrics import scrape
from app.core.keys import NoActiveKey
from app.registry.openapi import openapi_body
from app.registry.state import RegistryDep
from app.store.db import reachable

router = APIRouter()


@router.get("/healthz")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get("/openapi.json")
async def openapi() -> Response:
    return Response(openapi_body(), media_type="application/json")


@router.get("/readyz")
async def readyz(registry: RegistryDep) -> Response:
    checks = {"database": await reachable(registry.engine)}
    checks["cache"] = await registry.cache.ping()
    try:
        registry.keys.current(registry.now())
        checks["keys"] = True
    except NoActiveKey:
        checks["keys"] = False
    ready = all(checks.values())
    return json_response({"ready": ready, "checks": checks}, 200 if ready else 503)


# A key on a blue square, so a browser tab has an icon instead of a 404.
_FAVICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    b'<rect width="32" height="32" rx="6" fill="#1a5fb4"/>'
    b'<circle cx="12" cy="16" r="6" fill="none" stroke="#fff" stroke-width="3"/>'
    b'<path d="M17 16h11M24 16v5M28 16v4" stroke="#fff" stroke-width="3"/></svg>'
)


@router.get("/favicon.ico")
async def favicon() -> Response:
    return Response(
        _FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"}
    )


@router.get("/metrics")
async def metrics(request: Request, registry: RegistryDep) -> Response:
    now = registry.now()
    try:
        age = now - registry.keys.current(now).activates_at
        exported.SIGNING_KEY_AGE.set(age)
    except NoActiveKey:
        pass
    token = registry.settings.metrics_token
    return scrape(token.get_secret_value() if token else None, request.headers.get("authorization"))
