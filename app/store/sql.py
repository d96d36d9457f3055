"""Driver-level SQL for the registry's busiest path.

A statement through the driver costs a fraction of one through SQLAlchemy's ORM or Core
(figures in docs/performance.md "A driver-level data path"). ``POST /token`` runs six to
eight statements, so its repository (``app.store.token_store``) talks to the driver
connection that SQLAlchemy's pool lends: the same pool and size limit, the same connection
set-up (JSON codecs on PostgreSQL, pragmas on SQLite), without per-statement compilation and
result processing.

Statements are written once, with ``:name`` parameters, in the SQL that PostgreSQL and SQLite
share (``RETURNING`` included). :class:`Db` has three implementations: asyncpg, aiosqlite,
and an ``AsyncSession`` for code already inside an ORM transaction (the audit log is appended
from both worlds through the same function).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any, Protocol

import asyncpg
import orjson
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

Row = dict[str, Any]
Params = Mapping[str, Any]

_NAMED = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")
# A lost or refused connection: the database is unavailable, not the request wrong.
_CONNECTION_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # e.g. a connection the server terminated while it was idle
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
)


class DatabaseUnavailable(Exception):
    """The database could not be reached or dropped the connection mid-request."""


# character_not_in_repertoire, untranslatable_character: e.g. a NUL in PostgreSQL text.
_UNSTORABLE_TEXT = frozenset({"22021", "22P05"})
# The server cannot take the statement now, though the request is fine: it is read-only
# (a standby, or a primary an operator made read-only), a serialisation or deadlock victim.
_UNAVAILABLE_STATES = frozenset({"25006", "40001", "40P01"})
# Whole classes: insufficient resources (a full disk, no memory, too many connections),
# operator intervention (shutting down), system errors (an I/O error).
_UNAVAILABLE_CLASSES = frozenset({"53", "57", "58"})


def unstorable_text(exc: BaseException) -> bool:
    """Whether the database refused a value because its text cannot hold a character of it:
    the caller's input, wherever it came from (a path, a query string), not a server fault."""
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    return getattr(cause, "sqlstate", None) in _UNSTORABLE_TEXT


# Every exception type :func:`database_unavailable` or :func:`unstorable_text` may say yes to.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    DatabaseUnavailable,
    PoolTimeout,
    DBAPIError,
    asyncpg.DataError,
    *_CONNECTION_ERRORS,
)


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc``, from this module or from SQLAlchemy's engine and ORM, means the
    database could not be reached, dropped the connection, or cannot take the statement now
    (read-only, out of disk or memory, a deadlock victim): not that the request was wrong."""
    if isinstance(exc, (DatabaseUnavailable, PoolTimeout, *_CONNECTION_ERRORS)):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    state = getattr(exc.orig if isinstance(exc, DBAPIError) else exc, "sqlstate", None)
    return isinstance(state, str) and (
        state in _UNAVAILABLE_STATES or state[:2] in _UNAVAILABLE_CLASSES
    )


class Db(Protocol):
    """Statements with ``:name`` parameters; JSON values are written as text (:func:`json_text`)
    and read back through :meth:`json`."""

    postgres: bool

    async def fetchrow(self, sql: str, params: Params | None = None) -> Row | None: ...

    async def fetchall(self, sql: str, params: Params | None = None) -> list[Row]: ...

    async def execute(self, sql: str, params: Params | None = None) -> int:
        """Run a statement; returns the number of rows it changed."""
        ...

    def json(self, value: Any) -> Any:
        """A JSON column's value as Python data."""
        ...

    async def defer(self, sql: str, params: Params) -> None:
        """A write that may run together with the next statement (PostgreSQL sends it as a
        ``WITH`` part of that statement: one round trip for both) and at the latest before
        the transaction commits. Only for writes that no later statement of the same
        transaction reads: inside one PostgreSQL statement they share a snapshot."""
        ...


def row_lock(lock: bool) -> dict[str, bool] | None:
    """The lock a read-modify-write of one row takes: ``FOR NO KEY UPDATE`` on PostgreSQL. It
    serialises the row's writers but not the foreign-key checks of rows that refer to it
    (a key-share lock). ``FOR UPDATE`` would block those, and a token insert that holds the
    audit head while its check waits would deadlock with the lock's holder, which appends to
    the audit log last."""
    return {"key_share": True} if lock else None


def json_text(value: object) -> str:
    return orjson.dumps(value).decode()


@lru_cache(maxsize=256)
def _prefixed(sql: str, prefix: str) -> str:
    return _NAMED.sub(lambda match: f":{prefix}{match.group(1)}", sql)


def _with_writes(
    writes: list[tuple[str, Params]], sql: str, params: Params | None
) -> tuple[str, dict[str, Any]]:
    """``sql`` with ``writes`` in front as data-modifying ``WITH`` parts (parameters renamed
    apart), so PostgreSQL runs them all in one statement."""
    parts, merged = [], dict(params or {})
    for index, (write, values) in enumerate(writes):
        prefix = f"w{index}_"
        parts.append(f"_w{index} AS ({_prefixed(write, prefix)})")
        merged.update({prefix + name: value for name, value in values.items()})
    head = "WITH " + ", ".join(parts)
    if sql.startswith("WITH "):
        return f"{head}, {sql[5:]}", merged
    return f"{head} {sql}", merged


@lru_cache(maxsize=512)
def _numbered(sql: str) -> tuple[str, tuple[str, ...]]:
    """``:name`` parameters as asyncpg's ``$n``, and the names in order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _NAMED.sub(number, sql), tuple(names)


class PostgresDb:
    postgres = True

    def __init__(self, driver: asyncpg.Connection) -> None:
        self._driver = driver
        self.broken = False
        self._deferred: list[tuple[str, Params]] = []
        self.statements_left: int | None = None  # a one-statement block's budget

    async def defer(self, sql: str, params: Params) -> None:
        self._deferred.append((sql, params))

    async def flush(self) -> None:
        """Run the deferred writes now (the last one carries the others)."""
        if self._deferred:
            *writes, (last, params) = self._deferred
            self._deferred = writes
            await self.execute(last, params)

    def discard(self) -> None:
        self._deferred = []

    async def _call(self, method: str, sql: str, params: Params | None) -> Any:
        if self.statements_left is not None:
            if self.statements_left < 1:
                raise RuntimeError("a one-statement transaction ran a second statement")
            self.statements_left -= 1
        if self._deferred:
            sql, params = _with_writes(self._deferred, sql, params)
            self._deferred = []
        statement, names = _numbered(sql)
        values = params or {}
        try:
            return await getattr(self._driver, method)(statement, *(values[n] for n in names))
        except _CONNECTION_ERRORS as exc:
            self.broken = True
            raise DatabaseUnavailable(str(exc) or type(exc).__name__) from exc

    async def fetchrow(self, sql: str, params: Params | None = None) -> Row | None:
        record = await self._call("fetchrow", sql, params)
        return None if record is None else dict(record.items())

    async def fetchall(self, sql: str, params: Params | None = None) -> list[Row]:
        return [dict(record.items()) for record in await self._call("fetch", sql, params)]

    async def execute(self, sql: str, params: Params | None = None) -> int:
        status: str = await self._call("execute", sql, params)
        count = status.rpartition(" ")[2]  # "UPDATE 1", "INSERT 0 1", "BEGIN"
        return int(count) if count.isdigit() else 0

    def json(self, value: Any) -> Any:
        return value  # SQLAlchemy's connection set-up installs a decoding codec


class SqliteDb:
    postgres = False

    def __init__(self, driver: Any) -> None:
        self._driver = driver  # aiosqlite.Connection; SQLite takes ``:name`` natively
        self.broken = False

    async def fetchrow(self, sql: str, params: Params | None = None) -> Row | None:
        rows = await self._fetch(sql, params, one=True)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Params | None = None) -> list[Row]:
        return await self._fetch(sql, params, one=False)

    async def _fetch(self, sql: str, params: Params | None, *, one: bool) -> list[Row]:
        cursor = await self._driver.execute(sql, dict(params or {}))
        try:
            rows = [await cursor.fetchone()] if one else await cursor.fetchall()
            names = [column[0] for column in cursor.description or ()]
        finally:
            await cursor.close()
        return [dict(zip(names, row, strict=True)) for row in rows if row is not None]

    async def execute(self, sql: str, params: Params | None = None) -> int:
        cursor = await self._driver.execute(sql, dict(params or {}))
        count = int(cursor.rowcount)
        await cursor.close()
        return max(count, 0)

    def json(self, value: Any) -> Any:
        return None if value is None else orjson.loads(value)

    async def defer(self, sql: str, params: Params) -> None:
        await self.execute(sql, params)

    async def flush(self) -> None:
        return None

    def discard(self) -> None:
        return None


class SessionDb:
    """The same statements inside an ORM session's transaction."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self.postgres = session.get_bind().dialect.name == "postgresql"

    async def fetchrow(self, sql: str, params: Params | None = None) -> Row | None:
        row = (await self._session.execute(text(sql), dict(params or {}))).mappings().first()
        return None if row is None else dict(row)

    async def fetchall(self, sql: str, params: Params | None = None) -> list[Row]:
        result = await self._session.execute(text(sql), dict(params or {}))
        return [dict(row) for row in result.mappings()]

    async def execute(self, sql: str, params: Params | None = None) -> int:
        result = await self._session.execute(text(sql), dict(params or {}))
        return max(int(getattr(result, "rowcount", 0)), 0)

    def json(self, value: Any) -> Any:
        return orjson.loads(value) if isinstance(value, str | bytes) else value

    async def defer(self, sql: str, params: Params) -> None:
        await self.execute(sql, params)


@asynccontextmanager
async def connect(engine: AsyncEngine) -> AsyncIterator[PostgresDb | SqliteDb]:
    """Borrow a connection from ``engine``'s pool for statements that stand alone. A lost or
    unreachable database raises :class:`DatabaseUnavailable`, and a connection that failed is
    discarded instead of going back to the pool."""
    try:
        connection: AsyncConnection = await engine.connect()
    except (DBAPIError, PoolTimeout, *_CONNECTION_ERRORS) as exc:
        raise DatabaseUnavailable(f"connect: {exc}") from exc
    try:
        driver = (await connection.get_raw_connection()).driver_connection
        db = PostgresDb(driver) if engine.dialect.name == "postgresql" else SqliteDb(driver)
        try:
            yield db
        except asyncio.CancelledError:
            db.broken = True  # a statement may still be running: drop the connection
            raise
        finally:
            if db.broken:
                await connection.invalidate()
    finally:
        await connection.close()


@asynccontextmanager
async def transaction(engine: AsyncEngine, *, one_statement: bool = False) -> AsyncIterator[Db]:
    """A pooled connection inside a transaction: committed when the block ends, rolled back
    when it raises. SQLite takes its write lock up front, as the SQLAlchemy engine does (a
    deferred transaction that reads and then writes can fail when another writer committed
    in between).

    ``one_statement``: the block's writes reach PostgreSQL as a single statement (deferred
    writes riding along with one final statement), which is atomic on its own: no ``BEGIN``
    and ``COMMIT`` round trips. The block must not fail after that statement ran; a second
    statement is a programming error. SQLite runs the same block as a normal transaction."""
    async with connect(engine) as db:
        if one_statement and isinstance(db, PostgresDb):
            db.statements_left = 1
            try:
                yield db
                await db.flush()
            except BaseException:
                db.discard()
                raise
            return
        await db.execute("BEGIN" if db.postgres else "BEGIN IMMEDIATE")
        try:
            yield db
            await db.flush()
        except asyncio.CancelledError:
            db.broken = True
            raise
        except BaseException:
            db.discard()
            if not db.broken:
                try:
                    await db.execute("ROLLBACK")
                except Exception:  # the connection is gone; closing it rolls back
                    db.broken = True
            raise
        await db.execute("COMMIT")
