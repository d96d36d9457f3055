"""Server-side browser sessions for humans, with CSRF tokens and two timeouts.

The cookie holds 256 random bits; the database stores only their hash. A session ends after
``IDLE`` seconds without use or ``ABSOLUTE`` seconds after login, whichever comes first.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from app.api.errors import Forbidden
from app.core.errors import InvalidToken
from app.registry.ports import Database
from app.registry.services.common import secret_hash
from app.store import browser_sessions, people
from app.store.models import BrowserSession

COOKIE = "agentauth_session"
IDLE = 30 * 60
ABSOLUTE = 12 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HumanSession = BrowserSession  # what routes call a human's browser session


async def start_session(
    database: Database, issuer: str, response: Response, human_id: str, *, now: int
) -> str:
    """Open a session for ``human_id`` and set its cookie on ``response``; returns its CSRF
    token. The cookie is ``Secure`` unless ``issuer`` is plain-http localhost."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    async with database.sessions() as session, session.begin():
        browser_sessions.add(
            session, id_hash=secret_hash(token), human_id=human_id, csrf_token=csrf, now=now
        )
    parts = urlsplit(issuer)
    # Secure everywhere except plain-http localhost during development.
    secure = not (parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1"))
    response.set_cookie(
        COOKIE, token, max_age=ABSOLUTE, path="/", secure=secure, httponly=True, samesite="strict"
    )
    return csrf


async def end_session(database: Database, request: Request, response: Response, now: int) -> None:
    token = request.cookies.get(COOKIE)
    if token:
        async with database.sessions() as session, session.begin():
            row = await browser_sessions.by_hash(session, secret_hash(token))
            if row is not None:
                row.ended_at = now
    response.delete_cookie(COOKIE, path="/")


async def live_session(database: Database, request: Request, now: int) -> BrowserSession:
    """The live session of the calling human; state-changing calls also need the CSRF header."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise InvalidToken("Log in first.")
    async with database.sessions() as session, session.begin():
        row = await browser_sessions.by_hash(session, secret_hash(token))
        if (
            row is None
            or await people.active_human(session, row.human_id) is None
            or row.ended_at is not None
            or now - row.last_seen_at > IDLE
            or now - row.created_at > ABSOLUTE
        ):
            raise InvalidToken("The session has expired; log in again.")
        row.last_seen_at = now
    if request.method not in SAFE_METHODS:
        sent = request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(sent.encode(), row.csrf_token.encode()):
            raise Forbidden("Missing or wrong X-CSRF-Token header.")
    return row


async def optional_session(database: Database, request: Request, now: int) -> BrowserSession | None:
    """The live session of the calling human, or None for a page that then asks to log in."""
    try:
        return await live_session(database, request, now)
    except InvalidToken:
        return None
