"""Published RFC vectors (copies in tests/vectors/rfc_vectors.json)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.core.dpop import verify_proof
from app.core.errors import InvalidDPoPProof, InvalidToken
from app.core.jwk import b64url_decode, b64url_encode, parse_public_jwk, thumbprint
from app.core.jws import JWSError, decode_jws, verify_signature
from app.core.tokens import verify_access_token
from tests.factories import VECTORS

DPOP = VECTORS["rfc9449"]
PROOFS = DPOP["proofs"]


@pytest.mark.parametrize(
    ("jwk", "expected"),
    [
        (VECTORS["rfc7638_s3_1"]["jwk"], VECTORS["rfc7638_s3_1"]["sha256_thumbprint_b64url"]),
        (DPOP["proof_jwk"], DPOP["jkt"]),
        (
            VECTORS["rfc8037_appendix_a"]["private_jwk"],
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
        ),
    ],
    ids=["rfc7638-rsa", "rfc9449-ec", "rfc8037-okp-private"],
)
def test_thumbprint_vectors(jwk: dict[str, str], expected: str) -> None:
    assert thumbprint(jwk) == expected


def test_rfc8037_thumbprint_input_is_canonical() -> None:
    from app.core.jwk import thumbprint_input

    vector = VECTORS["rfc8037_appendix_a"]
    assert thumbprint_input(vector["private_jwk"]).decode() == vector["thumbprint_input"]


@pytest.mark.parametrize("proof", PROOFS, ids=[p["description"][:30] for p in PROOFS])
def test_rfc9449_example_proofs_verify_at_their_iat(proof: dict) -> None:
    claims = proof["claims"]
    verified = verify_proof(
        [proof["compact"]],
        method=claims["htm"],
        url=claims["htu"],
        now=proof["verify_at_unix_time"],
        access_token=DPOP["access_token"] if "ath" in claims else None,
    )
    assert verified.jkt == DPOP["jkt"]
    assert verified.jti == claims["jti"]
    assert verified.iat == claims["iat"]


def test_rfc9449_ath_vector() -> None:
    from app.core.jws import token_hash

    assert token_hash(DPOP["access_token"]) == DPOP["ath"]


def _first(**overrides: object) -> dict:
    proof = PROOFS[0]
    kwargs = {
        "method": "POST",
        "url": proof["claims"]["htu"],
        "now": proof["verify_at_unix_time"],
    }
    kwargs.update(overrides)
    return kwargs


def test_rfc9449_proof_at_another_endpoint_is_rejected() -> None:
    with pytest.raises(InvalidDPoPProof):
        verify_proof([PROOFS[0]["compact"]], **_first(url="https://server.example.com/introspect"))


def test_rfc9449_proof_too_old_is_rejected() -> None:
    with pytest.raises(InvalidDPoPProof):
        verify_proof([PROOFS[0]["compact"]], **_first(now=PROOFS[0]["verify_at_unix_time"] + 3600))


def test_rfc9449_resource_proof_with_other_access_token_is_rejected() -> None:
    proof = PROOFS[2]
    with pytest.raises(InvalidDPoPProof):
        verify_proof(
            [proof["compact"]],
            method="GET",
            url=proof["claims"]["htu"],
            now=proof["verify_at_unix_time"],
            access_token="other",
        )


def test_rfc9449_resource_proof_with_other_binding_is_rejected() -> None:
    proof = PROOFS[2]
    with pytest.raises(InvalidToken) as err:
        verify_proof(
            [proof["compact"]],
            method="GET",
            url=proof["claims"]["htu"],
            now=proof["verify_at_unix_time"],
            access_token=DPOP["access_token"],
            bound_jkt=VECTORS["rfc7638_s3_1"]["sha256_thumbprint_b64url"],
        )
    assert err.value.description == "Invalid DPoP key binding"


def test_rfc9449_proofs_sharing_a_jti_have_distinct_times() -> None:
    # Proofs 1 and 2 reuse one jti 2680 s apart: a replay cache scoped to the acceptance
    # window (max_age + skew) must let both through; their replay keys are identical.
    first = verify_proof([PROOFS[0]["compact"]], **_first())
    second = verify_proof([PROOFS[1]["compact"]], **_first(now=PROOFS[1]["verify_at_unix_time"]))
    assert first.replay_key == second.replay_key
    assert second.iat - first.iat > 300 + 60


def test_rfc8037_ed25519_signature_is_reproduced_and_verifies() -> None:
    vector = VECTORS["rfc8037_appendix_a"]
    private = Ed25519PrivateKey.from_private_bytes(b64url_decode(vector["private_jwk"]["d"]))
    signature = private.sign(vector["signing_input"].encode())
    assert b64url_encode(signature) == vector["signature_b64url"]
    public = parse_public_jwk({k: v for k, v in vector["private_jwk"].items() if k != "d"})
    verify_signature("EdDSA", public, vector["signing_input"].encode(), signature)


def test_rfc8037_jws_is_not_a_jwt() -> None:
    vector = VECTORS["rfc8037_appendix_a"]
    public = parse_public_jwk({k: v for k, v in vector["private_jwk"].items() if k != "d"})
    compact = f"{vector['signing_input']}.{vector['signature_b64url']}"
    with pytest.raises(JWSError, match="payload"):
        decode_jws(compact, typs=(None,), algs=("EdDSA",), resolve_key=lambda _: public)


@pytest.mark.parametrize("name", ["s4_1_RS256", "s4_3_ES512", "s4_4_HS256"])
def test_rfc7520_algorithms_outside_the_allow_lists_are_rejected(name: str) -> None:
    vector = VECTORS["rfc7520"][name]
    with pytest.raises(JWSError, match="algorithm not allowed"):
        decode_jws(
            vector["compact"],
            typs=(None,),
            algs=("ES256", "EdDSA", "Ed25519"),
            resolve_key=lambda _: pytest.fail("no key may be resolved"),
        )
    with pytest.raises(InvalidToken):
        verify_access_token(vector["compact"], issuer="https://as.example.com", keys={}, now=0)
