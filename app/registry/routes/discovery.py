"""RFC 8414 metadata and the JWK set."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from app.api.errors import json_response
from app.core.metadata import authorization_server_metadata
from app.registry.grants import grant_types
from app.registry.state import RegistryDep
from app.store import resource_servers

router = APIRouter()


@router.get("/.well-known/oauth-authorization-server")
@router.get("/.well-known/openid-configuration")  # the same document: MCP clients try both
async def metadata(registry: RegistryDep) -> Response:
    async with registry.sessions() as session:
        types = await resource_servers.type_names(session)
    document = authorization_server_metadata(
        issuer=registry.settings.issuer,
        verifier_url=registry.settings.verifier_url,
        grant_types=grant_types(),
        capability_types=types,
    )
    return json_response(document, headers={"Cache-Control": "public, max-age=300"})


@router.get("/.well-known/jwks.json")
async def jwks(registry: RegistryDep) -> Response:
    # Shorter than any pre-publication period, so caches learn a next key before it signs.
    return json_response(
        registry.keys.key_set.jwks(registry.now()),
        headers={"Cache-Control": "public, max-age=60"},
    )
