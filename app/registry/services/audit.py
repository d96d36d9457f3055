"""The hash-chained audit log.

Each event's hash is ``SHA-256(JCS({seq, prev_hash, created_at, event, actor, subject,
data}))``. Appending first increments the single ``audit_head`` row, which takes its write lock
(a row lock on PostgreSQL, the database write lock on SQLite) until the surrounding
transaction commits, so concurrent appends are serialised and the chain never forks. Append
last in a transaction to hold that lock briefly.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.jcs import canonicalize
from app.store import audit_log
from app.store.models import AuditEvent
from app.store.sql import Db, SessionDb, json_text

GENESIS = "0" * 64
log = logging.getLogger("agentauth.audit")


def event_hash(
    *,
    seq: int,
    prev_hash: str,
    created_at: int,
    event: str,
    actor: str,
    subject: str | None,
    data: dict[str, Any],
) -> str:
    document = {
        "seq": seq,
        "prev_hash": prev_hash,
        "created_at": created_at,
        "event": event,
        "actor": actor,
        "subject": subject,
        "data": data,
    }
    return hashlib.sha256(canonicalize(document)).hexdigest()


_NEXT = "UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash"
_SET_HEAD = "UPDATE audit_head SET hash = :hash, prev_hash = :prev_hash WHERE id = 1"
_INSERT = (
    "INSERT INTO audit_events (seq, created_at, event, actor, subject, data, prev_hash, hash)"
    " VALUES (:seq, :created_at, :event, :actor, :subject, :data, :prev_hash, :hash)"
)
# PostgreSQL links the event itself: it moves the head, hashes the event's canonical document
# (``:before`` + previous hash + sequence number + ``:after``, see ``_document_around_link``)
# and inserts the row in one statement, so the head's row lock is held for one round trip.
_APPEND = (
    "WITH head AS (UPDATE audit_head SET seq = seq + 1, prev_hash = hash,"
    " hash = encode(sha256(convert_to("
    """:before || hash || '","seq":' || CAST(seq + 1 AS TEXT) || :after, 'UTF8')), 'hex')"""
    " WHERE id = 1 RETURNING seq, prev_hash, hash)"
    " INSERT INTO audit_events (seq, created_at, event, actor, subject, data, prev_hash, hash)"
    " VALUES ((SELECT seq FROM head), :created_at, :event, :actor, :subject, :data,"
    " (SELECT prev_hash FROM head), (SELECT hash FROM head))"
    " RETURNING seq, prev_hash, hash"
)


def _document_around_link(
    *, created_at: int, event: str, actor: str, subject: str | None, data: dict[str, Any]
) -> tuple[str, str]:
    """The JCS document that :func:`event_hash` hashes, cut around its link: the text before
    the previous hash's value and the text after the sequence number. Members sort as actor,
    created_at, data, event, prev_hash, seq, subject, so the link sits between the halves."""
    known = canonicalize({"actor": actor, "created_at": created_at, "data": data, "event": event})
    before = known.decode()[:-1] + ',"prev_hash":"'
    after = ',"subject":' + canonicalize(subject).decode() + "}"
    return before, after


async def append(
    target: Db | AsyncSession,
    event: str,
    *,
    actor: str,
    now: int,
    subject: str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event inside the caller's transaction (an ORM session or a driver-level
    :class:`Db`); on PostgreSQL it is a single statement that carries the ``Db``'s deferred
    writes."""
    db = SessionDb(target) if isinstance(target, AsyncSession) else target
    content: dict[str, Any] = {
        "created_at": now,
        "event": event,
        "actor": actor,
        "subject": subject,
        "data": data or {},
    }
    stored = {**content, "data": json_text(content["data"])}
    if db.postgres:
        before, after = _document_around_link(**content)
        row = await db.fetchrow(_APPEND, {**stored, "before": before, "after": after})
        if row is not None:
            # The same document hashed here: a database that encoded it differently would
            # break the chain. The row is written either way (maybe committed already), and
            # ``audit verify`` names it, so this is logged, not raised.
            document = f'{before}{row["prev_hash"]}","seq":{row["seq"]}{after}'
            if row["hash"] != hashlib.sha256(document.encode()).hexdigest():  # pragma: no cover
                log.critical("audit event %s was hashed differently by the database", row["seq"])
    else:
        row = await db.fetchrow(_NEXT)
        if row is not None:
            link = {"seq": row["seq"], "prev_hash": row["hash"]}
            row = {**link, "hash": event_hash(**link, **content)}
            await db.execute(_SET_HEAD, row)
            await db.execute(_INSERT, {**row, **stored})
    if row is None:  # pragma: no cover - the migration creates the head row
        raise RuntimeError("the audit_head row is missing")
    link = {"seq": int(row["seq"]), "prev_hash": str(row["prev_hash"])}
    return AuditEvent(**link, hash=row["hash"], **content)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    events: int
    first_broken_seq: int | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "first_broken_seq": self.first_broken_seq,
            "reason": self.reason,
        }


async def _rows(session: AsyncSession, batch: int = 1000) -> AsyncIterator[AuditEvent]:
    after = 0
    while True:
        rows = await audit_log.events_after(session, after, batch)
        if not rows:
            return
        for row in rows:
            yield row
        after = rows[-1].seq


async def verify_chain(
    session: AsyncSession, progress: Callable[[int], None] | None = None, every: int = 10_000
) -> ChainReport:
    """Recompute every hash and link; name the first row that does not fit. ``progress`` is
    called with the number of events checked so far, every ``every`` events."""
    prev_hash, expected_seq, count = GENESIS, 1, 0
    async for row in _rows(session):
        count += 1
        if progress is not None and count % every == 0:
            progress(count)
        if row.seq != expected_seq:
            return ChainReport(False, count, expected_seq, "missing event")
        if row.prev_hash != prev_hash:
            return ChainReport(False, count, row.seq, "prev_hash does not match the previous event")
        recomputed = event_hash(
            seq=row.seq,
            prev_hash=row.prev_hash,
            created_at=row.created_at,
            event=row.event,
            actor=row.actor,
            subject=row.subject,
            data=row.data,
        )
        if recomputed != row.hash:
            return ChainReport(False, count, row.seq, "hash does not match the event's content")
        prev_hash, expected_seq = row.hash, row.seq + 1
    head_seq, head_hash = await audit_log.head(session)
    if head_seq != expected_seq - 1 or head_hash != prev_hash:
        return ChainReport(False, count, expected_seq, "head does not match the last event")
    return ChainReport(True, count)
