"""Per-client and per-address rate limits (fixed windows in the cache)."""

from __future__ import annotations

from starlette.requests import Request

from app.api.errors import RateLimited, unavailable
from app.cache.base import CacheUnavailable
from app.registry.state import Registry

WINDOW = 60
PER_ADDRESS = {"token": 1200, "revoke": 600, "register": 30, "bc-authorize": 120, "ui": 600}
PER_CLIENT = {"token": 600, "revoke": 120, "bc-authorize": 60}


async def _hit(registry: Registry, key: str, limit: int) -> None:
    try:
        retry_after = await registry.cache.hit(key, limit, WINDOW)
    except CacheUnavailable as exc:
        raise unavailable(str(exc), "redis") from exc
    if retry_after:
        raise RateLimited(headers={"Retry-After": str(retry_after)})


def _scaled(registry: Registry, limit: int) -> int:
    return max(1, int(limit * registry.settings.rate_limit_scale))


async def limit_address(registry: Registry, request: Request, endpoint: str) -> None:
    address = request.client.host if request.client else "unknown"
    await _hit(registry, f"{endpoint}:ip:{address}", _scaled(registry, PER_ADDRESS[endpoint]))


def client_rate(registry: Registry, client_id: str, endpoint: str) -> tuple[str, int, int]:
    """(key, limit, window) of one client's rate limit at ``endpoint``."""
    return f"{endpoint}:client:{client_id}", _scaled(registry, PER_CLIENT[endpoint]), WINDOW


async def limit_client(registry: Registry, client_id: str, endpoint: str) -> None:
    key, limit, _ = client_rate(registry, client_id, endpoint)
    await _hit(registry, key, limit)
