"""Signed audit checkpoints, written where the operator chose
(``AGENTAUTH_AUDIT_CHECKPOINTS``): a directory the database cannot reach (mounted from
other storage, or synced off the machine), or an S3-compatible bucket
(``s3://bucket/prefix``). The worker writes one when the chain has grown, at most every
``AGENTAUTH_AUDIT_CHECKPOINT_INTERVAL`` seconds; ``agentauth audit verify`` and
``GET /admin/audit/verify`` check the chain against them (``core/checkpoints.py``).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
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
from app.settings.registry import RegistrySettings
from app.settings.worker import WorkerSettings
from app.store import audit_log
from app.store.s3 import S3Bucket

# The processes that read checkpoints: the registry checks them, the worker writes them.
CheckpointSettings = RegistrySettings | WorkerSettings

_NAME = re.compile(r"^(\d{12})\.jws$")


class CheckpointStore(Protocol):
    """One object per checkpoint, named ``<seq, 12 digits>.jws``, written once, whole."""

    def seqs(self) -> list[int]:
        """The seq of every checkpoint, ascending."""
        ...

    def read(self, seq: int) -> str: ...

    def write(self, seq: int, token: str) -> None: ...


def _name(seq: int) -> str:
    return f"{seq:012d}.jws"


def _sorted_seqs(names: Iterable[str]) -> list[int]:
    return sorted(int(match.group(1)) for match in map(_NAME.match, names) if match)


class CheckpointDirectory:
    """Checkpoints as files; each written to a temporary file and renamed into place."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def seqs(self) -> list[int]:
        return _sorted_seqs(p.name for p in self.path.iterdir()) if self.path.is_dir() else []

    def read(self, seq: int) -> str:
        return (self.path / _name(seq)).read_text()

    def write(self, seq: int, token: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path / f".{_name(seq)}.tmp"
        with temporary.open("w") as handle:
            handle.write(token + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path / _name(seq))


class CheckpointBucket:
    """Checkpoints as objects under ``prefix`` in an S3-compatible bucket."""

    def __init__(self, bucket: S3Bucket, prefix: str) -> None:
        self.bucket, self.prefix = bucket, prefix

    def seqs(self) -> list[int]:
        keys = self.bucket.keys(self.prefix)
        return _sorted_seqs(key[len(self.prefix) :] for key in keys)

    def read(self, seq: int) -> str:
        return self.bucket.get(self.prefix + _name(seq)).decode("utf-8")

    def write(self, seq: int, token: str) -> None:
        self.bucket.put(self.prefix + _name(seq), (token + "\n").encode())


def store(settings: CheckpointSettings) -> CheckpointStore | None:
    """The configured place for checkpoints, if any."""
    location = settings.audit_checkpoints
    if location is None:
        return None
    if not location.startswith("s3://"):
        return CheckpointDirectory(Path(location))
    bucket, _, prefix = location[5:].partition("/")
    secret = settings.audit_s3_secret_access_key
    credentials = S3Bucket(
        endpoint=settings.audit_s3_endpoint,
        bucket=bucket,
        region=settings.audit_s3_region,
        access_key_id=settings.audit_s3_access_key_id or "",
        secret_access_key=secret.get_secret_value() if secret else "",
    )
    return CheckpointBucket(credentials, prefix.rstrip("/") + "/" if prefix else "")


@dataclass
class CheckpointWriter:
    store: CheckpointStore
    key: Ed25519PrivateKey
    issuer: str
    written: int | None = None  # the last seq checkpointed; the store is listed only once

    async def write(self, sessions: async_sessionmaker[AsyncSession], now: int) -> int | None:
        """Checkpoint the chain's head if it moved since the last checkpoint; its seq."""
        async with sessions() as session:
            seq, head_hash = await audit_log.head(session)
        if self.written is None:
            known = await asyncio.to_thread(self.store.seqs)
            self.written = known[-1] if known else 0
        if seq == 0 or seq <= self.written:
            return None
        token = sign_checkpoint(
            Checkpoint(seq=seq, hash=head_hash, at=now), issuer=self.issuer, key=self.key
        )
        await asyncio.to_thread(self.store.write, seq, token)
        self.written = seq
        return seq


def writer(settings: CheckpointSettings) -> CheckpointWriter | None:
    """The worker's writer, when a directory and the signing key are configured."""
    place = store(settings)
    if place is None or settings.audit_signing_key is None:
        return None
    return CheckpointWriter(
        place, audit_private_key(settings.audit_signing_key.get_secret_value()), settings.issuer
    )


def verification_key(settings: CheckpointSettings) -> PublicJWK | None:
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
    session: AsyncSession, place: CheckpointStore, public: PublicJWK, issuer: str
) -> Coverage:
    """The log against the checkpoints in ``store``: the last one, then a bisection for the
    first that no longer matches. Each checkpoint read must be signed by the audit key and
    name the event its file is named after."""
    head, _ = await audit_log.head(session)
    try:
        files = await asyncio.to_thread(place.seqs)
    except OSError as exc:  # fail closed: unchecked is not intact
        return Coverage(0, 0, invalid="(the checkpoint store)", reason=f"cannot list: {exc}")
    if not files:
        return Coverage(0, 0, uncovered=(1, head) if head else None)

    async def matches(index: int) -> bool:
        seq = files[index]
        try:
            text = await asyncio.to_thread(place.read, seq)
            checkpoint = read_checkpoint(text, issuer=issuer, public=public)
            if checkpoint.seq != seq:
                raise CheckpointError(f"names event {checkpoint.seq}, not {seq}")
        except (CheckpointError, OSError, UnicodeDecodeError) as exc:
            raise _Invalid(_name(seq), str(exc)) from None
        actual = await audit_log.event_hash(session, seq)
        return actual == checkpoint.hash

    low, high = 0, len(files) - 1
    try:
        if await matches(high):
            last = files[high]
            return Coverage(len(files), last, uncovered=(last + 1, head) if head > last else None)
        while low < high:  # files[high] does not match; find the first that does not
            middle = (low + high) // 2
            if await matches(middle):
                low = middle + 1
            else:
                high = middle
    except _Invalid as exc:
        return Coverage(len(files), 0, invalid=exc.name, reason=f"{exc.name}: {exc.problem}")
    covered = files[low - 1] if low else 0
    first_bad = files[low]
    reason = (
        f"the log ends at event {head}, a checkpoint vouches for event {first_bad}"
        if first_bad > head
        else f"event {first_bad} differs from its signed checkpoint"
    )
    return Coverage(len(files), covered, rewritten=(covered + 1, first_bad), reason=reason)


async def configured_check(session: AsyncSession, settings: CheckpointSettings) -> Coverage | None:
    """:func:`check` against the configured directory and key; ``None`` when checkpoints
    are not configured."""
    public, place = verification_key(settings), store(settings)
    if place is None or public is None:  # the settings require both or neither
        return None
    return await check(session, place, public, settings.issuer)
