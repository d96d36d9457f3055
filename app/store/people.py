"""Humans and the one-time secrets that bring people and agents in: invites (a human's first
passkey) and enrollment tokens (an agent's registration).

Functions take the caller's session and never commit; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.db import add_unless_taken
from app.store.models import ApprovalRequester, EnrollmentToken, Human, Invite, Passkey
from app.store.sql import row_lock


async def human(db: AsyncSession, human_id: str, *, lock: bool = False) -> Human | None:
    return await db.get(Human, human_id, with_for_update=row_lock(lock))


async def active_human(db: AsyncSession, human_id: str | None) -> Human | None:
    found = await db.get(Human, human_id) if human_id else None
    return found if found is not None and found.status == "active" else None


async def every_human(db: AsyncSession) -> Sequence[Human]:
    return (await db.scalars(select(Human).order_by(Human.created_at))).all()


async def usable_invite(db: AsyncSession, token_hash: str, now: int) -> Human | None:
    """The active human an unused, unexpired invite is for, or None."""
    invite = await db.get(Invite, token_hash)
    if invite is None or invite.used_at is not None or invite.expires_at <= now:
        return None
    return await active_human(db, invite.human_id)


async def claim_invite(db: AsyncSession, token_hash: str, now: int) -> bool:
    """Mark the invite used (one conditional UPDATE): True for the one caller that did."""
    claimed = await db.execute(
        update(Invite)
        .where(Invite.token_hash == token_hash, Invite.used_at.is_(None))
        .values(used_at=now)
    )
    return bool(claimed.rowcount == 1)  # type: ignore[attr-defined]


async def claim_enrollment_token(db: AsyncSession, token_hash: str, now: int) -> Human | None:
    """Consume an unused, unexpired enrollment token (one conditional UPDATE) and return its
    owner if the owner is active."""
    claimed = await db.execute(
        update(EnrollmentToken)
        .where(
            EnrollmentToken.token_hash == token_hash,
            EnrollmentToken.used_at.is_(None),
            EnrollmentToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(EnrollmentToken.owner_id)
    )
    return await active_human(db, claimed.scalar_one_or_none())


async def note_enrolled_agent(db: AsyncSession, token_hash: str, agent_id: str) -> None:
    await db.execute(
        update(EnrollmentToken)
        .where(EnrollmentToken.token_hash == token_hash)
        .values(agent_id=agent_id)
    )


async def passkey_ids(db: AsyncSession, human_id: str) -> list[bytes]:
    """The credential ids of the human's passkeys (a WebAuthn ``allowCredentials`` list)."""
    query = select(Passkey.credential_id).where(Passkey.human_id == human_id)
    return list((await db.scalars(query)).all())


async def add_invited_human(
    db: AsyncSession, human: Human, *, invite_hash: str, invite_expires_at: int
) -> None:
    """A new human with the invite that lets them create their first passkey."""
    db.add(human)
    await db.flush()
    db.add(Invite(token_hash=invite_hash, human_id=human.id, expires_at=invite_expires_at))


def add_enrollment_token(
    db: AsyncSession, *, token_hash: str, owner_id: str, created_by: str, now: int, expires_at: int
) -> None:
    db.add(
        EnrollmentToken(
            token_hash=token_hash,
            owner_id=owner_id,
            created_by=created_by,
            created_at=now,
            expires_at=expires_at,
        )
    )


# Who may ask whom: a human lets another human's agents send them approval requests.


async def allows(db: AsyncSession, human_id: str, requester_id: str) -> bool:
    return await db.get(ApprovalRequester, (human_id, requester_id)) is not None


async def requesters_of(db: AsyncSession, human_id: str) -> list[tuple[ApprovalRequester, Human]]:
    """The humans ``human_id`` allowed, in the order they were allowed."""
    rows = await db.execute(
        select(ApprovalRequester, Human)
        .join(Human, Human.id == ApprovalRequester.requester_id)
        .where(ApprovalRequester.human_id == human_id)
        .order_by(ApprovalRequester.created_at, ApprovalRequester.requester_id)
    )
    return [(row, human) for row, human in rows.all()]


async def allow_requester(
    db: AsyncSession, human_id: str, requester_id: str, now: int
) -> tuple[ApprovalRequester, bool]:
    """The permission, and whether this call created it (False when it existed, also when a
    concurrent call created it first)."""
    row = ApprovalRequester(human_id=human_id, requester_id=requester_id, created_at=now)
    if await add_unless_taken(db, row):
        return row, True
    existing = await db.get(ApprovalRequester, (human_id, requester_id), populate_existing=True)
    # None only if a concurrent withdrawal removed it since: this call then came first.
    return existing or row, False


async def withdraw_requester(db: AsyncSession, human_id: str, requester_id: str) -> bool:
    removed = await db.execute(
        delete(ApprovalRequester).where(
            ApprovalRequester.human_id == human_id,
            ApprovalRequester.requester_id == requester_id,
        )
    )
    return bool(getattr(removed, "rowcount", 0))


async def passkey(db: AsyncSession, credential_id: bytes, *, lock: bool = False) -> Passkey | None:
    return await db.get(Passkey, credential_id, with_for_update=row_lock(lock))
