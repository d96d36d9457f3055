"""Engine and session factory for PostgreSQL (asyncpg) and SQLite (aiosqlite)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import object_mapper

from app.store.models import AuditHead
from app.store.readonly import signing_keys_query


def create_engine(url: str, *, pool_size: int = 20, read_only: bool = False) -> AsyncEngine:
    """An async engine; SQLite gets WAL, foreign keys and a busy timeout.

    ``read_only`` engines (the verifier) open PostgreSQL sessions with
    ``default_transaction_read_only`` and short timeouts, so a stopped database fails fast
    instead of holding a request; on SQLite they do not take the write lock.
    """
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _: Any) -> None:
            # Transactions are begun by the "begin" hook below, not by the driver.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(connection: Any) -> None:
            # Writers take the write lock up front: a deferred transaction that reads and then
            # writes can fail with SQLITE_BUSY when another writer committed in between.
            connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    options: dict[str, Any] = {
        "pool_size": pool_size,
        # No overflow: connections beyond the pool would be opened and closed per request
        # (TLS attempt, authentication, type introspection), which costs more than waiting.
        "max_overflow": 0,
        "pool_recycle": 1800,  # no pre-ping: it costs a round trip per checkout
    }
    if read_only:
        options["pool_pre_ping"] = True  # cold path only; a restarted server is noticed
        options["connect_args"] = {
            "timeout": 2,
            "command_timeout": 2,
            "server_settings": {"default_transaction_read_only": "on"},
        }
    return create_async_engine(url, **options)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def reachable(engine: AsyncEngine) -> bool:
    """Whether the database answers a trivial query now."""
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError):
        return False
    return True


async def add_unless_taken(db: AsyncSession, row: object) -> bool:
    """Insert ``row`` in a savepoint: False, with the session unharmed, when its primary key
    is already in this session or a unique key is taken in the database, also by a
    concurrent transaction that committed first. Callers need no check of their own."""
    key = db.identity_key(type(row), object_mapper(row).primary_key_from_instance(row))
    if key in db.identity_map:  # this session already holds the row with that key
        return False
    try:
        async with db.begin_nested():
            db.add(row)
    except IntegrityError:
        return False
    return True


async def read_one_row(url: str, *, read_only_role: bool) -> None:
    """Open the database at ``url`` and read a row that the process's role may read (the
    verifier's read-only role sees only some columns); raises what the driver raises."""
    query = signing_keys_query() if read_only_role else select(AuditHead.seq)
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.connect() as connection:
            await connection.execute(query.limit(1))
    finally:
        await engine.dispose()
