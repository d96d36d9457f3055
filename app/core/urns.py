"""Protocol identifiers, defined once: grant types (RFC 6749 §4.5 and the specifications
that register them), token types (RFC 8693 §3) and the client assertion type (RFC 7523)."""

from __future__ import annotations

CIBA_GRANT = "urn:openid:params:grant-type:ciba"
REFRESH_GRANT = "refresh_token"
AUTHORIZATION_CODE_GRANT = "authorization_code"
CLIENT_CREDENTIALS_GRANT = "client_credentials"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
