"""Generated hostile input at every parser of untrusted bytes and text: form bodies, strict
JSON, compact JWS, DPoP proofs, client assertions, WebAuthn credentials, client metadata and
redirect URIs. Each either accepts the input or raises its documented error; nothing else
ever escapes (which the endpoints would turn into a 500). 10,000 generated inputs in all
(docs/reliability.md)."""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.client_auth import verify_client_assertion
from app.core.client_metadata import redirect_kind, validate_client_metadata
from app.core.dpop import verify_proof
from app.core.errors import OAuthError
from app.core.jwk import JWKError
from app.core.jws import JWSError, decode_jws, split_compact
from app.core.params import parse_form
from app.core.strict_json import JSONError, parse_json
from app.core.webauthn_credentials import CredentialError, parse_assertion, parse_attestation
from app.registry.grants import grant_types

FAST = settings(max_examples=1250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FORM_BYTES = st.binary(max_size=300) | st.lists(
    st.sampled_from(
        [b"a", b"=", b"&", b"%", b"%00", b"%zz", b"+", b"grant_type", b"\xff", b"resource"]
    ),
    max_size=40,
).map(b"".join)
B64 = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.!", max_size=60
)
JSON_TEXT = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def b64json(value: Any) -> str:
    raw = json.dumps(value, default=str).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@given(FORM_BYTES)
@FAST
def test_form_bodies(raw: bytes) -> None:
    with contextlib.suppress(OAuthError):
        parse_form(raw)


@given(st.binary(max_size=200) | JSON_TEXT.map(lambda v: json.dumps(v).encode()))
@FAST
def test_strict_json(raw: bytes) -> None:
    with contextlib.suppress(JSONError):
        parse_json(raw)


JWT_LIKE = st.one_of(
    st.text(max_size=120),
    st.tuples(B64, B64, B64).map(".".join),
    st.tuples(JSON_TEXT, JSON_TEXT, B64).map(lambda t: f"{b64json(t[0])}.{b64json(t[1])}.{t[2]}"),
)


def _no_key(_: object) -> Any:
    raise JWKError("no such key")  # what a resolver says for a kid it does not know


@given(JWT_LIKE)
@FAST
def test_compact_jws(token: str) -> None:
    with contextlib.suppress(JWSError):
        split_compact(token)
        decode_jws(token, typs=("JWT",), algs=("ES256",), resolve_key=_no_key)


@given(JWT_LIKE)
@FAST
def test_dpop_proofs(proof: str) -> None:
    with contextlib.suppress(OAuthError):
        verify_proof([proof], method="POST", url="https://as.example/token", now=1_000_000)


@given(JWT_LIKE)
@FAST
def test_client_assertions(assertion: str) -> None:
    with contextlib.suppress(OAuthError):
        verify_client_assertion(
            assertion, client_id="agt_x", keys={}, issuer="https://as.example", now=1_000_000
        )


CREDENTIAL = st.dictionaries(
    st.sampled_from(["id", "rawId", "type", "response", "clientExtensionResults"]),
    JSON_TEXT
    | st.dictionaries(
        st.sampled_from(
            [
                "clientDataJSON",
                "authenticatorData",
                "signature",
                "userHandle",
                "attestationObject",
                "transports",
            ]
        ),
        B64 | JSON_TEXT | JSON_TEXT.map(b64json),
        max_size=5,
    ),
    max_size=5,
)


@given(CREDENTIAL | JSON_TEXT)
@FAST
def test_webauthn_credentials(credential: object) -> None:
    for parse in (parse_assertion, parse_attestation):
        with contextlib.suppress(CredentialError):
            parse(credential)


METADATA = st.dictionaries(
    st.sampled_from(
        ["client_name", "token_endpoint_auth_method", "redirect_uris", "grant_types", "jwks",
         "application_type", "dpop_bound_access_tokens", "dpop_key_policy", "contacts",
         "response_types", "software_id", "jwks_uri"]
    ),
    JSON_TEXT | st.lists(st.text(max_size=40), max_size=3),
    max_size=8,
)  # fmt: skip


@given(METADATA)
@FAST
def test_client_metadata(body: dict[str, Any]) -> None:
    with contextlib.suppress(OAuthError):
        validate_client_metadata(body, known_grants=grant_types())


@given(
    st.text(max_size=80) | st.sampled_from(["http://127.0.0.1:1/", "https://a.b/c", "com.x.y:/cb"])
)
@FAST
def test_redirect_uris(uri: str) -> None:
    with contextlib.suppress(ValueError):
        redirect_kind(uri)
