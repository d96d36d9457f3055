"""Workload identity JWTs judged against a trusted issuer (app/core/workload_identity.py) and
an issuer's key set with RSA keys (app/core/jwk.py parse_issuer_jwks)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from app.core.jwk import JWKError, b64url_encode, parse_issuer_jwks, parse_public_jwk
from app.core.workload_identity import (
    TrustedIssuer,
    UnknownKey,
    WorkloadJWTError,
    check_subject_pattern,
    subject_matches,
    unverified_claim,
    verify_workload_jwt,
)
from tests.factories import Agent

ISSUER = "https://kubernetes.default.svc"
AUDIENCE = "https://agentauth.example"
NOW = 1_800_000_000
TRUSTED = TrustedIssuer(
    issuer=ISSUER,
    audiences=frozenset({AUDIENCE}),
    subject_pattern="system:serviceaccount:jobs:*",
    max_lifetime=3600,
)
SUBJECT = "system:serviceaccount:jobs:nightly"


def _int_b64(value: int) -> str:
    return b64url_encode(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class RSAIssuer:
    def __init__(self, kid: str = "rsa-1", bits: int = 2048) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        self.kid = kid

    def jwk(self, **extra: Any) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        return {"kty": "RSA", "n": _int_b64(numbers.n), "e": _int_b64(numbers.e),
                "kid": self.kid, **extra}  # fmt: skip

    def sign(self, claims: dict[str, Any], alg: str = "RS256", **header: Any) -> str:
        head = {"alg": alg, "kid": self.kid, **header}
        head = {k: v for k, v in head.items() if v is not None}
        signing_input = (
            b64url_encode(orjson.dumps(head)) + "." + b64url_encode(orjson.dumps(claims))
        ).encode()
        pad: padding.AsymmetricPadding = (
            padding.PKCS1v15()
            if alg == "RS256"
            else padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        )
        signature = self.key.sign(signing_input, pad, hashes.SHA256())
        return signing_input.decode() + "." + b64url_encode(signature)


def claims(**overrides: Any) -> dict[str, Any]:
    body = {"iss": ISSUER, "sub": SUBJECT, "aud": AUDIENCE, "iat": NOW, "exp": NOW + 600}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


@pytest.fixture(scope="module")
def issuer() -> RSAIssuer:
    return RSAIssuer()


def verify(token: str, issuer: RSAIssuer, **kwargs: Any) -> Any:
    keys = parse_issuer_jwks({"keys": [issuer.jwk()]})
    return verify_workload_jwt(token, trusted=TRUSTED, keys=keys, now=NOW, **kwargs)


@pytest.mark.parametrize("alg", ["RS256", "PS256"])
def test_an_rsa_signed_platform_token_names_its_workload(issuer: RSAIssuer, alg: str) -> None:
    identity = verify(issuer.sign(claims(jti="k8s-1"), alg=alg), issuer)
    assert (identity.issuer, identity.subject, identity.jti) == (ISSUER, SUBJECT, "k8s-1")
    assert identity.exp == NOW + 600


def test_an_ec_key_without_kid_is_tried_against_the_token() -> None:
    agent = Agent()
    jwk = {k: v for k, v in agent.public.to_dict().items() if k != "kid"}
    token = agent.sign({"alg": "ES256"}, claims())
    keys = parse_issuer_jwks({"keys": [jwk]})
    assert verify_workload_jwt(token, trusted=TRUSTED, keys=keys, now=NOW).subject == SUBJECT


def test_an_audience_list_must_name_this_server(issuer: RSAIssuer) -> None:
    assert verify(issuer.sign(claims(aud=["other", AUDIENCE])), issuer).subject == SUBJECT
    with pytest.raises(WorkloadJWTError, match="aud"):
        verify(issuer.sign(claims(aud="https://other.example")), issuer)
    with pytest.raises(WorkloadJWTError, match="aud"):
        verify(issuer.sign(claims(aud=["https://other.example"])), issuer)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": NOW}, "exp missing or in the past"),
        ({"exp": None}, "exp missing"),
        ({"exp": NOW + 3601}, "too far"),
        ({"nbf": NOW + 60}, "not yet valid"),
        ({"iat": NOW + 60}, "iat in the future"),
        ({"iss": "https://evil.example"}, "iss"),
        ({"sub": "system:serviceaccount:other:nightly"}, "pattern"),
        ({"sub": "system:serviceaccount:jobs:a:b"}, "pattern"),
        ({"sub": None}, "sub missing"),
        ({"exp": "soon"}, "not an integer"),
        ({"jti": ""}, "jti"),
    ],
)
def test_each_claim_rule_refuses(issuer: RSAIssuer, overrides: dict[str, Any], reason: str) -> None:
    with pytest.raises(WorkloadJWTError, match=reason):
        verify(issuer.sign(claims(**overrides)), issuer)


def test_leeway_allows_a_just_expired_token(issuer: RSAIssuer) -> None:
    assert verify(issuer.sign(claims(exp=NOW - 5)), issuer, leeway=10).subject == SUBJECT


@pytest.mark.parametrize("typ", ["at+jwt", "dpop+jwt", "oauth-id-jag+jwt", "txntoken+jwt"])
def test_a_token_of_another_kind_is_no_identity(issuer: RSAIssuer, typ: str) -> None:
    with pytest.raises(WorkloadJWTError, match="typ"):
        verify(issuer.sign(claims(), typ=typ), issuer)


def test_a_jwt_typ_is_accepted(issuer: RSAIssuer) -> None:
    assert verify(issuer.sign(claims(), typ="JWT"), issuer).subject == SUBJECT


def test_an_unknown_kid_asks_for_the_issuers_keys_again(issuer: RSAIssuer) -> None:
    other = RSAIssuer(kid="rotated")
    with pytest.raises(UnknownKey):
        verify(other.sign(claims()), issuer)


def test_another_key_under_the_issuers_kid_does_not_verify(issuer: RSAIssuer) -> None:
    impostor = RSAIssuer(kid=issuer.kid)
    with pytest.raises(WorkloadJWTError, match="signature"):
        verify(impostor.sign(claims()), issuer)


def test_an_rsa_key_never_verifies_an_es256_header(issuer: RSAIssuer) -> None:
    token = issuer.sign(claims())
    _, payload, signature = token.split(".")
    forged = b64url_encode(orjson.dumps({"alg": "HS256", "kid": issuer.kid}))
    with pytest.raises(WorkloadJWTError, match="signature"):
        verify(f"{forged}.{payload}.{signature}", issuer)
    none = b64url_encode(orjson.dumps({"alg": "none", "kid": issuer.kid}))
    with pytest.raises(WorkloadJWTError):
        verify(f"{none}.{payload}.{signature}", issuer)


def test_malformed_tokens_are_refused(issuer: RSAIssuer) -> None:
    for token in ["", "a.b", "not a jwt", "a.b.c.d"]:
        with pytest.raises(WorkloadJWTError):
            verify(token, issuer)


def test_an_issuer_key_set_keeps_signing_keys_and_refuses_bad_ones() -> None:
    signer, encrypter = RSAIssuer("sig"), RSAIssuer("enc")
    keys = parse_issuer_jwks(
        {
            "keys": [
                signer.jwk(),
                encrypter.jwk(use="enc"),
                {"kty": "OKP", "crv": "X25519", "x": "A" * 43},
            ]
        }
    )
    assert [key.kid for key in keys] == ["sig"]  # the encryption keys skipped
    with pytest.raises(JWKError, match="private"):
        parse_issuer_jwks({"keys": [{**signer.jwk(), "d": "AAAA"}]})
    with pytest.raises(JWKError, match="bits"):
        parse_issuer_jwks({"keys": [RSAIssuer("small", bits=1024).jwk()]})
    with pytest.raises(JWKError, match="no usable"):
        parse_issuer_jwks({"keys": [encrypter.jwk(use="enc")]})
    with pytest.raises(JWKError, match="duplicate"):
        parse_issuer_jwks({"keys": [signer.jwk(), signer.jwk()]})
    with pytest.raises(JWKError, match="exponent"):
        parse_issuer_jwks({"keys": [signer.jwk(e="Ag")]})  # e = 2
    with pytest.raises(JWKError, match="alg"):
        parse_issuer_jwks({"keys": [signer.jwk(alg="ES256")]})
    with pytest.raises(JWKError, match="at most"):
        parse_issuer_jwks({"keys": [signer.jwk()] * 21})
    with pytest.raises(JWKError):
        parse_issuer_jwks({"keys": "none"})


def test_an_agent_or_a_dpop_proof_can_never_bring_an_rsa_key() -> None:
    with pytest.raises(JWKError, match="only EC P-256 and OKP Ed25519"):
        parse_public_jwk(RSAIssuer("agent").jwk())


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        ("system:serviceaccount:jobs:*", "system:serviceaccount:jobs:nightly", True),
        ("system:serviceaccount:jobs:*", "system:serviceaccount:jobs:", False),
        ("system:serviceaccount:jobs:*", "system:serviceaccount:jobsx:a", False),
        ("spiffe://example.org/ns/jobs/**", "spiffe://example.org/ns/jobs/sa/a", True),
        ("spiffe://example.org/ns/jobs/**", "spiffe://example.org/ns/other/sa/a", False),
        ("spiffe://example.org/ns/*/sa/runner", "spiffe://example.org/ns/a/b/sa/runner", False),
        ("repo:acme/agents:ref:refs/heads/main", "repo:acme/agents:ref:refs/heads/main", True),
        ("repo:acme/agents:ref:refs/heads/main", "repo:acme/agents:ref:refs/heads/mainx", False),
        ("a.b", "axb", False),  # no regular-expression meaning leaks in
    ],
)
def test_subject_patterns_match_whole_subjects(pattern: str, subject: str, matches: bool) -> None:
    assert subject_matches(pattern, subject) is matches


@pytest.mark.parametrize("pattern", ["", "*", "**", "*:*", "has space", "x" * 513, 5])
def test_a_subject_pattern_names_something(pattern: object) -> None:
    with pytest.raises(ValueError, match="subject pattern"):
        check_subject_pattern(pattern)


def test_the_unverified_issuer_only_says_whose_keys_to_use() -> None:
    token = Agent().sign({"alg": "ES256"}, claims())
    assert unverified_claim(token, "iss") == ISSUER
    assert unverified_claim(token, "exp") is None  # not a string
    assert unverified_claim("garbage", "iss") is None
