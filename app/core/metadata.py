"""RFC 8414 authorization server metadata, built from the server's own allow-lists."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.core.capabilities import BUILTIN_TYPE
from app.core.client_auth import AGENT_JWT_ALGS
from app.core.dpop import DPOP_ALGS

RESOURCE_SERVER_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
# How clients authenticate at /token and /revoke (docs/protocol.md "Clients").
CLIENT_AUTH_METHODS = ("private_key_jwt", "client_secret_basic", "client_secret_post", "none")


def authorization_server_metadata(
    *,
    issuer: str,
    verifier_url: str,
    grant_types: Iterable[str],
    capability_types: Iterable[str] = (),
) -> dict[str, Any]:
    """The metadata document (RFC 8414 §2; RFC 9449 §5.1; RFC 9396 §10; CIBA §4; RFC 9207
    §3; draft-ietf-oauth-client-id-metadata-document).

    Every advertised list is the allow-list the server enforces, never HMAC, and no member is
    an empty array (RFC 8414 §3.2). ``none`` is listed for the token endpoint only: public
    clients of the authorization-code grant send their ``client_id`` alone. Scopes belong
    to resource servers and are published in their RFC 9728 metadata, not here.
    """
    types = sorted({BUILTIN_TYPE, *capability_types})
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "authorization_endpoint": f"{issuer}/authorize",
        "registration_endpoint": f"{issuer}/register",
        "revocation_endpoint": f"{issuer}/revoke",
        "introspection_endpoint": f"{verifier_url}/introspect",
        "backchannel_authentication_endpoint": f"{issuer}/bc-authorize",
        "backchannel_token_delivery_modes_supported": ["poll"],
        "backchannel_user_code_parameter_supported": False,
        "grant_types_supported": list(grant_types),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "client_id_metadata_document_supported": True,
        "token_endpoint_auth_methods_supported": list(CLIENT_AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(AGENT_JWT_ALGS),
        "revocation_endpoint_auth_methods_supported": list(CLIENT_AUTH_METHODS),
        "revocation_endpoint_auth_signing_alg_values_supported": list(AGENT_JWT_ALGS),
        "introspection_endpoint_auth_methods_supported": list(RESOURCE_SERVER_AUTH_METHODS),
        "introspection_endpoint_auth_signing_alg_values_supported": list(AGENT_JWT_ALGS),
        "dpop_signing_alg_values_supported": list(DPOP_ALGS),
        "authorization_details_types_supported": types,
    }
