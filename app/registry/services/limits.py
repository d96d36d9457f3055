"""Rate limits (fixed windows in the cache), counted so that nobody's junk locks out a caller
with valid credentials.

Endpoints that authenticate their caller count what authenticated per client
(``PER_CLIENT``) and what failed to per address (``FAILURES_PER_ADDRESS``): a flood of bad
credentials from one address turns into 429s for that flood, while a valid caller behind the
same address keeps being served. The passkey ceremonies, which have no credential before
they succeed, count every request per address (``PER_ADDRESS``). The address is the TCP
peer, or what a configured proxy (``AGENTAUTH_TRUSTED_PROXIES``) says it forwarded for.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.requests import Request

from app.api.errors import RateLimited
from app.core.decision import RateCounter
from app.core.errors import InvalidClient, InvalidToken
from app.registry.state import RegistryState

WINDOW = 60
PER_ADDRESS = {"ui": 600, "register": 20, "authorize": 120}
FAILURES_PER_ADDRESS = {"token": 300, "revoke": 300, "register": 30, "bc-authorize": 120}
PER_CLIENT = {"token": 600, "revoke": 120, "bc-authorize": 60}


async def _hit(registry: RegistryState, key: str, limit: int) -> None:
    retry_after = await registry.cache.hit(key, limit, WINDOW)  # unreachable: 503 (api/errors)
    if retry_after:
        raise RateLimited(headers={"Retry-After": str(retry_after)})


def _scaled(registry: RegistryState, limit: int) -> int:
    return max(1, int(limit * registry.settings.rate_limit_scale))


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def limit_address(registry: RegistryState, request: Request, endpoint: str) -> None:
    limit = _scaled(registry, PER_ADDRESS[endpoint])
    await _hit(registry, f"{endpoint}:ip:{_address(request)}", limit)


@asynccontextmanager
async def counting_failures(
    registry: RegistryState, request: Request, endpoint: str
) -> AsyncIterator[None]:
    """Authenticate inside the block: a failed authentication counts against the caller's
    address, and past the limit it is answered 429 (with ``Retry-After``) instead."""
    try:
        yield
    except (InvalidClient, InvalidToken):
        limit = _scaled(registry, FAILURES_PER_ADDRESS[endpoint])
        await _hit(registry, f"{endpoint}:fail:ip:{_address(request)}", limit)
        raise


def client_rate(registry: RegistryState, client_id: str, endpoint: str) -> RateCounter:
    """One client's rate limit at ``endpoint``."""
    limit = _scaled(registry, PER_CLIENT[endpoint])
    return RateCounter(f"{endpoint}:client:{client_id}", limit, WINDOW)


async def limit_client(registry: RegistryState, client_id: str, endpoint: str) -> None:
    rate = client_rate(registry, client_id, endpoint)
    await _hit(registry, rate.key, rate.limit)
