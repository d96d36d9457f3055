"""The dependency that names the human behind a browser request: their live session."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from app.registry.services.sessions import HumanSession, live_session
from app.registry.state import NowDep, RegistryDep


async def current_session(request: Request, registry: RegistryDep, now: NowDep) -> HumanSession:
    """The calling human's live session, judged at the request's ``now``."""
    return await live_session(registry.database, request, now)


SessionDep = Annotated[HumanSession, Depends(current_session)]
