"""``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response

from app.api.errors import json_response
from app.api.metrics import METRICS, scrape
from app.core.keys import NoActiveKey
from app.registry.state import RegistryDep

router = APIRouter()


@router.get("/healthz")
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get("/readyz")
async def readyz(registry: RegistryDep) -> Response:
    checks: dict[str, bool] = {}
    try:
        async with registry.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        checks["database"] = True
    except (SQLAlchemyError, OSError):
        checks["database"] = False
    checks["cache"] = await registry.cache.ping()
    try:
        registry.keys.current(registry.now())
        checks["keys"] = True
    except NoActiveKey:
        checks["keys"] = False
    ready = all(checks.values())
    return json_response({"ready": ready, "checks": checks}, 200 if ready else 503)


@router.get("/metrics")
async def metrics(request: Request, registry: RegistryDep) -> Response:
    now = registry.now()
    try:
        age = now - registry.keys.current(now).activates_at
        METRICS.gauge(
            "agentauth_signing_key_age_seconds", "Age of the key that signs tokens now.", age
        )
    except NoActiveKey:
        pass
    token = registry.settings.metrics_token
    return scrape(token.get_secret_value() if token else None, request.headers.get("authorization"))
