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
from dataclasses import dataclass

from starlette.requests import Request

from app.api.errors import RateLimited
from app.cache.base import SingleUse
from app.core.decision import RateCounter
from app.core.errors import InvalidClient, InvalidToken

WINDOW = 60
PER_ADDRESS = {"ui": 600, "register": 20, "authorize": 120}
FAILURES_PER_ADDRESS = {"token": 300, "revoke": 300, "register": 30, "bc-authorize": 120}
PER_CLIENT = {"token": 600, "revoke": 120, "bc-authorize": 60}


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The counters port: windows in the cache (``counters``), each limit above multiplied
    by ``scale`` (``AGENTAUTH_RATE_LIMIT_SCALE``)."""

    counters: SingleUse
    scale: float = 1.0

    def _scaled(self, limit: int) -> int:
        return max(1, int(limit * self.scale))

    async def _hit(self, key: str, limit: int) -> None:
        retry_after = await self.counters.hit(key, limit, WINDOW)  # unreachable: 503
        if retry_after:
            raise RateLimited(headers={"Retry-After": str(retry_after)})

    async def per_address(self, request: Request, endpoint: str) -> None:
        """Count every request to ``endpoint`` from the caller's address."""
        await self._hit(f"{endpoint}:ip:{_address(request)}", self._scaled(PER_ADDRESS[endpoint]))

    @asynccontextmanager
    async def counting_failures(self, request: Request, endpoint: str) -> AsyncIterator[None]:
        """Authenticate inside the block: a failed authentication counts against the
        caller's address, and past the limit it is answered 429 (with ``Retry-After``)."""
        try:
            yield
        except (InvalidClient, InvalidToken):
            limit = self._scaled(FAILURES_PER_ADDRESS[endpoint])
            await self._hit(f"{endpoint}:fail:ip:{_address(request)}", limit)
            raise

    def client_rate(self, client_id: str, endpoint: str) -> RateCounter:
        """One client's rate limit at ``endpoint``."""
        limit = self._scaled(PER_CLIENT[endpoint])
        return RateCounter(f"{endpoint}:client:{client_id}", limit, WINDOW)

    async def per_client(self, client_id: str, endpoint: str) -> None:
        rate = self.client_rate(client_id, endpoint)
        await self._hit(rate.key, rate.limit)
