"""The verifier's read-only queries, in one place: the read-only role is granted exactly the
columns they name (:func:`readable_columns`, used by ``app.store.roles``), so the grants and
the queries can never drift apart. Sealed private keys, refresh tokens, passkeys, sessions
and the audit log appear in none of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Column, Select, String, Table, func, or_, select
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.visitors import iterate

from app.store.models import ResourceServer, Revocation, SigningKeyRow, SpendLedger
from app.store.revocation_log import head_query, rows_from_query


def standby_query() -> Select[Any]:
    """(whether the database is a standby, what it has replayed) on PostgreSQL; a primary
    answers (false, null)."""
    return select(func.pg_is_in_recovery(), func.pg_last_wal_replay_lsn().cast(String))


def signing_keys_query() -> Select[Any]:
    return select(SigningKeyRow.public_jwk, SigningKeyRow.activates_at)


def live_revocations_query(now: int) -> Select[int, str, str, int | None]:
    return select(Revocation.seq, Revocation.kind, Revocation.subject, Revocation.expires_at).where(
        or_(Revocation.expires_at.is_(None), Revocation.expires_at > now)
    )


def callers_query() -> Select[Any]:
    """Every column of a caller record, in :class:`~app.verifier.database.CallerRecord`'s
    order; the caller narrows it with ``where`` / ``limit``."""
    return select(
        ResourceServer.id,
        ResourceServer.resource,
        ResourceServer.auth_method,
        ResourceServer.secret_hash,
        ResourceServer.jwks,
        ResourceServer.dpop_required,
    )


def caller_query(client_id: str) -> Select[Any]:
    return callers_query().where(ResourceServer.id == client_id)


def spent_query(grant_id: str, bucket: str, currency: str) -> Select[Any]:
    return select(func.coalesce(func.sum(SpendLedger.amount_minor), 0)).where(
        SpendLedger.grant_id == grant_id,
        SpendLedger.bucket == bucket,
        SpendLedger.currency == currency,
    )


def recorded_spends_query(marks: list[str]) -> Select[Any]:
    """Which of these admissions' marks the ledger holds (a restored spend it has already)."""
    return select(SpendLedger.entry_id).where(SpendLedger.entry_id.in_(marks))


def _every_query() -> Iterator[ClauseElement]:
    """Each read-only query once, with placeholder arguments (only its shape matters)."""
    yield signing_keys_query()
    yield live_revocations_query(0)
    yield head_query()
    yield rows_from_query(0)
    yield caller_query("")
    yield callers_query().order_by(ResourceServer.id).limit(1)
    yield spent_query("", "", "")
    yield recorded_spends_query([""])


def readable_columns() -> dict[str, tuple[str, ...]]:
    """table → the columns the read-only queries select or filter on, sorted."""
    found: dict[str, set[str]] = {}
    for query in _every_query():
        for element in iterate(query):
            if isinstance(element, Column) and isinstance(element.table, Table):
                found.setdefault(element.table.name, set()).add(element.name)
    return {table: tuple(sorted(columns)) for table, columns in sorted(found.items())}
