"""What the token endpoint reads and writes, as driver-level statements (see ``app.store.sql``).

The tables are the ORM models' (``app.store.models``); the functions never commit, the caller
owns the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.store.sql import Db, Row


@dataclass(frozen=True, slots=True)
class AgentRecord:
    id: str
    owner_id: str | None  # None for a public or metadata-document client
    client_metadata: dict[str, Any]
    jwks: dict[str, Any]
    secret_hash: str | None = None

    @property
    def auth_method(self) -> str:
        return str(self.client_metadata.get("token_endpoint_auth_method", "private_key_jwt"))


@dataclass(frozen=True, slots=True)
class GrantRecord:
    id: str
    agent_id: str
    human_id: str
    authorization_details: list[Any]
    max_delegation_depth: int
    auth_time: int
    expires_at: int
    status: str
    scope: str | None = None

    def active(self, now: int) -> bool:
        return self.status == "active" and self.expires_at > now


@dataclass(frozen=True, slots=True)
class PollRecord:
    """A CIBA request as one poll found it, with the time of the poll before."""

    auth_req_id: str
    agent_id: str
    status: str
    expires_at: int
    interval: int
    grant_id: str | None
    previous_poll: int | None


_ACTIVE_AGENT = """
SELECT a.id, a.owner_id, a.client_metadata, a.jwks, a.secret_hash FROM agents a
LEFT JOIN humans h ON h.id = a.owner_id
WHERE a.id = :id AND a.status = 'active' AND (a.owner_id IS NULL OR h.status = 'active')
"""
_GRANT_COLUMNS = (
    "g.id, g.agent_id, g.human_id, g.authorization_details, g.max_delegation_depth,"
    " g.auth_time, g.expires_at, g.status, g.scope"
)
_SELECT_GRANT = f"SELECT {_GRANT_COLUMNS} FROM grants g"  # noqa: S608 - constants only
_GRANT = _SELECT_GRANT + " WHERE g.id = :id"
_GRANT_OF_ACCESS_TOKEN = (
    _SELECT_GRANT + " JOIN access_tokens t ON t.grant_id = g.id"
    " WHERE t.jti = :jti AND t.revoked_at IS NULL"
)
_ROTATE = (
    "UPDATE refresh_tokens SET status = 'rotated', used_at = :now"
    " WHERE token_hash = :hash AND agent_id = :agent AND status = 'active'"
)
# Constant fragments only (no input reaches the text):
_ROTATE_WITH_GRANT = (
    f"WITH r AS ({_ROTATE} RETURNING grant_id, family_id, jkt)"  # noqa: S608
    f" SELECT {_GRANT_COLUMNS}, r.family_id, r.jkt AS family_jkt FROM r"
    " JOIN grants g ON g.id = r.grant_id"
)
# An agent's live standing grants, newest first (few: each one a human approved).
_STANDING = (
    _SELECT_GRANT + " WHERE g.agent_id = :agent AND g.standing = :standing"
    " AND g.status = 'active' AND g.expires_at > :now ORDER BY g.created_at DESC LIMIT 50"
)
_POLL = (
    'SELECT auth_req_id, agent_id, status, expires_at, "interval", grant_id,'
    " last_polled_at AS previous_poll FROM grant_requests"
    " WHERE auth_req_id = :id AND agent_id = :agent"
)


async def active_agent(db: Db, client_id: str) -> AgentRecord | None:
    """The client, if it and its owner (when it has one) are both active."""
    row = await db.fetchrow(_ACTIVE_AGENT, {"id": client_id})
    if row is None:
        return None
    return AgentRecord(
        id=row["id"],
        owner_id=row["owner_id"],
        client_metadata=db.json(row["client_metadata"]),
        jwks=db.json(row["jwks"]),
        secret_hash=row["secret_hash"],
    )


def _grant(db: Db, row: Row | None) -> GrantRecord | None:
    if row is None:
        return None
    return GrantRecord(**{**row, "authorization_details": db.json(row["authorization_details"])})


async def grant(db: Db, grant_id: str) -> GrantRecord | None:
    row = await db.fetchrow(_GRANT, {"id": grant_id})
    return _grant(db, row)


async def standing_grants(db: Db, agent_id: str, now: int) -> list[GrantRecord]:
    """The agent's active, unexpired standing grants, newest first."""
    rows = await db.fetchall(_STANDING, {"agent": agent_id, "standing": True, "now": now})
    return [grant for grant in (_grant(db, row) for row in rows) if grant is not None]


async def grant_of_access_token(db: Db, jti: str) -> GrantRecord | None:
    """The grant behind an access token that has not been revoked."""
    row = await db.fetchrow(_GRANT_OF_ACCESS_TOKEN, {"jti": jti})
    return _grant(db, row)


async def record_poll(db: Db, auth_req_id: str, agent_id: str, now: int) -> PollRecord | None:
    """Lock the agent's CIBA request and set its last poll time (``None``: no such request
    for this agent). Row lock on PostgreSQL; SQLite transactions hold the write lock."""
    query = _POLL + " FOR NO KEY UPDATE" if db.postgres else _POLL  # sql.row_lock
    row = await db.fetchrow(query, {"id": auth_req_id, "agent": agent_id})
    if row is None:
        return None
    await db.execute(
        "UPDATE grant_requests SET last_polled_at = :now WHERE auth_req_id = :id",
        {"now": now, "id": auth_req_id},
    )
    return PollRecord(**row)


async def claim_tokens(db: Db, auth_req_id: str, now: int) -> bool:
    """Mark the request's tokens issued; false when another poll already did."""
    claimed = await db.execute(
        "UPDATE grant_requests SET tokens_issued_at = :now"
        " WHERE auth_req_id = :id AND tokens_issued_at IS NULL",
        {"now": now, "id": auth_req_id},
    )
    return claimed == 1


@dataclass(frozen=True, slots=True)
class Rotated:
    """A refresh token just rotated: its family, the DPoP key the family is bound to (None:
    bound to the client's authentication only) and the grant."""

    family_id: str
    jkt: str | None
    grant: GrantRecord


async def rotate_refresh_token(db: Db, token_hash: str, agent_id: str, now: int) -> Rotated | None:
    """Mark an active refresh token of this agent rotated, in one statement, so that of N
    parallel uses exactly one sees it; ``None`` for every other use. PostgreSQL reads the
    grant in the same statement."""
    params = {"now": now, "hash": token_hash, "agent": agent_id}
    if db.postgres:
        row = await db.fetchrow(_ROTATE_WITH_GRANT, params)
        if row is None:
            return None
        family_id, jkt = row.pop("family_id"), row.pop("family_jkt")
    else:
        rotated = await db.fetchrow(_ROTATE + " RETURNING grant_id, family_id, jkt", params)
        if rotated is None:
            return None
        family_id, jkt = rotated["family_id"], rotated["jkt"]
        row = await db.fetchrow(_GRANT, {"id": rotated["grant_id"]})
    found = _grant(db, row)
    return None if found is None else Rotated(family_id, jkt, found)


async def refresh_token_owner(db: Db, token_hash: str) -> tuple[str, str] | None:
    """``(agent_id, grant_id)`` of any refresh token, used or not."""
    row = await db.fetchrow(
        "SELECT agent_id, grant_id FROM refresh_tokens WHERE token_hash = :hash",
        {"hash": token_hash},
    )
    return None if row is None else (row["agent_id"], row["grant_id"])


async def insert_access_token(db: Db, values: dict[str, Any]) -> None:
    """``values``: jti, grant_id, client_id, audience, parent_jti, issued_at, expires_at.
    Deferred (see ``Db.defer``): nothing in the issuing transaction reads it back."""
    await db.defer(
        "INSERT INTO access_tokens"
        " (jti, grant_id, client_id, audience, parent_jti, issued_at, expires_at)"
        " VALUES (:jti, :grant_id, :client_id, :audience, :parent_jti, :issued_at, :expires_at)",
        values,
    )


async def insert_refresh_token(db: Db, values: dict[str, Any]) -> None:
    """``values``: token_hash, family_id, grant_id, agent_id, created_at, expires_at, jkt.
    Deferred like :func:`insert_access_token`."""
    await db.defer(
        "INSERT INTO refresh_tokens"
        " (token_hash, family_id, grant_id, agent_id, status, created_at, expires_at, jkt)"
        " VALUES (:token_hash, :family_id, :grant_id, :agent_id, 'active', :created_at,"
        " :expires_at, :jkt)",
        values,
    )


@dataclass(frozen=True, slots=True)
class CodeRecord:
    """An authorization code as its one successful redemption claimed it, with the request
    it answers (``authorization_request`` of the grant request)."""

    auth_req_id: str
    grant_id: str
    client_id: str
    expires_at: int
    request: dict[str, Any]


async def claim_code(db: Db, code_hash: str, now: int) -> CodeRecord | None:
    """Mark an unused code used, in one statement: of N parallel redemptions exactly one
    sees the code; ``None`` for every other one and for unknown codes."""
    row = await db.fetchrow(
        "UPDATE authorization_codes SET used_at = :now"
        " WHERE code_hash = :hash AND used_at IS NULL"
        " RETURNING auth_req_id, grant_id, client_id, expires_at",
        {"now": now, "hash": code_hash},
    )
    if row is None:
        return None
    request = await db.fetchrow(
        "SELECT authorization_request FROM grant_requests WHERE auth_req_id = :id",
        {"id": row["auth_req_id"]},
    )
    document = db.json(request["authorization_request"]) if request else None
    return CodeRecord(**row, request=document or {})


async def used_code_grant(db: Db, code_hash: str) -> str | None:
    """The grant of a code that exists (used or expired), to revoke it on reuse."""
    row = await db.fetchrow(
        "SELECT grant_id FROM authorization_codes WHERE code_hash = :hash", {"hash": code_hash}
    )
    return None if row is None else str(row["grant_id"])


@dataclass(frozen=True, slots=True)
class ResourceServerRecord:
    id: str
    resource: str
    dpop_required: bool
    scopes: dict[str, Any]


async def resource_server(db: Db, resource: str) -> ResourceServerRecord | None:
    row = await db.fetchrow(
        "SELECT id, resource, dpop_required, scopes FROM resource_servers"
        " WHERE resource = :resource",
        {"resource": resource},
    )
    if row is None:
        return None
    return ResourceServerRecord(
        id=row["id"],
        resource=row["resource"],
        dpop_required=bool(row["dpop_required"]),
        scopes=db.json(row["scopes"]) or {},
    )


async def capability_types(db: Db) -> dict[str, dict[str, Any]]:
    """resource URL → {capability type → JSON Schema} of every registered resource server."""
    rows = await db.fetchall("SELECT resource, capability_types FROM resource_servers")
    return {row["resource"]: db.json(row["capability_types"]) or {} for row in rows}
