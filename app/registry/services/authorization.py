"""The authorization-code grant's front half: checking an authorization request (RFC 6749
§4.1.1, RFC 7636, RFC 8707, RFC 9396 §3, RFC 9449 §10) and answering it.

A checked request becomes a :class:`~app.store.models.GrantRequest` like a CIBA request, with
its redirect, PKCE challenge, resources and scope in ``authorization_request``: the human
approves it on the same page, with the same passkey ceremony over the same kind of request
document, and the approval makes the same grant. Approving it also issues a single-use code
(:func:`issue_code`) that the browser carries back to the client.

Errors before the client and its redirect URI are known to be genuine are shown to the
human (:class:`PageError`); every later error goes back to the client (:class:`RedirectError`,
RFC 6749 §4.1.2.1), always with ``iss`` (RFC 9207).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from app.core.capabilities import AuthorizationDetail, TypeRegistry, parse_authorization_details
from app.core.client_metadata import redirect_matches
from app.core.errors import InvalidAuthorizationDetails
from app.core.params import FormParams
from app.core.resources import canonical_resource
from app.core.urns import AUTHORIZATION_CODE_GRANT
from app.registry.services.common import new_secret, secret_hash
from app.store.sql import Db
from app.store.token_store import AgentRecord

CODE_TTL = 60  # seconds an authorization code stays redeemable (OAuth 2.1 §4.1.2)
REQUEST_TTL = 600  # seconds the human has to answer the consent page
MAX_STATE_CHARS = 1024
MAX_SCOPE_CHARS = 1000
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # BASE64URL(SHA-256(verifier)), RFC 7636 §4.2
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")  # RFC 7636 §4.1
_JKT = re.compile(r"^[A-Za-z0-9_-]{43}$")
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]+$")  # RFC 6749 §3.3


class PageError(Exception):
    """An error shown to the human, never redirected: the client or its redirect URI is
    unknown, so a redirect could hand the error (or the human) to an attacker."""

    def __init__(self, heading: str, message: str) -> None:
        super().__init__(message)
        self.heading = heading
        self.message = message


class RedirectError(Exception):
    """An RFC 6749 §4.1.2.1 error for a verified redirect URI."""

    def __init__(self, redirect_uri: str, state: str | None, error: str, description: str):
        super().__init__(f"{error}: {description}")
        self.redirect_uri = redirect_uri
        self.state = state
        self.error = error
        self.description = description

    def location(self, issuer: str) -> str:
        return redirect_location(
            self.redirect_uri,
            {"error": self.error, "error_description": self.description, "state": self.state},
            issuer,
        )


def redirect_location(redirect_uri: str, params: dict[str, str | None], issuer: str) -> str:
    """``redirect_uri`` with the response parameters and ``iss`` (RFC 9207 §2) in its query,
    keeping any query it already has (RFC 6749 §3.1.2)."""
    query = urlencode({k: v for k, v in {**params, "iss": issuer}.items() if v is not None})
    return f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{query}"


@dataclass(frozen=True)
class CheckedRequest:
    """An authorization request whose every part was checked."""

    client: AgentRecord
    details: list[AuthorizationDetail]
    document: dict[str, Any]  # stored as ``authorization_request``


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def pkce_matches(verifier: str, challenge: str) -> bool:
    """RFC 7636 §4.6 with ``S256``, compared in constant time."""
    if not _VERIFIER.match(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)


def _redirect_uri(client: AgentRecord, params: FormParams) -> tuple[str, bool]:
    """The verified redirect URI and whether the request named it."""
    metadata = client.client_metadata
    registered = metadata.get("redirect_uris") or []
    if AUTHORIZATION_CODE_GRANT not in metadata.get("grant_types", []) or not registered:
        raise PageError(
            "This application cannot sign you in here",
            "The application is not registered for the authorization-code flow.",
        )
    asked = params.get("redirect_uri")
    if asked is None:
        if len(registered) != 1:
            raise PageError(
                "The sign-in link is incomplete",
                "The application registered several redirect URIs and named none.",
            )
        return registered[0], False
    if not redirect_matches(registered, asked, metadata.get("application_type", "web")):
        raise PageError(
            "The sign-in link is not valid",
            "The redirect URI is not one the application registered.",
        )
    return asked, True


def _resources(params: FormParams) -> list[str]:
    try:
        return list(dict.fromkeys(canonical_resource(r) for r in params.getlist("resource")))
    except ValueError as exc:
        raise _Refused("invalid_target", f"Invalid resource: {exc}.") from None


class _Refused(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class _Servers:
    """Every registered resource server's scopes and capability types, read once."""

    scopes: dict[str, dict[str, Any]]  # resource → scope → capability templates
    types: TypeRegistry  # resource → capability type → JSON Schema

    def check_known(self, resources: Sequence[str]) -> None:
        unknown = [r for r in resources if r not in self.scopes]
        if unknown:
            raise _Refused("invalid_target", f"Unknown resource: {unknown[0][:200]}.")


async def _servers(db: Db) -> _Servers:
    rows = await db.fetchall("SELECT resource, scopes, capability_types FROM resource_servers")
    return _Servers(
        scopes={row["resource"]: db.json(row["scopes"]) or {} for row in rows},
        types={row["resource"]: db.json(row["capability_types"]) or {} for row in rows},
    )


def _scope_details(
    scope_names: Sequence[str], resources: Sequence[str], scopes: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The capabilities the scopes stand for at the requested resources."""
    details: list[dict[str, Any]] = []
    for name in scope_names:
        found = [r for r in resources if name in scopes[r]]
        if not found:
            raise _Refused("invalid_scope", f"Unknown scope: {name[:100]}.")
        for resource in found:
            for template in scopes[resource][name]:
                details.append({**template, "locations": [resource]})
    return details


async def _capabilities(
    db: Db, params: FormParams, resources: list[str]
) -> tuple[list[AuthorizationDetail], list[str], str | None]:
    """``(capabilities, resources, scope)``: from ``authorization_details``, from ``scope``,
    or, with neither, every scope the resources define."""
    raw_scope = params.get("scope")
    if raw_scope is not None and (
        len(raw_scope) > MAX_SCOPE_CHARS
        or not all(_SCOPE_TOKEN.match(t) for t in raw_scope.split(" ") if t)
    ):
        raise _Refused("invalid_scope", "The scope is malformed.")
    names = list(dict.fromkeys(t for t in (raw_scope or "").split(" ") if t))
    servers = await _servers(db)
    explicit: list[AuthorizationDetail] = []
    if "authorization_details" in params:
        try:
            explicit = parse_authorization_details(params["authorization_details"], servers.types)
        except InvalidAuthorizationDetails as exc:
            raise _Refused(exc.error, exc.description) from None
        locations = list(dict.fromkeys(loc for d in explicit for loc in d.locations))
        if resources and not set(locations) <= set(resources):
            raise _Refused(
                "invalid_target", "authorization_details name a location not in resource."
            )
        resources = resources or locations
    servers.check_known(resources)
    all_scopes = servers.scopes
    if not resources:
        holders = [r for r, defined in all_scopes.items() if names and set(names) <= set(defined)]
        if len(holders) != 1:
            raise _Refused(
                "invalid_target", "Name the resource server with the resource parameter."
            )
        resources = holders
    if not names and not explicit:
        names = sorted({n for r in resources for n in all_scopes[r]})
        if not names:
            raise _Refused("invalid_scope", "Ask for a scope or for authorization_details.")
    from_scopes: list[AuthorizationDetail] = []
    if names:
        try:
            templates = _scope_details(names, resources, all_scopes)
            from_scopes = parse_authorization_details(templates, servers.types)
        except InvalidAuthorizationDetails as exc:
            raise _Refused("invalid_scope", exc.description) from None
    return [*explicit, *from_scopes], resources, " ".join(names) or None


async def check_request(db: Db, client: AgentRecord, params: FormParams) -> CheckedRequest:
    """The checked request of ``client`` (already found from ``client_id``); raises
    :class:`PageError` or :class:`RedirectError`."""
    redirect_uri, named = _redirect_uri(client, params)
    state = params.get("state")
    if state is not None and len(state) > MAX_STATE_CHARS:
        raise PageError("The sign-in link is not valid", "The state parameter is too long.")

    def refused(error: str, description: str) -> RedirectError:
        return RedirectError(redirect_uri, state, error, description)

    response_type = params.get("response_type")
    if response_type is None:
        raise refused("invalid_request", "Missing required parameter: response_type.")
    if response_type != "code":
        raise refused("unsupported_response_type", "Only response_type code is supported.")
    if params.get("response_mode", "query") != "query":
        raise refused("invalid_request", "Only response_mode query is supported.")
    challenge = params.get("code_challenge")
    if challenge is None:
        raise refused("invalid_request", "PKCE is required: send code_challenge (S256).")
    if params.get("code_challenge_method") != "S256":
        raise refused("invalid_request", "code_challenge_method must be S256.")
    if not _CHALLENGE.match(challenge):
        raise refused("invalid_request", "code_challenge must be BASE64URL(SHA-256(verifier)).")
    jkt = params.get("dpop_jkt")
    if jkt is not None and not _JKT.match(jkt):
        raise refused("invalid_request", "dpop_jkt must be a SHA-256 JWK thumbprint.")
    prompt = set((params.get("prompt") or "").split())
    if "none" in prompt:
        raise refused("consent_required", "Every request needs the human's passkey approval.")
    try:
        resources = _resources(params)
        details, resources, scope = await _capabilities(db, params, resources)
    except _Refused as exc:
        raise refused(exc.error, exc.description) from None
    document = {
        "client_id": params.get("client_id"),
        "redirect_uri": redirect_uri,
        "redirect_uri_sent": named,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resources": resources,
        "scope": scope,
        "dpop_jkt": jkt,
    }
    return CheckedRequest(client=client, details=details, document=document)


def new_request_id() -> str:
    return "azr_" + secrets.token_urlsafe(24)


async def issue_code(db: Db, *, auth_req_id: str, grant_id: str, client_id: str, now: int) -> str:
    """A single-use code for the approved request, stored hashed."""
    code = new_secret()
    await db.execute(
        "INSERT INTO authorization_codes"
        " (code_hash, auth_req_id, grant_id, client_id, created_at, expires_at)"
        " VALUES (:hash, :auth_req_id, :grant_id, :client_id, :now, :expires_at)",
        {
            "hash": secret_hash(code),
            "auth_req_id": auth_req_id,
            "grant_id": grant_id,
            "client_id": client_id,
            "now": now,
            "expires_at": now + CODE_TTL,
        },
    )
    return code


def approved_location(document: dict[str, Any], code: str, issuer: str) -> str:
    return redirect_location(
        document["redirect_uri"], {"code": code, "state": document.get("state")}, issuer
    )


def denied_location(document: dict[str, Any], issuer: str) -> str:
    return redirect_location(
        document["redirect_uri"],
        {
            "error": "access_denied",
            "error_description": "The human denied the request.",
            "state": document.get("state"),
        },
        issuer,
    )
