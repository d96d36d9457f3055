"""Who may be asked for an approval: an agent asks its owner, or a human who allowed the
owner's agents to ask them (``login_hint``). A human never learns whether another exists
from a refusal: unknown, suspended and not-allowed humans are the same ``unknown_user_id``.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.api.errors import NotFound
from app.core.errors import InvalidRequest
from app.registry.ports import Database
from app.registry.services import audit
from app.store import people
from app.store.models import ApprovalRequester, Human


async def may_ask(session: AsyncSession, human: Human, owner_id: str) -> bool:
    """Whether the agents of ``owner_id`` may send ``human`` approval requests."""
    if human.id == owner_id:
        return True
    return await people.allows(session, human.id, owner_id)


async def listed(database: Database, human_id: str) -> list[tuple[ApprovalRequester, Human]]:
    async with database.sessions() as session:
        return await people.requesters_of(session, human_id)


async def allow(
    database: Database, human_id: str, requester_id: str, *, now: int
) -> ApprovalRequester:
    """Let ``requester_id``'s agents ask ``human_id``; allowing twice changes nothing."""
    if requester_id == human_id:
        raise InvalidRequest("Your own agents can always ask you.")
    async with database.sessions() as session, session.begin():
        if await people.active_human(session, requester_id) is None:
            raise NotFound("No such human.")
        row, created = await people.allow_requester(session, human_id, requester_id, now)
        if created:
            await audit.append(
                session, "human.requester_allowed", actor=human_id, subject=requester_id, now=now
            )
    return row


async def withdraw(database: Database, human_id: str, requester_id: str, *, now: int) -> None:
    async with database.sessions() as session, session.begin():
        if not await people.withdraw_requester(session, human_id, requester_id):
            raise NotFound("That human is not allowed to ask you.")
        await audit.append(
            session, "human.requester_withdrawn", actor=human_id, subject=requester_id, now=now
        )
