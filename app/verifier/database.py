"""The verifier's read-only view of the registry's database (cold misses only).

The queries live in :mod:`app.store.readonly`, which derives the read-only role's grants
from them: this process can read exactly what they name, never sealed private keys or other
secrets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.store import readonly
from app.store.db import create_engine
from app.store.models import ResourceServer
from app.store.revocation_log import (
    CATCH_UP_ROWS,
    event,
    head_query,
    rows_from_query,
    wal_position,
)


class StoreUnavailable(RuntimeError):
    """The database could not answer; callers fail closed."""


class StoreBehind(StoreUnavailable):
    """The database is a streaming replica that has not yet replayed what the primary had
    at the last heartbeat: its rows may miss revocations or spends (fail closed, retry)."""


@dataclass(frozen=True, slots=True)
class CallerRecord:
    client_id: str
    resource: str
    auth_method: str
    secret_hash: str | None
    jwks: dict[str, Any] | None
    dpop_required: bool


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
        rows = await self._rows(readonly.signing_keys_query())
        return [(dict(jwk), int(at)) for jwk, at in rows]

    async def live_revocations(self, now: int) -> list[dict[str, Any]]:
        return [event(*row) for row in await self._rows(readonly.live_revocations_query(now))]

    async def standby_position(self) -> int | None:
        """``None`` on a primary (and on SQLite); on a streaming replica, the WAL position it
        has replayed (see :func:`app.store.revocation_log.wal_position`)."""
        if self.engine.dialect.name != "postgresql":
            return None
        ((standby, replayed),) = await self._rows(readonly.standby_query())
        if not standby:
            return None
        return wal_position(replayed) if replayed else 0

    async def require_position(self, position: int | None) -> None:
        """Raise :class:`StoreBehind` unless this database holds everything the primary had
        at ``position`` (a primary always does; a replica once it replayed that far, and
        never when the position is unknown)."""
        replayed = await self.standby_position()
        if replayed is not None and (position is None or replayed < position):
            raise StoreBehind("the replica has not replayed the primary's last heartbeat yet")

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
        rows = await self._rows(readonly.caller_query(client_id))
        return CallerRecord(*rows[0]) if rows else None

    async def callers(self, limit: int) -> list[CallerRecord]:
        """Up to ``limit`` registered callers, to know them before they call."""
        query = readonly.callers_query().order_by(ResourceServer.id).limit(limit)
        rows = await self._rows(query)
        return [CallerRecord(*row) for row in rows]

    async def spent(self, grant_id: str, bucket: str, currency: str) -> int:
        rows = await self._rows(readonly.spent_query(grant_id, bucket, currency))
        return int(rows[0][0])

    async def recorded_spends(self, marks: Sequence[str]) -> set[str]:
        """The marks the ledger holds already; none when the database does not answer (every
        spend is then restored: a budget stricter, never looser)."""
        try:
            rows = await self._rows(readonly.recorded_spends_query(list(marks)))
        except StoreUnavailable:
            return set()
        return {str(row[0]) for row in rows}

    async def close(self) -> None:
        await self.engine.dispose()
