"""The `agentauth migrate` and `agentauth audit verify` commands against real databases."""

from __future__ import annotations

import asyncio
import os
import select as io_select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, update
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from app.cli import app
from app.store.db import create_engine
from app.store.migrate import upgrade
from app.store.models import AuditEvent
from tests.support.registry import RegistryClient

runner = CliRunner()


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


def test_migrate_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    monkeypatch.setenv("AGENTAUTH_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)  # no alembic.ini here: the migrations ship with the package
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    tables = asyncio.run(_tables(url))
    assert {"humans", "agents", "grants", "audit_events", "signing_keys"} <= tables
    again = runner.invoke(app, ["migrate"])  # idempotent
    assert again.exit_code == 0


def test_audit_verify_command(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("AGENTAUTH_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AGENTAUTH_DATABASE_URL", database_url)
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "audit chain intact" in result.output
    as_json = runner.invoke(app, ["audit", "verify", "--json"])
    assert '"ok": true' in as_json.output


async def test_audit_verify_command_names_the_broken_event(
    registry: RegistryClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await registry.human()  # at least one event
    sessions = registry.app.state.registry.sessions
    async with sessions() as session:
        row = (await session.scalars(select(AuditEvent).order_by(AuditEvent.seq).limit(1))).one()
    monkeypatch.setenv("AGENTAUTH_DATABASE_URL", database_url)

    async def set_actor(actor: str) -> None:
        async with sessions() as session, session.begin():
            await session.execute(
                update(AuditEvent).where(AuditEvent.seq == row.seq).values(actor=actor)
            )

    await set_actor("mallory")
    try:
        result = await asyncio.to_thread(runner.invoke, app, ["audit", "verify"])
        assert result.exit_code == 1
        assert f"BROKEN at event {row.seq}" in result.output
    finally:
        await set_actor(row.actor)
    assert (await asyncio.to_thread(runner.invoke, app, ["audit", "verify"])).exit_code == 0


async def test_audit_verification_reports_progress(registry: RegistryClient) -> None:
    from app.registry.services.audit import verify_chain

    await registry.human("Progress")
    seen: list[int] = []
    async with registry.app.state.registry.sessions() as session:
        report = await verify_chain(session, seen.append, every=1)
    assert report.ok
    assert seen == list(range(1, report.events + 1))


def _no_agentauth_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("AGENTAUTH_")]:
        monkeypatch.delenv(name)


def test_commands_find_the_dev_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run where `agentauth dev` keeps its data, a command reads that database and says so."""
    _no_agentauth_environment(monkeypatch)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".agentauth").mkdir()
    upgrade(f"sqlite+aiosqlite:///{tmp_path / '.agentauth' / 'agentauth.db'}")
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert f"database: sqlite+aiosqlite:///{tmp_path / '.agentauth' / 'agentauth.db'}" in (
        result.output
    )
    assert "audit chain intact" in result.output
    checked = runner.invoke(app, ["config", "check"])
    assert f"AGENTAUTH_DATABASE_URL=sqlite+aiosqlite:///{tmp_path}/.agentauth/" in checked.output
    assert not (tmp_path / "agentauth.db").exists()  # no stray database


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("sqlite+aiosqlite:///{tmp}/missing.db", "there is no database at"),
        ("sqlite+aiosqlite:///{tmp}/empty.db", "has no AgentAuth schema; run `agentauth migrate`"),
        ("postgresql+asyncpg://postgres@127.0.0.1:1/x", "cannot be reached or read"),
    ],
)
def test_a_missing_or_unmigrated_database_is_one_line_and_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, says: str
) -> None:
    _no_agentauth_environment(monkeypatch)
    (tmp_path / "empty.db").touch()
    monkeypatch.setenv("AGENTAUTH_DATABASE_URL", url.format(tmp=tmp_path))
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 3, result.output  # not 1, which means a broken chain
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    assert says in errors[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "missing.db").exists()


def test_migrate_names_a_database_that_does_not_exist(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite creates its file")
    _no_agentauth_environment(monkeypatch)
    absent = make_url(database_url).set(database="agentauth_never_created").render_as_string(False)
    monkeypatch.setenv("AGENTAUTH_DATABASE_URL", absent)
    result = runner.invoke(app, ["migrate"])
    assert result.exit_code == 3, result.output
    assert "does not exist" in result.output
    assert "create it first" in result.output
    assert "Traceback" not in result.output


def test_serve_refuses_a_database_without_schema_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_agentauth_environment(monkeypatch)
    (tmp_path / "empty.db").touch()
    monkeypatch.setenv("AGENTAUTH_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    result = runner.invoke(app, ["serve", "registry", "--port", "1"])
    assert result.exit_code == 3, result.output
    assert "has no AgentAuth schema" in result.output
    assert "Traceback" not in result.output


def test_serve_worker_says_that_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'worker.db'}"
    upgrade(url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTAUTH_")}
    env |= {"AGENTAUTH_DATABASE_URL": url, "AGENTAUTH_REDIS_URL": redis_url}
    worker = subprocess.Popen(  # noqa: S603 - our own command
        [str(Path(sys.executable).parent / "agentauth"), "serve", "worker"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stderr is not None
        said = []
        for _ in range(3):  # "database: ..." comes first
            readable, _, _ = io_select.select([worker.stderr], [], [], 15)  # never hangs
            assert readable, f"the worker said only {said}"
            said.append(worker.stderr.readline())
            if said[-1].startswith("worker started: "):
                break
        assert said[-1].startswith("worker started: "), said
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=20)
        if worker.stderr is not None:
            worker.stderr.close()
