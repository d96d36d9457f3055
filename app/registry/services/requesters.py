"""Who may be asked for an approval: an agent asks its owner, or a human who allowed the
owner's agents to ask them (``login_hint``). A human never learns whether another exists
from a refusal: unknown, suspended and not-allowed humans are the same ``unknown_user_id``.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.errors import NotFound
from app.core.errors import InvalidRequest
from app.registry.services import audit
from app.registry.state import Registry
from app.store.models import ApprovalRequester, Human


async def may_ask(session: AsyncSession, human: Human, owner_id: str) -> bool:
    """Whether the agents of ``owner_id`` may send ``human`` approval requests."""
    if human.id == owner_id:
        return True
    return await session.get(ApprovalRequester, (human.id, owner_id)) is not None


async def listed(registry: Registry, human_id: str) -> list[tuple[ApprovalRequester, Human]]:
    async with registry.sessions() as session:
        rows = await session.execute(
            select(ApprovalRequester, Human)
            .join(Human, Human.id == ApprovalRequester.requester_id)
            .where(ApprovalRequester.human_id == human_id)
            .order_by(ApprovalRequester.created_at, ApprovalRequester.requester_id)
        )
        return [(row[0], row[1]) for row in rows.all()]


async def allow(registry: Registry, human_id: str, requester_id: str) -> ApprovalRequester:
    """Let ``requester_id``'s agents ask ``human_id``; allowing twice changes nothing."""
    if requester_id == human_id:
        raise InvalidRequest("Your own agents can always ask you.")
    now = registry.now()
    async with registry.sessions() as session, session.begin():
        requester = await session.get(Human, requester_id)
        if requester is None or requester.status != "active":
            raise NotFound("No such human.")
        row = await session.get(ApprovalRequester, (human_id, requester_id))
        if row is None:
            row = ApprovalRequester(human_id=human_id, requester_id=requester_id, created_at=now)
            session.add(row)
            await audit.append(
                session, "human.requester_allowed", actor=human_id, subject=requester_id, now=now
            )
    return row


async def withdraw(registry: Registry, human_id: str, requester_id: str) -> None:
    now = registry.now()
    async with registry.sessions() as session, session.begin():
        removed = await session.execute(
            delete(ApprovalRequester).where(
                ApprovalRequester.human_id == human_id,
                ApprovalRequester.requester_id == requester_id,
            )
        )
        if not getattr(removed, "rowcount", 0):
            raise NotFound("That human is not allowed to ask you.")
        await audit.append(
            session, "human.requester_withdrawn", actor=human_id, subject=requester_id, now=now
        )
