"""The verifier's read-only view of the registry's database (cold misses only).

Every query names its columns: the read-only role is granted exactly those in
:data:`app.store.roles.READABLE_COLUMNS`, never sealed private keys or other secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.store.db import create_engine
from app.store.models import ResourceServer, Revocation, SigningKeyRow, SpendLedger
from app.store.revocation_log import CATCH_UP_ROWS, event, head_query, rows_from_query


class StoreUnavailable(RuntimeError):
    """The database could not answer; callers fail closed."""


@dataclass(frozen=True, slots=True)
class CallerRecord:
    client_id: str
    resource: str
    auth_method: str
    secret_hash: str | None
    jwks: dict[str, Any] | None
    dpop_required: bool


_CALLER_COLUMNS = select(
    ResourceServer.id,
    ResourceServer.resource,
    ResourceServer.auth_method,
    ResourceServer.secret_hash,
    ResourceServer.jwks,
    ResourceServer.dpop_required,
)


class ReadOnlyStore:
    def __init__(self, url: str) -> None:
        self.engine: AsyncEngine = create_engine(url, pool_size=2, read_only=True)
        # Whether the last query answered; readiness reports it without querying, because
        # the verifier reads the database on cold misses only.
        self.available: bool | None = None

    async def _rows(self, query: Any) -> list[Any]:
        try:
            async with self.engine.connect() as connection:
                rows = list((await connection.execute(query)).all())
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            self.available = False
            raise StoreUnavailable(f"database: {type(exc).__name__}") from exc
        self.available = True
        return rows

    async def signing_keys(self) -> list[tuple[dict[str, Any], int]]:
        rows = await self._rows(select(SigningKeyRow.public_jwk, SigningKeyRow.activates_at))
        return [(dict(jwk), int(at)) for jwk, at in rows]

    async def live_revocations(self, now: int) -> list[dict[str, Any]]:
        query = select(
            Revocation.seq, Revocation.kind, Revocation.subject, Revocation.expires_at
        ).where(or_(Revocation.expires_at.is_(None), Revocation.expires_at > now))
        return [event(*row) for row in await self._rows(query)]

    async def revocation_head(self) -> tuple[int, int | None]:
        """The log's highest ``seq`` and lowest unpublished one (as heartbeats carry)."""
        ((seq, pending),) = await self._rows(head_query())
        return int(seq or 0), pending

    async def revocations_from(self, start: int) -> list[dict[str, Any]]:
        """Every revocation from ``start`` on, expired or not, in order."""
        out: list[dict[str, Any]] = []
        while True:
            rows = [event(*row) for row in await self._rows(rows_from_query(start))]
            out += rows
            if len(rows) < CATCH_UP_ROWS:
                return out
            start = rows[-1]["seq"] + 1

    async def caller(self, client_id: str) -> CallerRecord | None:
        rows = await self._rows(_CALLER_COLUMNS.where(ResourceServer.id == client_id))
        return CallerRecord(*rows[0]) if rows else None

    async def callers(self, limit: int) -> list[CallerRecord]:
        """Up to ``limit`` registered callers, to know them before they call."""
        rows = await self._rows(_CALLER_COLUMNS.order_by(ResourceServer.id).limit(limit))
        return [CallerRecord(*row) for row in rows]

    async def spent(self, grant_id: str, bucket: str, currency: str) -> int:
        query = select(func.coalesce(func.sum(SpendLedger.amount_minor), 0)).where(
            SpendLedger.grant_id == grant_id,
            SpendLedger.bucket == bucket,
            SpendLedger.currency == currency,
        )
        rows = await self._rows(query)
        return int(rows[0][0])

    async def close(self) -> None:
        await self.engine.dispose()
