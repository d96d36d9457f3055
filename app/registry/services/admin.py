"""Operations shared by the admin API and the human's approval API."""

from __future__ import annotations

import contextlib
import re
import secrets
from typing import Any

from app.api.errors import Conflict, NotFound
from app.cache.base import CacheUnavailable, RevocationChannel
from app.core.capabilities import check_type_schema, parse_authorization_details
from app.core.errors import InvalidAuthorizationDetails, InvalidRequest
from app.core.jwk import JWKError, parse_jwks
from app.core.keys import SigningKey
from app.core.resources import canonical_resource
from app.registry.ports import Database
from app.registry.services import audit, revocation
from app.registry.services.common import new_id, new_secret, secret_hash
from app.registry.services.keys import KeyManager
from app.store import agents, grants, people, resource_servers
from app.store.models import Agent, Grant, Human, ResourceServer

ENROLLMENT_TTL = (60, 86_400, 30 * 86_400)
RS_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
MAX_TYPES = 16
MAX_SCOPES = 64
RS_MEMBERS = frozenset(
    {
        "name",
        "resource",
        "authorization_details_types",
        "token_endpoint_auth_method",
        "jwks",
        "dpop_required",
        "scopes",
    }
)
_SCOPE_NAME = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]{1,128}$")  # RFC 6749 §3.3 scope-token


def _string(body: dict[str, Any], name: str, limit: int, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise InvalidRequest(f"{name} must be a string of 1 to {limit} characters.")
    return value


# One @, a local part and a domain with a dot, no spaces or control characters: enough to
# catch a typo; the address is only shown, never mailed by the registry.
_EMAIL = re.compile(r"^[^@\s\x00-\x1f]+@[^@\s\x00-\x1f]+\.[^@\s\x00-\x1f.]+$")


async def create_human(
    database: Database, body: dict[str, Any], *, invite_ttl: int, now: int
) -> tuple[Human, str]:
    name = _string(body, "display_name", 200)
    email = _string(body, "email", 320, required=False)
    if email is not None and not _EMAIL.match(email):
        raise InvalidRequest("email must be an address such as alice@example.com.")
    token = new_secret()
    human = Human(
        id=new_id("usr_"),
        display_name=name or "",
        email=email,
        user_handle=secrets.token_bytes(32),
        created_at=now,
    )
    async with database.sessions() as session, session.begin():
        await people.add_invited_human(
            session,
            human,
            invite_hash=secret_hash(token),
            invite_expires_at=now + invite_ttl,
        )
        await audit.append(session, "human.invited", actor="admin", subject=human.id, now=now)
    return human, token


def _capability_types(body: dict[str, Any]) -> dict[str, Any]:
    types = body.get("authorization_details_types", {})
    if not isinstance(types, dict) or len(types) > MAX_TYPES:
        raise InvalidRequest(
            f"authorization_details_types must map up to {MAX_TYPES} types to schemas."
        )
    for name, schema in types.items():
        if name == "api" or not 0 < len(name) <= 256:
            raise InvalidRequest("Capability type names are 1 to 256 characters and not 'api'.")
        try:
            check_type_schema(schema)
        except ValueError as exc:
            raise InvalidRequest(f"Schema for {name[:80]}: {exc}") from None
    return types


def _scopes(body: dict[str, Any], resource: str, types: dict[str, Any]) -> dict[str, Any]:
    """scope → the capabilities it stands for, each a valid ``authorization_details`` object
    at this resource (``locations`` is added when the scope is asked for)."""
    scopes = body.get("scopes", {})
    if not isinstance(scopes, dict) or len(scopes) > MAX_SCOPES:
        raise InvalidRequest(f"scopes must map up to {MAX_SCOPES} scope names to capabilities.")
    for name, templates in scopes.items():
        if not _SCOPE_NAME.match(name):
            raise InvalidRequest(f"Scope name {name[:40]!r} is not an RFC 6749 scope token.")
        if not isinstance(templates, list) or not templates:
            raise InvalidRequest(f"Scope {name}: a non-empty list of capabilities.")
        if any(not isinstance(t, dict) or "locations" in t for t in templates):
            raise InvalidRequest(f"Scope {name}: capabilities are objects without locations.")
        try:
            parse_authorization_details(
                [{**t, "locations": [resource]} for t in templates], {resource: types}
            )
        except InvalidAuthorizationDetails as exc:
            raise InvalidRequest(f"Scope {name}: {exc.description}") from None
    return scopes


async def create_resource_server(
    database: Database, body: dict[str, Any], *, now: int
) -> tuple[ResourceServer, str | None]:
    unknown = sorted(set(body) - RS_MEMBERS)
    if unknown:
        raise InvalidRequest(f"Unknown member: {unknown[0][:80]}.")
    name = _string(body, "name", 200)
    try:
        resource = canonical_resource(body.get("resource"))
    except ValueError as exc:
        raise InvalidRequest(f"resource: {exc}.") from None
    method = body.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in RS_AUTH_METHODS:
        raise InvalidRequest(
            f"token_endpoint_auth_method must be one of {', '.join(RS_AUTH_METHODS)}."
        )
    jwks = body.get("jwks")
    secret = None
    if method == "private_key_jwt":
        try:
            parse_jwks(jwks)
        except JWKError as exc:
            raise InvalidRequest(f"jwks: {exc}.") from None
    else:
        secret, jwks = new_secret(), None
    dpop_required = body.get("dpop_required", True)
    if not isinstance(dpop_required, bool):
        raise InvalidRequest("dpop_required must be a boolean.")
    types = _capability_types(body)
    server = ResourceServer(
        id=new_id("rs_"),
        name=name or "",
        resource=resource,
        auth_method=method,
        secret_hash=secret_hash(secret) if secret else None,
        jwks=jwks,
        capability_types=types,
        dpop_required=dpop_required,
        scopes=_scopes(body, resource, types),
        created_at=now,
    )
    async with database.sessions() as session, session.begin():
        try:
            await resource_servers.add(session, server)
        except resource_servers.ResourceTaken:
            raise Conflict("A resource server with this resource already exists.") from None
        await audit.append(
            session,
            "resource_server.created",
            actor="admin",
            subject=server.id,
            now=now,
            data={"resource": resource},
        )
    return server, secret


async def create_enrollment_token(
    database: Database, owner: str, expires_in: object, *, created_by: str, now: int
) -> tuple[str, int]:
    low, default, high = ENROLLMENT_TTL
    ttl = default if expires_in is None else expires_in
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not low <= ttl <= high:
        raise InvalidRequest(f"expires_in must be an integer from {low} to {high}.")
    token = new_secret()
    async with database.sessions() as session, session.begin():
        if await people.active_human(session, owner) is None:
            raise InvalidRequest("owner must be an active human.")
        people.add_enrollment_token(
            session,
            token_hash=secret_hash(token),
            owner_id=owner,
            created_by=created_by,
            now=now,
            expires_at=now + ttl,
        )
        await audit.append(
            session, "enrollment_token.created", actor=created_by, subject=owner, now=now
        )
    return token, now + ttl


async def disable_agent(
    database: Database,
    events: RevocationChannel,
    client_id: str,
    *,
    actor: str,
    now: int,
    owner: str | None = None,
) -> Agent:
    async with database.sessions() as session, session.begin():
        agent = await agents.agent(session, client_id, lock=True)
        if agent is None or (owner is not None and agent.owner_id != owner):
            raise NotFound("No such agent.")
        rows = await revocation.disable_agent(session, agent, now)
        await audit.append(session, "agent.disabled", actor=actor, subject=client_id, now=now)
    await revocation.publish(events, database, rows, now)
    return agent


async def revoke_grant(
    database: Database,
    events: RevocationChannel,
    grant_id: str,
    *,
    actor: str,
    now: int,
    owner: str | None = None,
    reason: str | None = None,
) -> Grant:
    """Revoke a grant (and its token family), audit it once, publish it after the commit."""
    async with database.sessions() as session, session.begin():
        grant = await grants.grant(session, grant_id, lock=True)
        if grant is None or (owner is not None and grant.human_id != owner):
            raise NotFound("No such grant.")
        rows = await revocation.revoke_grant(session, grant, now)
        if rows:
            data = {"reason": reason} if reason else None
            await audit.append(
                session, "grant.revoked", actor=actor, subject=grant_id, now=now, data=data
            )
    await revocation.publish(events, database, rows, now)
    return grant


async def rotate_keys(
    database: Database, keys: KeyManager, events: RevocationChannel, prepublish: int, *, now: int
) -> SigningKey:
    async with database.sessions() as session, session.begin():
        key = await keys.add_next_key(session, now=now, prepublish=prepublish)
        await audit.append(
            session,
            "keys.rotated",
            actor="admin",
            subject=key.kid,
            now=now,
            data={"activates_at": key.activates_at},
        )
    await keys.load(database.sessions, now)
    with contextlib.suppress(CacheUnavailable):  # verifiers also refresh on an unknown kid
        await events.publish_key_change(key.kid)
    return key
