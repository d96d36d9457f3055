"""``POST /register``: RFC 7591 dynamic registration behind a one-time enrollment token."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from app.api.bodies import read_json
from app.api.errors import json_response
from app.core.errors import InvalidClientMetadata, InvalidToken, www_authenticate
from app.core.jwk import JWKError, parse_jwks
from app.core.text import check_display_text
from app.registry.grants import grant_types as grant_types_supported
from app.registry.services import audit
from app.registry.services.common import new_id, secret_hash
from app.registry.services.limits import counting_failures
from app.registry.state import RegistryDep
from app.store.models import Agent, EnrollmentToken, Human

router = APIRouter()
MAX_JWKS_BYTES = 8 * 1024  # ten P-256 keys with long kids take about 3 KB
STRING_FIELDS = {"software_id": 200, "software_version": 200, "client_uri": 512, "logo_uri": 512}


def _bad(message: str) -> InvalidClientMetadata:
    return InvalidClientMetadata(message)


def _shown(text: str, name: str) -> None:
    """Metadata that the approval page shows carries no control or format character."""
    try:
        check_display_text(text, name)
    except ValueError as exc:
        raise _bad(f"{exc}.") from None


def _validate(body: dict[str, Any]) -> dict[str, Any]:
    """RFC 7591 §2 metadata, with AgentAuth's policy: private_key_jwt, DPoP-bound, jwks only."""
    name = body.get("client_name")
    if not isinstance(name, str) or not 0 < len(name) <= 200:
        raise _bad("client_name is required (1 to 200 characters).")
    _shown(name, "client_name")
    if "jwks_uri" in body:
        raise _bad("jwks_uri is not supported; send the public keys in jwks.")
    if len(json.dumps(body.get("jwks"), separators=(",", ":"))) > MAX_JWKS_BYTES:
        raise _bad(f"jwks is larger than {MAX_JWKS_BYTES} bytes.")
    try:
        keys = parse_jwks(body.get("jwks"))
    except JWKError as exc:
        raise _bad(f"jwks: {exc}.") from None
    if body.get("token_endpoint_auth_method", "private_key_jwt") != "private_key_jwt":
        raise _bad("token_endpoint_auth_method must be private_key_jwt.")
    if body.get("dpop_bound_access_tokens", True) is not True:
        raise _bad("dpop_bound_access_tokens must be true: every token is DPoP-bound.")
    known = grant_types_supported()
    grant_types = body.get("grant_types", known)
    if not isinstance(grant_types, list) or not grant_types or not set(grant_types) <= set(known):
        raise _bad(f"grant_types must be a non-empty subset of {', '.join(known)}.")
    metadata: dict[str, Any] = {
        "client_name": name,
        # Only the validated public members are kept: nothing else of the submitted set
        # (an x5c chain, unknown members) is stored or echoed.
        "jwks": {"keys": [key.to_dict() for key in keys.values()]},
        "token_endpoint_auth_method": "private_key_jwt",
        "dpop_bound_access_tokens": True,
        "grant_types": sorted(set(grant_types), key=known.index),
    }
    for field, limit in STRING_FIELDS.items():
        value = body.get(field)
        if value is not None:
            if not isinstance(value, str) or len(value) > limit:
                raise _bad(f"{field} must be a string of at most {limit} characters.")
            _shown(value, field)
            metadata[field] = value
    contacts = body.get("contacts")
    if contacts is not None:
        if (
            not isinstance(contacts, list)
            or len(contacts) > 10
            or not all(isinstance(c, str) and 0 < len(c) <= 320 for c in contacts)
        ):
            raise _bad("contacts must be a list of at most 10 strings.")
        for contact in contacts:
            _shown(contact, "contacts")
        metadata["contacts"] = contacts
    return metadata


def _invalid_token(description: str) -> InvalidToken:
    challenge = www_authenticate("Bearer", error="invalid_token", description=description)
    return InvalidToken(description, headers={"WWW-Authenticate": challenge})


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _invalid_token("An enrollment token is required (Authorization: Bearer).")
    return token.strip()


async def _claim_token(session: AsyncSession, token: str, now: int) -> str:
    """Consume the enrollment token (one conditional UPDATE) and return its active owner."""
    claimed = await session.execute(
        update(EnrollmentToken)
        .where(
            EnrollmentToken.token_hash == secret_hash(token),
            EnrollmentToken.used_at.is_(None),
            EnrollmentToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(EnrollmentToken.owner_id)
    )
    owner_id = claimed.scalar_one_or_none()
    owner = await session.get(Human, owner_id) if owner_id else None
    if owner is None or owner.status != "active":
        raise _invalid_token("The enrollment token is invalid, used or expired.")
    return str(owner_id)


@router.post("/register")
async def register(request: Request, registry: RegistryDep) -> Response:
    async with counting_failures(registry, request, "register"):
        token = _bearer(request)
    metadata = _validate(await read_json(request, InvalidClientMetadata))
    now = registry.now()
    async with registry.sessions() as session, session.begin():
        async with counting_failures(registry, request, "register"):
            owner_id = await _claim_token(session, token, now)
        agent = Agent(
            id=new_id("agt_"),
            owner_id=owner_id,
            client_name=metadata["client_name"],
            client_metadata=metadata,
            jwks=metadata["jwks"],
            created_at=now,
        )
        session.add(agent)
        await session.execute(
            update(EnrollmentToken)
            .where(EnrollmentToken.token_hash == secret_hash(token))
            .values(agent_id=agent.id)
        )
        await audit.append(
            session,
            "agent.registered",
            actor=owner_id,
            subject=agent.id,
            now=now,
            data={"client_name": agent.client_name},
        )
    body = {"client_id": agent.id, "client_id_issued_at": now, **metadata}
    return json_response(body, 201)
