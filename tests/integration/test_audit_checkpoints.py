"""The audit chain is anchored outside the database: signed checkpoints in a directory the
database cannot reach, or in an S3-compatible bucket (a private server on 127.0.0.1).
Rewriting events and recomputing the chain passes the chain check but not the checkpoints,
and the report names the events no longer covered (threat model, hardening rule 4). This
module has its own database: it rewrites the audit log."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import select, update
from typer.testing import CliRunner

from app.cli import app as cli
from app.core.checkpoints import audit_private_key, public_half
from app.registry.services import checkpoints
from app.registry.services.audit import event_hash
from app.settings import Settings
from app.store.models import AuditEvent, AuditHead
from app.worker.process import Worker
from tests.support.databases import own_database_fixtures
from tests.support.processes import S3Server, free_port
from tests.support.registry import RegistryClient

SEED = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


database_url, verifier_database_url = own_database_fixtures("audit")


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = S3Server("checkpoints")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["directory", "bucket"])
def settings(settings: Settings, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    place: dict[str, Any] = {"audit_checkpoints": str(tmp_path / "checkpoints")}
    if request.param == "bucket":
        s3 = request.getfixturevalue("s3")
        place = {
            "audit_checkpoints": f"s3://{s3.bucket}/{tmp_path.name}",
            "audit_s3_endpoint": s3.endpoint,
            "audit_s3_access_key_id": "checkpoint-writer",
            "audit_s3_secret_access_key": SecretStr("s" * 40),
        }
    return settings.model_copy(update={**place, "audit_signing_key": SecretStr(SEED)})


def stored(settings: Settings) -> list[int]:
    place = checkpoints.store(settings)
    assert place is not None
    return place.seqs()


async def checkpoint(registry: RegistryClient, settings: Settings) -> int:
    """Have the worker write a checkpoint now; the seq it vouches for."""
    assert registry.app is not None
    state = registry.app.state.registry
    worker = Worker(
        state.cache,
        state.engine,
        state.sessions,
        clock=registry.clock,
        checkpoints=checkpoints.writer(settings),
    )
    await worker.housekeeping()
    async with state.sessions() as session:
        return int((await session.execute(select(AuditHead.seq))).scalar_one())


async def rewrite(registry: RegistryClient, seq: int, data: dict[str, Any]) -> None:
    """What someone with write access to the database can do: change event ``seq`` and
    recompute every later hash and the head, so the chain is consistent again."""
    assert registry.app is not None
    async with registry.app.state.registry.sessions() as session, session.begin():
        rows = (
            await session.scalars(
                select(AuditEvent).where(AuditEvent.seq >= seq).order_by(AuditEvent.seq)
            )
        ).all()
        prev = rows[0].prev_hash
        for row in rows:
            content = data if row.seq == seq else row.data
            digest = event_hash(
                seq=row.seq,
                prev_hash=prev,
                created_at=row.created_at,
                event=row.event,
                actor=row.actor,
                subject=row.subject,
                data=content,
            )
            await session.execute(
                update(AuditEvent)
                .where(AuditEvent.seq == row.seq)
                .values(data=content, prev_hash=prev, hash=digest)
            )
            prev_of_last, prev = prev, digest
        await session.execute(update(AuditHead).values(hash=prev, prev_hash=prev_of_last))


async def cli_verify(settings: Settings, **extra: str) -> Any:
    """``agentauth audit verify`` as an auditor runs it: the database, the checkpoint
    directory and the public key only."""
    secret = settings.audit_s3_secret_access_key
    env = {
        "AGENTAUTH_DATABASE_URL": settings.database_url,
        "AGENTAUTH_ISSUER": settings.issuer,
        "AGENTAUTH_AUDIT_CHECKPOINTS": settings.audit_checkpoints or "",
        "AGENTAUTH_AUDIT_S3_ENDPOINT": settings.audit_s3_endpoint,
        "AGENTAUTH_AUDIT_S3_ACCESS_KEY_ID": settings.audit_s3_access_key_id or "",
        "AGENTAUTH_AUDIT_S3_SECRET_ACCESS_KEY": secret.get_secret_value() if secret else "",
        **extra,
    }
    return await asyncio.to_thread(CliRunner().invoke, cli, ["audit", "verify"], env=env)


async def test_a_recomputed_chain_fails_against_the_signed_checkpoints(
    registry: RegistryClient, settings: Settings
) -> None:
    await registry.human("Alice")
    first = await checkpoint(registry, settings)
    await registry.human("Bob")
    second = await checkpoint(registry, settings)
    await registry.human("Carol")  # not covered by a checkpoint yet
    intact = (await registry.admin("GET", "/audit/verify")).json()
    assert intact["ok"] is True
    assert intact["checkpoints"]["covered_through"] == second
    assert intact["checkpoints"]["uncovered"][0] == second + 1

    await rewrite(registry, first - 1, {"display_name": "Mallory"})
    report = (await registry.admin("GET", "/audit/verify")).json()
    assert report["events"] >= second  # the chain itself checks out again ...
    assert report["checkpoints"]["ok"] is False  # ... but not against the checkpoints
    assert report["ok"] is False
    assert report["checkpoints"]["rewritten"] == [1, first]
    result = await cli_verify(
        settings, AGENTAUTH_AUDIT_PUBLIC_KEY=public_half(audit_private_key(SEED))
    )
    assert result.exit_code == 1, result.output
    assert f"events 1\u2013{first} no longer match" in result.output


async def test_a_checkpoint_not_signed_by_the_audit_key_fails(
    registry: RegistryClient, settings: Settings
) -> None:
    await registry.human("Alice")
    other = settings.model_copy(
        update={
            "audit_signing_key": SecretStr(
                base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
            )
        }
    )
    await checkpoint(registry, other)  # forged: another key
    report = (await registry.admin("GET", "/audit/verify")).json()
    assert report["ok"] is False
    assert report["checkpoints"]["invalid"].endswith(".jws")
    assert "not signed by the audit key" in report["checkpoints"]["reason"]


async def test_checkpoints_are_written_only_when_the_chain_grew(
    registry: RegistryClient, settings: Settings
) -> None:
    await registry.human("Alice")
    seq = await checkpoint(registry, settings)
    assert await asyncio.to_thread(stored, settings) == [seq]
    writer = checkpoints.writer(settings)
    assert writer is not None
    assert registry.app is not None
    sessions = registry.app.state.registry.sessions
    assert await writer.write(sessions, int(registry.clock())) is None  # nothing new
    assert await asyncio.to_thread(stored, settings) == [seq]
    result = await cli_verify(
        settings, AGENTAUTH_AUDIT_PUBLIC_KEY=public_half(audit_private_key(SEED))
    )
    assert result.exit_code == 0, result.output
    assert f"covered by signed checkpoints through event {seq}" in result.output


async def test_an_unreachable_checkpoint_store_fails_verification(
    registry: RegistryClient, settings: Settings
) -> None:
    if not (settings.audit_checkpoints or "").startswith("s3://"):
        pytest.skip("a directory is always listable")
    dead = settings.model_copy(update={"audit_s3_endpoint": f"http://127.0.0.1:{free_port()}"})
    assert registry.app is not None
    async with registry.app.state.registry.sessions() as session:
        coverage = await checkpoints.configured_check(session, dead)
    assert coverage is not None
    assert coverage.ok is False
    assert coverage.reason is not None
    assert coverage.reason.startswith("cannot list")
