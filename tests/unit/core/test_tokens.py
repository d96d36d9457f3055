"""RFC 9068 access tokens: minting, interop, and one negative test per verifier check."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey

from app.core.errors import InvalidToken
from app.core.keys import SigningKey, SigningKeySet, new_signing_key
from app.core.tokens import AccessTokenClaims, actor_depth, mint_access_token, verify_access_token
from tests.factories import ISSUER, NOW, RESOURCE, Agent, b64json, hs256, tamper

DETAILS = [{"type": "api", "locations": [RESOURCE], "actions": ["read"]}]


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return new_signing_key(activates_at=0)


@pytest.fixture(scope="module")
def agent() -> Agent:
    return Agent()


def claims_for(agent: Agent, **overrides: Any) -> AccessTokenClaims:
    base = AccessTokenClaims(
        iss=ISSUER,
        sub="usr_alice",
        aud=RESOURCE,
        client_id=agent.client_id,
        act={"sub": agent.client_id},
        iat=NOW,
        exp=NOW + 300,
        jkt=agent.jkt,
        grant_id="grt_1",
        auth_time=NOW - 10,
        authorization_details=DETAILS,
        scope="read",
    )
    return dataclasses.replace(base, **overrides)


def verify(token: str, key: SigningKey, **kwargs: Any) -> AccessTokenClaims:
    options: dict[str, Any] = {"issuer": ISSUER, "keys": {key.kid: key.public}, "now": NOW}
    options.update(kwargs)
    return verify_access_token(token, **options)


def rejected(token: str, key: SigningKey, **kwargs: Any) -> InvalidToken:
    with pytest.raises(InvalidToken) as err:
        verify(token, key, **kwargs)
    assert err.value.status == 401
    assert err.value.error == "invalid_token"
    return err.value


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_roundtrip(agent: Agent, alg: str) -> None:
    key = new_signing_key(alg=alg, activates_at=0)
    claims = claims_for(agent)
    token = mint_access_token(claims, key)
    assert verify(token, key, audience=RESOURCE) == claims
    assert claims.delegation_depth == 0


def test_header_and_claims_shape(agent: Agent, key: SigningKey) -> None:
    token = mint_access_token(claims_for(agent), key)
    jwk = ECKey.import_key(key.public.to_dict())
    decoded = jose_jwt.decode(token, jwk, algorithms=["ES256"])  # an independent JOSE library
    assert decoded.header == {"typ": "at+jwt", "alg": "ES256", "kid": key.kid}
    assert decoded.claims["cnf"] == {"jkt": agent.jkt}
    assert decoded.claims["act"] == {"sub": agent.client_id}
    for claim in ("iss", "exp", "aud", "sub", "client_id", "iat", "jti"):  # AT-05
        assert claim in decoded.claims


def test_scope_is_optional(agent: Agent, key: SigningKey) -> None:
    token = mint_access_token(claims_for(agent, scope=None), key)
    assert "scope" not in verify(token, key).to_jwt_claims()


def test_application_at_jwt_typ_is_accepted(agent: Agent, key: SigningKey) -> None:
    token = _resign(key, claims_for(agent).to_jwt_claims(), typ="application/at+jwt")
    verify(token, key)


def _resign(key: SigningKey, claims: dict[str, Any], **header: Any) -> str:
    from app.core.jws import sign_compact

    hdr = {"typ": "at+jwt", "alg": key.alg, "kid": key.kid}
    hdr.update(header)
    hdr = {k: v for k, v in hdr.items() if v is not None}
    return sign_compact(hdr, claims, key.private_key)


@pytest.mark.parametrize("typ", [None, "JWT", "dpop+jwt", "actor+jwt", "AT+JWT", "at+jwt2"])
def test_wrong_typ(agent: Agent, key: SigningKey, typ: str | None) -> None:  # AT-10
    rejected(_resign(key, claims_for(agent).to_jwt_claims(), typ=typ), key)


def test_alg_none(agent: Agent, key: SigningKey) -> None:  # AT-13, JB-03
    header = {"typ": "at+jwt", "alg": "none", "kid": key.kid}
    rejected(f"{b64json(header)}.{b64json(claims_for(agent).to_jwt_claims())}.", key)


def test_hs256_signed_with_public_key_pem(agent: Agent, key: SigningKey) -> None:  # JB-02
    pem = key.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"typ": "at+jwt", "alg": "HS256", "kid": key.kid}
    rejected(hs256(header, claims_for(agent).to_jwt_claims(), pem), key)


def test_unknown_kid(agent: Agent, key: SigningKey) -> None:  # AT-04, JB-11
    for kid in ("unknown", "../../etc/passwd", "' OR 1=1 --", None):
        rejected(_resign(key, claims_for(agent).to_jwt_claims(), kid=kid), key)


def test_kid_pointing_at_another_key(agent: Agent, key: SigningKey) -> None:
    other = new_signing_key(activates_at=0)
    token = _resign(other, claims_for(agent).to_jwt_claims(), kid=key.kid)
    rejected(token, key, keys={key.kid: key.public, other.kid: other.public})


def test_token_signed_by_an_agent_claiming_our_issuer(agent: Agent, key: SigningKey) -> None:
    # JB-09: an agent key signing a token with our iss is never one of our keys.
    header = {"typ": "at+jwt", "alg": "ES256", "kid": agent.kid}
    rejected(agent.sign(header, claims_for(agent).to_jwt_claims()), key)


def test_key_used_with_another_alg(agent: Agent, key: SigningKey) -> None:  # JB-05
    ed_key = new_signing_key(alg="EdDSA", activates_at=0)
    assert ed_key.public.algorithms == {"EdDSA"}  # a published key is pinned to its alg
    claims = claims_for(agent).to_jwt_claims()
    rejected(_resign(ed_key, claims, alg="Ed25519"), ed_key)
    header = {"typ": "at+jwt", "alg": "EdDSA", "kid": key.kid}
    rejected(Agent("EdDSA").sign(header, claims), key)  # EdDSA header naming an EC key


@pytest.mark.parametrize("part", [0, 1, 2])
def test_tampered(agent: Agent, key: SigningKey, part: int) -> None:
    rejected(tamper(mint_access_token(claims_for(agent), key), part), key)


def test_wrong_issuer(agent: Agent, key: SigningKey) -> None:  # AT-11
    token = mint_access_token(claims_for(agent, iss="https://as.example.com/"), key)
    rejected(token, key)


@pytest.mark.parametrize(
    ("exp_offset", "leeway", "ok"), [(1, 0, True), (0, 0, False), (-5, 10, True), (-10, 10, False)]
)
def test_expiry(
    agent: Agent, key: SigningKey, exp_offset: int, leeway: int, ok: bool
) -> None:  # AT-14
    token = mint_access_token(claims_for(agent, exp=NOW + exp_offset), key)
    if ok:
        verify(token, key, leeway=leeway)
    else:
        assert rejected(token, key, leeway=leeway).description == "The access token has expired."


def test_issued_in_the_future(agent: Agent, key: SigningKey) -> None:
    rejected(mint_access_token(claims_for(agent, iat=NOW + 30), key), key)
    verify(mint_access_token(claims_for(agent, iat=NOW + 30), key), key, leeway=30)


@pytest.mark.parametrize("nbf", [NOW + 60, "soon"])
def test_not_before(agent: Agent, key: SigningKey, nbf: Any) -> None:
    claims = claims_for(agent).to_jwt_claims() | {"nbf": nbf}
    rejected(_resign(key, claims), key)


def test_audience_mismatch(agent: Agent, key: SigningKey) -> None:  # AT-12
    token = mint_access_token(claims_for(agent), key)
    rejected(token, key, audience="https://other.example.com")


def test_audience_array_is_rejected(agent: Agent, key: SigningKey) -> None:
    claims = claims_for(agent).to_jwt_claims() | {"aud": [RESOURCE]}
    rejected(_resign(key, claims), key, audience=RESOURCE)


@pytest.mark.parametrize(
    "claim",
    [
        "iss",
        "sub",
        "aud",
        "client_id",
        "iat",
        "exp",
        "jti",
        "act",
        "grant_id",
        "auth_time",
        "authorization_details",
    ],
)
def test_missing_claim(agent: Agent, key: SigningKey, claim: str) -> None:  # AT-05
    claims = claims_for(agent).to_jwt_claims()
    del claims[claim]
    rejected(_resign(key, claims), key)


def test_a_token_without_cnf_is_a_bearer_token(agent: Agent, key: SigningKey) -> None:
    claims = claims_for(agent).to_jwt_claims()
    del claims["cnf"]
    verified = verify(_resign(key, claims), key)
    assert verified.jkt is None
    assert verified.token_type == "Bearer"


@pytest.mark.parametrize(
    "bad",
    [
        {"exp": "later"},
        {"iat": True},
        {"sub": ""},
        {"cnf": {"jkt": "short"}},
        {"cnf": {"x5t#S256": "abc"}},
        {"act": {"client_id": "x"}},
        {"act": {"sub": "a", "exp": 1}},
        {"act": {"sub": "a", "iss": 5}},
        {"act": {"sub": "a", "act": "b"}},
        {"act": "agent"},
        {"authorization_details": {"type": "api"}},
        {"authorization_details": [{"locations": []}]},
        {"scope": ["read"]},
    ],
)
def test_malformed_claims(agent: Agent, key: SigningKey, bad: dict[str, Any]) -> None:
    rejected(_resign(key, claims_for(agent).to_jwt_claims() | bad), key)


def test_deeply_nested_act_is_rejected(agent: Agent, key: SigningKey) -> None:
    act: dict[str, Any] = {"sub": "a0"}
    for i in range(1, 30):
        act = {"sub": f"a{i}", "act": act}
    rejected(_resign(key, claims_for(agent).to_jwt_claims() | {"act": act}), key)


def test_actor_depth() -> None:
    assert actor_depth({"sub": "b", "act": {"sub": "a"}}) == 1
    assert actor_depth({"sub": "c", "act": {"sub": "b", "act": {"sub": "a"}}}) == 2


def test_key_set_rotation_keeps_old_tokens_verifiable(agent: Agent) -> None:
    old = new_signing_key(activates_at=0)
    new = new_signing_key(activates_at=NOW + 100)
    keys = SigningKeySet([old, new], max_token_ttl=300)
    token = mint_access_token(claims_for(agent), keys.current(NOW))
    assert keys.current(NOW) is old
    later = NOW + 200  # new key active, old retired but still published
    assert keys.current(later) is new
    verify(token, old, keys=keys.verification_keys(later), now=NOW + 1)
    assert old.kid not in keys.verification_keys(NOW + 100 + 300)


@pytest.mark.parametrize("payload", [[1, 2], "a string", 42])
def test_payload_that_is_not_an_object(key: SigningKey, payload: Any) -> None:
    rejected(_resign(key, payload), key)
