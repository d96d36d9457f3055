"""Signed audit checkpoints, written where the operator chose: a directory the database
cannot reach (``AGENTAUTH_AUDIT_CHECKPOINT_DIR``; mount it from other storage, or sync it
off the machine). The worker writes one when the chain has grown, at most every
``AGENTAUTH_AUDIT_CHECKPOINT_INTERVAL`` seconds; ``agentauth audit verify`` and
``GET /admin/audit/verify`` check the chain against them (``core/checkpoints.py``).
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.checkpoints import (
    Checkpoint,
    CheckpointError,
    Coverage,
    audit_private_key,
    audit_public_key,
    public_half,
    read_checkpoint,
    sign_checkpoint,
)
from app.core.jwk import PublicJWK
from app.settings import Settings
from app.store.models import AuditEvent, AuditHead

_NAME = re.compile(r"^(\d{12})\.jws$")


class CheckpointDirectory:
    """One file per checkpoint, ``<seq, 12 digits>.jws``, each written whole (a temporary
    file renamed into place), never rewritten."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def files(self) -> list[tuple[int, Path]]:
        """(seq, path) of every checkpoint file, in sequence order."""
        if not self.path.is_dir():
            return []
        found = [(_NAME.match(p.name), p) for p in self.path.iterdir()]
        return sorted((int(match.group(1)), p) for match, p in found if match)

    def last_seq(self) -> int:
        files = self.files()
        return files[-1][0] if files else 0

    def write(self, seq: int, token: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        final = self.path / f"{seq:012d}.jws"
        temporary = self.path / f".{seq:012d}.jws.tmp"
        with temporary.open("w") as handle:
            handle.write(token + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)


@dataclass(frozen=True)
class CheckpointWriter:
    store: CheckpointDirectory
    key: Ed25519PrivateKey
    issuer: str

    async def write(self, sessions: async_sessionmaker[AsyncSession], now: int) -> int | None:
        """Checkpoint the chain's head if it moved since the last checkpoint; its seq."""
        async with sessions() as session:
            head = (await session.execute(select(AuditHead.seq, AuditHead.hash))).one()
        seq = int(head.seq)
        if seq == 0 or seq <= await asyncio.to_thread(self.store.last_seq):
            return None
        token = sign_checkpoint(
            Checkpoint(seq=seq, hash=head.hash, at=now), issuer=self.issuer, key=self.key
        )
        await asyncio.to_thread(self.store.write, seq, token)
        return seq


def writer(settings: Settings) -> CheckpointWriter | None:
    """The worker's writer, when a directory and the signing key are configured."""
    if settings.audit_checkpoint_dir is None or settings.audit_signing_key is None:
        return None
    return CheckpointWriter(
        CheckpointDirectory(Path(settings.audit_checkpoint_dir)),
        audit_private_key(settings.audit_signing_key.get_secret_value()),
        settings.issuer,
    )


def verification_key(settings: Settings) -> PublicJWK | None:
    """``AGENTAUTH_AUDIT_PUBLIC_KEY``, else the public half of the signing key."""
    if settings.audit_public_key is not None:
        return audit_public_key(settings.audit_public_key)
    if settings.audit_signing_key is not None:
        key = audit_private_key(settings.audit_signing_key.get_secret_value())
        return audit_public_key(public_half(key))
    return None


class _Invalid(Exception):
    def __init__(self, name: str, problem: str) -> None:
        super().__init__(name)
        self.name, self.problem = name, problem


async def check(
    session: AsyncSession, store: CheckpointDirectory, public: PublicJWK, issuer: str
) -> Coverage:
    """The log against the checkpoints in ``store``: the last one, then a bisection for the
    first that no longer matches. Each checkpoint read must be signed by the audit key and
    name the event its file is named after."""
    head = int((await session.execute(select(AuditHead.seq))).scalar_one())
    files = await asyncio.to_thread(store.files)
    if not files:
        return Coverage(0, 0, uncovered=(1, head) if head else None)

    async def matches(index: int) -> bool:
        seq, path = files[index]
        try:
            text = await asyncio.to_thread(path.read_text)
            checkpoint = read_checkpoint(text, issuer=issuer, public=public)
            if checkpoint.seq != seq:
                raise CheckpointError(f"names event {checkpoint.seq}, not {seq}")
        except (CheckpointError, OSError, UnicodeDecodeError) as exc:
            raise _Invalid(path.name, str(exc)) from None
        actual = await session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == seq))
        return actual == checkpoint.hash

    low, high = 0, len(files) - 1
    try:
        if await matches(high):
            last = files[high][0]
            return Coverage(len(files), last, uncovered=(last + 1, head) if head > last else None)
        while low < high:  # files[high] does not match; find the first that does not
            middle = (low + high) // 2
            if await matches(middle):
                low = middle + 1
            else:
                high = middle
    except _Invalid as exc:
        return Coverage(len(files), 0, invalid=exc.name, reason=f"{exc.name}: {exc.problem}")
    covered = files[low - 1][0] if low else 0
    first_bad = files[low][0]
    reason = (
        f"the log ends at event {head}, a checkpoint vouches for event {first_bad}"
        if first_bad > head
        else f"event {first_bad} differs from its signed checkpoint"
    )
    return Coverage(len(files), covered, rewritten=(covered + 1, first_bad), reason=reason)


async def configured_check(session: AsyncSession, settings: Settings) -> Coverage | None:
    """:func:`check` against the configured directory and key; ``None`` when checkpoints
    are not configured."""
    public = verification_key(settings)
    if settings.audit_checkpoint_dir is None or public is None:  # the settings require both
        return None
    store = CheckpointDirectory(Path(settings.audit_checkpoint_dir))
    return await check(session, store, public, settings.issuer)
