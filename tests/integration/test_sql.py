"""The driver-level statements (``app.store.sql``) on PostgreSQL and SQLite: transactions,
deferred writes, one-statement blocks, the audit append from both worlds, and a database that
cannot be reached."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.registry.ports import Database
from app.registry.services import audit
from app.store.db import create_engine, session_factory
from app.store.models import AuditHead
from app.store.sql import DatabaseUnavailable, connect, transaction
from tests.factories import Agent
from tests.integration.conftest import ISSUER
from tests.support.registry import CIBA, RegistryClient

ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=2)
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM spend_ledger WHERE bucket = 'sql-test'"))
    yield engine
    await engine.dispose()


def _entry(entry_id: str) -> dict[str, object]:
    return {
        "entry_id": entry_id,
        "grant_id": "g",
        "bucket": "sql-test",
        "currency": "EUR",
        "amount_minor": 1,
        "jti": entry_id,
        "created_at": 1,
    }


INSERT = (
    "INSERT INTO spend_ledger (entry_id, grant_id, bucket, currency, amount_minor, jti,"
    " created_at) VALUES (:entry_id, :grant_id, :bucket, :currency, :amount_minor, :jti,"
    " :created_at)"
)
COUNT = "SELECT COUNT(*) AS n FROM spend_ledger WHERE bucket = 'sql-test'"


async def _count(engine: AsyncEngine) -> int:
    async with connect(engine) as db:
        row = await db.fetchrow(COUNT)
    assert row is not None
    return int(row["n"])


async def test_named_parameters_and_rows(engine: AsyncEngine) -> None:
    async with connect(engine) as db:
        row = await db.fetchrow(
            "SELECT CAST(:a AS TEXT) AS a, CAST(:b AS INTEGER) AS b, CAST(:a AS TEXT) AS again",
            {"a": "x:y ':name'", "b": 7},
        )
        assert row == {"a": "x:y ':name'", "b": 7, "again": "x:y ':name'"}
        assert await db.fetchrow(COUNT + " AND 1 = 0") == {"n": 0}
        assert await db.fetchall("SELECT entry_id FROM spend_ledger WHERE 1 = 0") == []


async def test_a_transaction_commits_or_rolls_back_as_a_whole(engine: AsyncEngine) -> None:
    async with transaction(engine) as db:
        assert await db.execute(INSERT, _entry("a")) == 1
        await db.defer(INSERT, _entry("b"))
    assert await _count(engine) == 2

    async def failing() -> None:
        async with transaction(engine) as db:
            await db.execute(INSERT, _entry("c"))
            await db.defer(INSERT, _entry("d"))
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        await failing()
    assert await _count(engine) == 2  # neither c nor the deferred d


async def test_deferred_writes_ride_along_with_the_next_statement(engine: AsyncEngine) -> None:
    async with transaction(engine) as db:
        await db.defer(INSERT, _entry("e"))
        await db.defer(INSERT, _entry("f"))
        row = await db.fetchrow("SELECT CAST(:v AS INTEGER) AS v", {"v": 1})
        assert row == {"v": 1}
    assert await _count(engine) == 2

    # A failing deferred write fails the statement it rides with, and nothing stays.
    async def duplicate() -> None:
        async with transaction(engine) as db:
            await db.defer(INSERT, _entry("g"))
            await db.defer(INSERT, _entry("e"))  # duplicate key
            await db.fetchrow("SELECT 1 AS one")

    with pytest.raises(Exception):  # noqa: B017, PT011 - the driver's own integrity error
        await duplicate()
    assert await _count(engine) == 2


async def test_a_one_statement_block_is_atomic_and_allows_one_statement(
    engine: AsyncEngine,
) -> None:
    async with transaction(engine, one_statement=True) as db:
        await db.defer(INSERT, _entry("h"))
        await db.execute(INSERT, _entry("i"))
    assert await _count(engine) == 2

    async def duplicate() -> None:
        async with transaction(engine, one_statement=True) as db:
            await db.defer(INSERT, _entry("j"))
            await db.execute(INSERT, _entry("h"))  # duplicate: j must not stay either

    with pytest.raises(Exception):  # noqa: B017, PT011 - the driver's own integrity error
        await duplicate()
    assert await _count(engine) == 2

    async def two_statements() -> None:
        async with transaction(engine, one_statement=True) as db:
            await db.fetchrow("SELECT 1 AS one")
            await db.fetchrow("SELECT 2 AS two")

    if engine.dialect.name == "postgresql":
        with pytest.raises(RuntimeError, match="second statement"):
            await two_statements()


async def test_audit_appends_from_driver_and_session_form_one_verifiable_chain(
    registry: RegistryClient, engine: AsyncEngine
) -> None:
    """The database's own hashing (PostgreSQL) and Python's (SQLite, and the check on every
    append) agree, for awkward content too; driver-level and ORM appends interleave."""
    awkward = {"text": 'é "quoted" \\ \n\t\u0001 😀 </script>', "n": -(2**53 - 1), "l": [True]}
    async with transaction(engine, one_statement=True) as db:
        first = await audit.append(db, "test.driver", actor="a:b", now=5, data=awkward)
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        second = await audit.append(session, "test.session", actor="c", now=6, subject="ü")
    async with transaction(engine) as db:
        third = await audit.append(db, "test.driver", actor="d", now=7, subject=None)
    assert second.prev_hash == first.hash
    assert third.prev_hash == second.hash
    assert (first.seq + 1, second.seq + 1) == (second.seq, third.seq)
    async with sessions() as session:
        head = (await session.scalars(select(AuditHead))).one()
        report = await audit.verify_chain(session)
    assert (head.seq, head.hash, head.prev_hash) == (third.seq, third.hash, second.hash)
    assert report.ok, report


async def test_an_unreachable_database_is_unavailable_not_an_error(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server to be unreachable")
    engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:9/none", pool_size=1)
    try:
        with pytest.raises(DatabaseUnavailable):
            async with connect(engine):
                pass  # pragma: no cover
    finally:
        await engine.dispose()


async def test_a_dropped_connection_is_discarded(engine: AsyncEngine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite connections cannot be dropped from outside")
    async with connect(engine) as victim, connect(engine) as other:
        row = await victim.fetchrow("SELECT pg_backend_pid() AS pid")
        assert row is not None
        await other.fetchrow("SELECT pg_terminate_backend(:pid) AS done", {"pid": row["pid"]})
    failed = 0
    for _ in range(3):  # the pool hands both connections out again; one of them is dead
        try:
            async with connect(engine) as db:
                assert await db.fetchrow("SELECT 1 AS one") == {"one": 1}
        except DatabaseUnavailable:
            failed += 1
    assert failed == 1  # and once discarded it never came back


async def test_token_answers_503_when_the_database_is_unreachable(
    registry: RegistryClient, database_url: str
) -> None:
    """The driver-level path (/token) and the ORM routes (/revoke, the admin API) alike."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no server to be unreachable")
    assert registry.app is not None
    state = registry.app.state.registry
    healthy = state.database
    unreachable = create_engine("postgresql+asyncpg://postgres@127.0.0.1:9/none", pool_size=1)
    state.database = Database(unreachable, session_factory(unreachable))
    agent = Agent()
    now = int(registry.clock())

    def form(**params: str) -> dict[str, str]:
        assertion = agent.assertion(iat=now, exp=now + 60, aud=ISSUER, jti=secrets.token_hex(8))
        return {"client_assertion_type": ASSERTION, "client_assertion": assertion, **params}

    admin = {"Authorization": f"Bearer {registry.admin_token}"}
    try:
        responses = [
            await registry.http.post(
                "/token", data=form(grant_type="refresh_token", refresh_token="r")
            ),
            await registry.http.post("/revoke", data=form(token="t")),
            await registry.http.get("/admin/audit", headers=admin),
        ]
    finally:
        await unreachable.dispose()
        state.database = healthy
    for response in responses:
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "temporarily_unavailable"
        assert response.headers["retry-after"] == "1"


async def test_a_database_that_refuses_writes_is_unavailable_not_an_error(
    registry: RegistryClient, database_url: str
) -> None:
    """A server that answers but cannot take a write (here read-only transactions, as a
    standby or a primary an operator made read-only; a full disk refuses alike): the
    driver-level path (/token) and the ORM routes (the admin API) answer 503."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no read-only server mode")
    assert registry.app is not None
    resource = "https://read-only.example.com/api"
    await registry.ensure_resource_server(resource)
    human = await registry.human()
    agent = await registry.agent(human)
    started = await agent.bc_authorize(
        [{"type": "api", "locations": [resource], "actions": ["read"]}]
    )
    auth_req_id = started.json()["auth_req_id"]
    grant_id = (await human.approve(auth_req_id)).json()["grant_id"]
    issued = await agent.token(CIBA, auth_req_id=auth_req_id)
    assert issued.status_code == 200, issued.text
    state = registry.app.state.registry
    healthy = state.database
    refusing = create_engine(database_url, pool_size=1, read_only=True)
    state.database = Database(refusing, session_factory(refusing))
    try:
        responses = [
            await agent.token("refresh_token", refresh_token=agent.refresh_token),
            await registry.admin("POST", f"/grants/{grant_id}/revoke"),
            await registry.admin("POST", "/humans", {"display_name": "Nobody"}),
        ]
    finally:
        await refusing.dispose()
        state.database = healthy
    for response in responses:
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "temporarily_unavailable"
        assert response.headers["retry-after"] == "1"
