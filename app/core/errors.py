"""OAuth errors, one class per error code we emit.

Each error carries its HTTP status, its headers (``WWW-Authenticate``, ``DPoP-Nonce``) and two
texts: ``description`` is public and goes into ``error_description``; ``detail`` is for logs
only and never leaves the process. Rendering happens in exactly one place (the HTTP layer)
through :meth:`OAuthError.body` and :attr:`OAuthError.headers`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import ClassVar

# RFC 6749 §5.2: error_description uses %x20-21 / %x23-5B / %x5D-7E only.
_UNSAFE_DESCRIPTION = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
_MAX_DESCRIPTION = 300


def safe_description(text: str) -> str:
    """Return ``text`` restricted to the RFC 6749 §5.2 ``error_description`` alphabet, which
    has no double quote or backslash: they become ``'`` and ``/`` (anything else outside it
    ``?``), so a quoted name still reads as one."""
    cleaned = _UNSAFE_DESCRIPTION.sub("?", text.replace('"', "'").replace("\\", "/"))
    return cleaned[:_MAX_DESCRIPTION]


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def www_authenticate(
    scheme: str,
    *,
    error: str | None = None,
    description: str | None = None,
    algs: Iterable[str] = (),
    realm: str | None = None,
    resource_metadata: str | None = None,
    scope: str | None = None,
) -> str:
    """Build a ``WWW-Authenticate`` challenge (RFC 6750 §3 with ``scope``, RFC 9449 §7.1;
    RFC 9728 §5.1 ``resource_metadata``)."""
    params: list[str] = []
    if realm is not None:
        params.append(f"realm={_quote(realm)}")
    if error is not None:
        params.append(f"error={_quote(error)}")
    if description:
        params.append(f"error_description={_quote(safe_description(description))}")
    alg_list = " ".join(algs)
    if alg_list:
        params.append(f"algs={_quote(alg_list)}")
    if resource_metadata is not None:
        params.append(f"resource_metadata={_quote(resource_metadata)}")
    if scope:
        params.append(f"scope={_quote(scope)}")
    return f"{scheme} {', '.join(params)}" if params else scheme


class OAuthError(Exception):
    """Base class: an RFC-registered error code with its status and headers."""

    error: ClassVar[str] = "server_error"
    status_code: ClassVar[int] = 400
    default_description: ClassVar[str] = "The request could not be processed."

    def __init__(
        self,
        description: str | None = None,
        *,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
        status_code: int | None = None,
    ) -> None:
        self.description = safe_description(description or self.default_description)
        self.detail = detail or self.description
        self._headers = dict(headers or {})
        self.status = status_code or self.status_code
        super().__init__(f"{self.error}: {self.detail}")

    @property
    def headers(self) -> Mapping[str, str]:
        return MappingProxyType(self._headers)

    def body(self) -> dict[str, str]:
        """The RFC 6749 §5.2 JSON body."""
        return {"error": self.error, "error_description": self.description}


# RFC 6749 §5.2 -----------------------------------------------------------------------------


class InvalidRequest(OAuthError):
    """RFC 6749 §5.2 / RFC 8693 §2.2.2: malformed request or unacceptable subject/actor token."""

    error = "invalid_request"
    default_description = "The request is malformed."


class InvalidClient(OAuthError):
    """RFC 6749 §5.2, RFC 7523 §3.2: client authentication failed (401)."""

    error = "invalid_client"
    status_code = 401
    default_description = "Client authentication failed."


class InvalidGrant(OAuthError):
    """RFC 6749 §5.2: the grant or refresh token is invalid, expired or revoked."""

    error = "invalid_grant"
    default_description = "The grant is invalid, expired or revoked."


class UnauthorizedClient(OAuthError):
    """RFC 6749 §5.2: the client may not use this grant type."""

    error = "unauthorized_client"
    default_description = "The client is not allowed to use this grant type."


class UnsupportedGrantType(OAuthError):
    """RFC 6749 §5.2: unknown grant type."""

    error = "unsupported_grant_type"
    default_description = "The grant type is not supported."


class InvalidScope(OAuthError):
    """RFC 6749 §5.2: the requested scope is invalid or exceeds the grant."""

    error = "invalid_scope"
    default_description = "The requested scope is invalid."


class AccessDenied(OAuthError):
    """RFC 6749 §4.1.2.1 / OpenID CIBA §11: the human denied the request."""

    error = "access_denied"
    default_description = "The request was denied."


class ServerError(OAuthError):
    """Anything unexpected; the description never carries internal detail."""

    error = "server_error"
    status_code = 500
    default_description = "An internal error occurred."


class TemporarilyUnavailable(OAuthError):
    """A dependency needed to decide safely is unavailable: fail closed (503)."""

    error = "temporarily_unavailable"
    status_code = 503
    default_description = "The service is temporarily unavailable."


# RFC 8707, RFC 9396 -------------------------------------------------------------------------


class InvalidTarget(OAuthError):
    """RFC 8707 §2: the requested resource or audience is invalid or not permitted."""

    error = "invalid_target"
    default_description = "The requested resource is invalid or not permitted."


class InvalidAuthorizationDetails(OAuthError):
    """RFC 9396 §5: malformed, unknown or excessive ``authorization_details``."""

    error = "invalid_authorization_details"
    default_description = "The authorization_details are invalid."


# RFC 9449 (DPoP) -----------------------------------------------------------------------------


class InvalidDPoPProof(OAuthError):
    """RFC 9449 §5 / §7.1: the DPoP proof failed a §4.3 check."""

    error = "invalid_dpop_proof"
    default_description = "The DPoP proof is invalid."


class UseDPoPNonce(OAuthError):
    """RFC 9449 §8: a (fresh) server nonce is required; carries exactly one ``DPoP-Nonce``."""

    error = "use_dpop_nonce"
    default_description = "A DPoP nonce is required."

    def __init__(self, nonce: str, description: str | None = None, *, detail: str | None = None):
        super().__init__(description, detail=detail, headers={"DPoP-Nonce": nonce})
        self.nonce = nonce


# OpenID CIBA §11 -----------------------------------------------------------------------------


class AuthorizationPending(OAuthError):
    """CIBA §11: the human has not decided yet."""

    error = "authorization_pending"
    default_description = "The authorization request is still pending."


class SlowDown(OAuthError):
    """CIBA §11: the client polls faster than ``interval``."""

    error = "slow_down"
    default_description = "Polling too fast; increase the interval."


class ExpiredToken(OAuthError):
    """CIBA §11: the ``auth_req_id`` expired before a decision."""

    error = "expired_token"
    default_description = "The authorization request has expired."


class UnknownUserId(OAuthError):
    """CIBA §13: ``login_hint`` names no known human."""

    error = "unknown_user_id"
    default_description = "The user is unknown."


# RFC 7009, RFC 7591, RFC 6750 ------------------------------------------------------------------


class UnsupportedTokenType(OAuthError):
    """RFC 7009 §2.2.1: the token type cannot be revoked."""

    error = "unsupported_token_type"
    default_description = "The token type is not supported."


class InvalidClientMetadata(OAuthError):
    """RFC 7591 §3.2.2: a client metadata field is invalid."""

    error = "invalid_client_metadata"
    default_description = "The client metadata is invalid."


class InvalidRedirectUri(InvalidClientMetadata):
    """RFC 7591 §3.2.2: a redirect URI is invalid."""

    error = "invalid_redirect_uri"
    default_description = "A redirect URI is invalid."


class InvalidToken(OAuthError):
    """RFC 6750 §3.1: the access token (or initial access token) is invalid (401)."""

    error = "invalid_token"
    status_code = 401
    default_description = "The access token is invalid."


class InsufficientScope(OAuthError):
    """RFC 6750 §3.1: the token lacks the capability the request needs (403)."""

    error = "insufficient_scope"
    status_code = 403
    default_description = "The token does not allow this request."


ALL_ERRORS: tuple[type[OAuthError], ...] = (
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    ServerError,
    TemporarilyUnavailable,
    InvalidTarget,
    InvalidAuthorizationDetails,
    InvalidDPoPProof,
    UseDPoPNonce,
    AuthorizationPending,
    SlowDown,
    ExpiredToken,
    UnknownUserId,
    UnsupportedTokenType,
    InvalidClientMetadata,
    InvalidToken,
    InsufficientScope,
)
