"""Arbitrary JSON thrown at every parser of untrusted input: each one either accepts it or
raises its documented error, never anything else (no 500 can come out of the core)."""

from __future__ import annotations

import contextlib
import functools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.capabilities import parse_authorization_details
from app.core.envelope import parse_limits
from app.core.errors import InvalidAuthorizationDetails
from app.core.jwk import JWKError, KeyCache, parse_jwks, parse_public_jwk, thumbprint
from app.core.tokens import AccessTokenClaims
from tests.factories import Agent

KEYS = st.sampled_from(
    [
        "kty",
        "crv",
        "x",
        "y",
        "d",
        "kid",
        "alg",
        "use",
        "keys",
        "type",
        "locations",
        "actions",
        "identifier",
        "limits",
        "max_amount",
        "budget",
        "rate",
        "time_windows",
        "value",
        "currency",
        "period",
        "days",
        "start",
        "end",
        "time_zone",
        "max_requests",
        "sub",
        "act",
        "iss",
        "aud",
        "exp",
        "iat",
        "jti",
        "cnf",
        "jkt",
        "scope",
        "client_id",
        "grant_id",
        "auth_time",
        "authorization_details",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(
        [
            "EC",
            "P-256",
            "OKP",
            "Ed25519",
            "ES256",
            "api",
            "EUR",
            "day",
            "minute",
            "mon",
            "09:00",
            "UTC",
            "https://shop.example.com",
            "sig",
        ]
    )
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=15,
)
REGISTRY: dict[str, Any] = {"https://shop.example.com": {}}


@given(JSON)
@settings(max_examples=400)
def test_jwk_parsers(value: Any) -> None:
    for parse in (parse_public_jwk, parse_jwks, KeyCache().get):
        with contextlib.suppress(JWKError):
            parse(value)
    if isinstance(value, dict):
        with contextlib.suppress(JWKError):
            thumbprint(value)


@given(JSON)
@settings(max_examples=400)
def test_capability_parsers(value: Any) -> None:
    with contextlib.suppress(InvalidAuthorizationDetails):
        parse_authorization_details(value, REGISTRY)
    with contextlib.suppress(ValueError):
        parse_limits(value)


@given(st.dictionaries(KEYS, JSON, max_size=12))
@settings(max_examples=400)
def test_access_token_claims(value: dict[str, Any]) -> None:
    with contextlib.suppress(ValueError):
        AccessTokenClaims.from_jwt_claims(value)


def test_unhashable_values_where_names_are_expected() -> None:
    import pytest

    with pytest.raises(JWKError, match="alg"):
        parse_public_jwk(Agent().jwk(alg=["ES256"]))
    with pytest.raises(JWKError):
        KeyCache().get(Agent().jwk(use={"sig": 1}))
    with pytest.raises(ValueError, match="period"):
        parse_limits({"rate": {"max_requests": 1, "period": ["minute"]}})
    with pytest.raises(ValueError, match="days"):
        parse_limits(
            {"time_windows": [{"days": [{}], "start": "09:00", "end": "10:00", "time_zone": "UTC"}]}
        )


@functools.cache
def _agent() -> Agent:
    return Agent()  # one key pair for all examples keeps the test fast


@given(st.dictionaries(KEYS, JSON, max_size=4), st.dictionaries(KEYS, JSON, max_size=10))
@settings(max_examples=300)
def test_signed_jwts_with_arbitrary_headers_and_claims(
    header: dict[str, Any], claims: dict[str, Any]
) -> None:
    from app.core.client_auth import unverified_issuer, verify_actor_token, verify_client_assertion
    from app.core.dpop import verify_proof
    from app.core.errors import OAuthError
    from app.core.tokens import verify_access_token
    from tests.factories import ISSUER, NOW

    agent = _agent()
    base_header = {"alg": "ES256", "kid": agent.kid, "jwk": agent.jwk()}
    for typ in ("dpop+jwt", "client-authentication+jwt", "actor+jwt", "at+jwt"):
        payload = json.dumps(claims).encode()
        token = agent.sign_raw({**base_header, "typ": typ, **header}, payload)
        checks = (
            lambda t: verify_proof([t], method="POST", url=f"{ISSUER}/token", now=NOW),
            lambda t: verify_client_assertion(
                t, client_id=agent.client_id, keys=agent.keys, issuer=ISSUER, now=NOW
            ),
            lambda t: verify_actor_token(
                t, client_id=agent.client_id, keys=agent.keys, issuer=ISSUER, now=NOW
            ),
            lambda t: verify_access_token(t, issuer=ISSUER, keys=agent.keys, now=NOW),
            unverified_issuer,
        )
        for check in checks:
            with contextlib.suppress(OAuthError):
                check(token)
