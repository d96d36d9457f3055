"""Client metadata (RFC 7591 §2) for every kind of client, and redirect-URI rules.

Three kinds of client share one record (docs/protocol.md "Clients"):

- **agents** authenticate with ``private_key_jwt`` and their registered keys;
- **confidential clients** hold a secret (``client_secret_basic`` / ``client_secret_post``);
- **public clients** (``none``) prove nothing at the token endpoint: PKCE and, when they use
  it, DPoP protect their tokens. They use the authorization-code grant only.

Redirect URIs follow OAuth 2.1 §2.3.1 and RFC 8252: ``web`` clients use ``https``; ``native``
clients use ``http`` on a loopback address (any port at authorization time), a private-use
scheme (``com.example.app:/cb``) or ``https``. A fragment is never allowed.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from app.core.errors import InvalidClientMetadata, InvalidRedirectUri
from app.core.jwk import JWKError, parse_jwks
from app.core.text import check_display_text
from app.core.urns import AUTHORIZATION_CODE_GRANT, CIBA_GRANT, REFRESH_GRANT

AUTH_METHODS = ("private_key_jwt", "client_secret_basic", "client_secret_post", "none")
SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post"})
PUBLIC_GRANTS = (AUTHORIZATION_CODE_GRANT, REFRESH_GRANT)
MAX_JWKS_BYTES = 8 * 1024  # ten P-256 keys with long kids take about 3 KB
MAX_REDIRECT_URIS = 10
MAX_URI_CHARS = 512
STRING_FIELDS = {
    "software_id": 200,
    "software_version": 200,
    "client_uri": 512,
    "logo_uri": 512,
    "tos_uri": 512,
    "policy_uri": 512,
}
DPOP_KEY_POLICIES = ("any", "registered")


def _bad(message: str) -> InvalidClientMetadata:
    return InvalidClientMetadata(message)


def _shown(text: str, name: str) -> None:
    """Metadata that the approval page shows carries no control or format character."""
    try:
        check_display_text(text, name)
    except ValueError as exc:
        raise _bad(f"{exc}.") from None


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def redirect_kind(uri: str) -> str:
    """``https``, ``loopback`` (http on a loopback host) or ``private-use``; raises
    ``ValueError`` for anything else."""
    if not isinstance(uri, str) or not uri or len(uri) > MAX_URI_CHARS:
        raise ValueError(f"a redirect URI is 1 to {MAX_URI_CHARS} characters")
    if any(c.isspace() or ord(c) < 0x21 or ord(c) > 0x7E for c in uri):
        raise ValueError("a redirect URI is ASCII without spaces")
    parts = urlsplit(uri)
    if "#" in uri:
        raise ValueError("a redirect URI must not have a fragment")
    scheme = parts.scheme.lower()
    if scheme == "https":
        if not parts.hostname or parts.username is not None:
            raise ValueError("an https redirect URI needs a host and no user information")
        return "https"
    if scheme == "http":
        if not parts.hostname or not is_loopback_host(parts.hostname):
            raise ValueError("an http redirect URI must be on a loopback address")
        return "loopback"
    if "." in scheme and scheme not in ("javascript", "data", "file"):
        return "private-use"  # RFC 8252 §7.1: a reverse domain name
    raise ValueError("a redirect URI uses https, http on loopback, or a private-use scheme")


def check_redirect_uris(raw: object, application_type: str) -> list[str]:
    if (
        not isinstance(raw, list)
        or not 0 < len(raw) <= MAX_REDIRECT_URIS
        or not all(isinstance(u, str) for u in raw)
    ):
        raise _bad(f"redirect_uris must be a list of 1 to {MAX_REDIRECT_URIS} URIs.")
    for uri in raw:
        try:
            kind = redirect_kind(uri)
        except ValueError as exc:
            raise InvalidRedirectUri(f"{exc}: {uri[:80]}.") from None
        if application_type == "web" and kind != "https":
            raise InvalidRedirectUri(f"A web client's redirect URIs use https: {uri[:80]}.")
    return list(dict.fromkeys(raw))


def redirect_matches(registered: Sequence[str], uri: str, application_type: str) -> bool:
    """Exact match (OAuth 2.1 §4.1.1), except that a native client's loopback redirect may
    use any port (RFC 8252 §7.3)."""
    if uri in registered:
        return True
    if application_type != "native":
        return False
    try:
        if redirect_kind(uri) != "loopback":
            return False
        asked = urlsplit(uri)
        asked_port = asked.port
    except ValueError:
        return False
    for candidate in registered:
        parts = urlsplit(candidate)
        if parts.scheme != "http" or parts.hostname != asked.hostname:
            continue
        if asked_port is None and "[" not in uri and ":" in asked.netloc:
            continue
        if (parts.path, parts.query) == (asked.path, asked.query):
            return True
    return False


def _application_type(body: dict[str, Any]) -> str:
    """RFC 7591 defaults to ``web``; a client that omits it and registers only loopback or
    private-use redirect URIs is a native client (what MCP clients send)."""
    declared = body.get("application_type")
    if declared is not None:
        if declared not in ("web", "native"):
            raise _bad("application_type must be web or native.")
        return str(declared)
    uris = body.get("redirect_uris")
    if isinstance(uris, list) and uris:
        try:
            if all(redirect_kind(u) in ("loopback", "private-use") for u in uris):
                return "native"
        except ValueError:
            return "web"
    return "web"


def _strings(body: dict[str, Any], metadata: dict[str, Any]) -> None:
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


def _jwks(body: dict[str, Any], *, required: bool) -> dict[str, Any] | None:
    if "jwks_uri" in body:
        raise _bad("jwks_uri is not supported; send the public keys in jwks.")
    if body.get("jwks") is None:
        if required:
            raise _bad("jwks is required for private_key_jwt and for dpop_key_policy registered.")
        return None
    if len(json.dumps(body.get("jwks"), separators=(",", ":"))) > MAX_JWKS_BYTES:
        raise _bad(f"jwks is larger than {MAX_JWKS_BYTES} bytes.")
    try:
        keys = parse_jwks(body.get("jwks"))
    except JWKError as exc:
        raise _bad(f"jwks: {exc}.") from None
    # Only the validated public members are kept: nothing else of the submitted set (an x5c
    # chain, unknown members) is stored or echoed.
    return {"keys": [key.to_dict() for key in keys.values()]}


def validate_client_metadata(
    body: dict[str, Any], *, known_grants: Sequence[str]
) -> dict[str, Any]:
    """RFC 7591 §2 metadata checked against the policy above; the stored form is returned."""
    name = body.get("client_name")
    if not isinstance(name, str) or not 0 < len(name) <= 200:
        raise _bad("client_name is required (1 to 200 characters).")
    _shown(name, "client_name")
    method = body.get("token_endpoint_auth_method", "private_key_jwt")
    if method not in AUTH_METHODS:
        raise _bad(f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}.")
    dpop_key_policy = body.get("dpop_key_policy", "any")
    if dpop_key_policy not in DPOP_KEY_POLICIES:
        raise _bad("dpop_key_policy must be any or registered.")
    jwks = _jwks(body, required=method == "private_key_jwt" or dpop_key_policy == "registered")
    # Agents bind their tokens unless they register false (RFC 9449 §5.2): their tokens from
    # grants that need no proof are then Bearer, only for resource servers that accept Bearer.
    bound = body.get("dpop_bound_access_tokens", method == "private_key_jwt")
    if not isinstance(bound, bool):
        raise _bad("dpop_bound_access_tokens must be a boolean.")
    # CIBA requests are signed by an agent's key (private_key_jwt); public clients have
    # only the authorization-code grant and its refreshes.
    if method == "none":
        allowed = list(PUBLIC_GRANTS)
    elif method in SECRET_METHODS:
        allowed = [g for g in known_grants if g != CIBA_GRANT]
    else:
        allowed = list(known_grants)
    wants_code = "redirect_uris" in body
    default = [
        g for g in allowed if g != AUTHORIZATION_CODE_GRANT or wants_code or method == "none"
    ]
    grant_types = body.get("grant_types", default)
    if (
        not isinstance(grant_types, list)
        or not grant_types
        or not all(isinstance(g, str) for g in grant_types)
        or not set(grant_types) <= set(allowed)
    ):
        raise _bad(f"grant_types must be a non-empty subset of {', '.join(allowed)}.")
    response_types = body.get("response_types", ["code"] if wants_code else [])
    if not isinstance(response_types, list) or not set(response_types) <= {"code"}:
        raise _bad("response_types may only contain code.")
    metadata: dict[str, Any] = {
        "client_name": name,
        "token_endpoint_auth_method": method,
        "dpop_bound_access_tokens": bound,
        "grant_types": sorted(set(grant_types), key=list(known_grants).index),
    }
    if jwks is not None:
        metadata["jwks"] = jwks
    if dpop_key_policy != "any":
        metadata["dpop_key_policy"] = dpop_key_policy
    if AUTHORIZATION_CODE_GRANT in grant_types:
        application_type = _application_type(body)
        metadata["application_type"] = application_type
        metadata["redirect_uris"] = check_redirect_uris(body.get("redirect_uris"), application_type)
        metadata["response_types"] = ["code"]
    elif wants_code:
        raise _bad("redirect_uris need the authorization_code grant.")
    _strings(body, metadata)
    return metadata
