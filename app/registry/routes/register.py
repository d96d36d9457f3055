"""``POST /register``: RFC 7591 dynamic registration.

With an enrollment token (a one-time initial access token) any kind of client registers and
belongs to the token's owner. Without one, the registration policy decides: ``open-public``
admits public clients (``token_endpoint_auth_method: none``), counted per address;
``enrollment-token`` and ``closed`` admit nobody (docs/api.md "Registration").
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from app.api.bodies import read_json
from app.api.errors import Forbidden, json_response
from app.core.client_metadata import SECRET_METHODS, validate_client_metadata
from app.core.errors import InvalidClientMetadata, InvalidToken, www_authenticate
from app.registry.grants import grant_types as grant_types_supported
from app.registry.services import audit
from app.registry.services.common import new_id, new_secret, secret_hash
from app.registry.state import NowDep, RegistryDep
from app.store import agents, people

router = APIRouter()


def _validate(body: dict[str, Any]) -> dict[str, Any]:
    return validate_client_metadata(body, known_grants=grant_types_supported())


def _invalid_token(description: str) -> InvalidToken:
    challenge = www_authenticate("Bearer", error="invalid_token", description=description)
    return InvalidToken(description, headers={"WWW-Authenticate": challenge})


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _invalid_token("An enrollment token is required (Authorization: Bearer).")
    return token.strip()


def _enrollment_token(request: Request) -> str | None:
    """The initial access token, or None when the request carries no Authorization."""
    if "authorization" not in request.headers:
        return None
    return _bearer(request)


@router.post("/register")
async def register(request: Request, registry: RegistryDep, now: NowDep) -> Response:
    policy = registry.settings.registration_policy
    if policy == "closed":
        raise Forbidden("Client registration is closed on this server.")
    async with registry.limits.counting_failures(request, "register"):
        token = _enrollment_token(request)
        if token is None and policy != "open-public":
            raise _invalid_token("An enrollment token is required (Authorization: Bearer).")
    if token is None:
        await registry.limits.per_address(request, "register")
    metadata = _validate(await read_json(request, InvalidClientMetadata))
    if token is None and metadata["token_endpoint_auth_method"] != "none":  # noqa: S105
        raise InvalidClientMetadata(
            "Without an enrollment token only public clients register"
            " (token_endpoint_auth_method none)."
        )
    secret = new_secret() if metadata["token_endpoint_auth_method"] in SECRET_METHODS else None
    async with registry.sessions() as session, session.begin():
        owner_id = None
        if token is not None:
            async with registry.limits.counting_failures(request, "register"):
                owner = await people.claim_enrollment_token(session, secret_hash(token), now)
                if owner is None:
                    raise _invalid_token("The enrollment token is invalid, used or expired.")
                owner_id = owner.id
        agent = agents.add(
            session,
            agents.new(
                agent_id=new_id("agt_"),
                owner_id=owner_id,
                metadata=metadata,
                secret_hash=secret_hash(secret) if secret else None,
                now=now,
            ),
        )
        if token is not None:
            await people.note_enrolled_agent(session, secret_hash(token), agent.id)
        await audit.append(
            session,
            "agent.registered",
            actor=owner_id or "open-registration",
            subject=agent.id,
            now=now,
            data={
                "client_name": agent.client_name,
                "token_endpoint_auth_method": metadata["token_endpoint_auth_method"],
            },
        )
    body: dict[str, Any] = {"client_id": agent.id, "client_id_issued_at": now, **metadata}
    if secret is not None:
        body["client_secret"] = secret
        body["client_secret_expires_at"] = 0
    return json_response(body, 201)
