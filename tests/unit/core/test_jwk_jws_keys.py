"""JWK validation (DP-TH, REG-05), strict JWS parsing (JB-xx) and the signing key set."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc.jwk import ECKey, OKPKey

from app.core.jwk import (
    JWKError,
    b64url_decode,
    parse_jwks,
    parse_public_jwk,
    thumbprint,
)
from app.core.jws import JWSError, decode_jws, sign_compact, split_compact
from app.core.keys import (
    KeyStatus,
    NoActiveKey,
    SigningKeySet,
    generate_private_key,
    load_private_jwk,
    new_signing_key,
    private_jwk,
)
from tests.factories import VECTORS, Agent

EC = VECTORS["rfc9449"]["proof_jwk"]


def test_parse_public_jwk_accepts_ec_and_okp() -> None:
    key = parse_public_jwk({**EC, "kid": "k1", "alg": "ES256", "use": "sig"})
    assert (key.kty, key.crv, key.kid, key.alg) == ("EC", "P-256", "k1", "ES256")
    assert key.jkt == VECTORS["rfc9449"]["jkt"]
    assert key.to_dict() == {**EC, "kid": "k1", "alg": "ES256"}
    okp = {k: v for k, v in VECTORS["rfc8037_appendix_a"]["private_jwk"].items() if k != "d"}
    assert parse_public_jwk(okp).algorithms == {"EdDSA", "Ed25519"}


@pytest.mark.parametrize(
    ("jwk", "match"),
    [
        ({**EC, "d": "AAAA"}, "private"),
        ({"kty": "oct", "k": "AAAA"}, "private"),
        ({"kty": "RSA", "n": "AQAB", "e": "AQAB"}, "only EC"),
        ({**EC, "crv": "P-384"}, "only EC"),
        ({**EC, "crv": 5}, "only EC"),
        ({**EC, "x": EC["x"][:-1]}, "32 bytes"),
        ({**EC, "x": "A" * 43}, "not on the curve"),
        ({**EC, "x": 5}, "not a string"),
        ({**EC, "x": "a+b/" * 10 + "abc"}, "base64url"),
        ({**EC, "alg": "EdDSA"}, "alg"),
        ({**EC, "use": "enc"}, "use"),
        ({**EC, "kid": ""}, "kid"),
        ({**EC, "kid": "k" * 200}, "kid"),
        ({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}, "32 bytes"),
        ("not-an-object", "object"),
    ],
)
def test_parse_public_jwk_rejects(jwk: Any, match: str) -> None:
    with pytest.raises(JWKError, match=match):
        parse_public_jwk(jwk)


def test_thumbprint_ignores_optional_members_and_order() -> None:  # DP-TH-03, DP-TH-04
    reordered = {
        "y": EC["y"],
        "kid": "x",
        "use": "sig",
        "alg": "ES256",
        "key_ops": ["verify"],
        **EC,
    }
    assert thumbprint(reordered) == thumbprint(EC) == thumbprint({**EC, "d": "AAAA"})


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "EC", "crv": "P-256", "x": 'a"b', "y": "c"},
        {"kty": "OKP", "crv": "X1", "x": "a"},
        {"kty": "EC", "crv": "P-999", "x": "a", "y": "b"},
        {"kty": "XYZ"},
        {"kty": "OKP", "crv": "Ed25519"},
    ],
)
def test_thumbprint_undefined_for_bad_members(jwk: dict[str, str]) -> None:  # DP-TH-06
    with pytest.raises(JWKError):
        thumbprint(jwk)


def test_thumbprints_match_an_independent_library() -> None:  # DP-TH-08
    for _ in range(5):
        ec_key = ECKey.generate_key("P-256")
        assert thumbprint(ec_key.as_dict(private=False)) == ec_key.thumbprint()
        okp_key = OKPKey.generate_key("Ed25519")
        assert thumbprint(okp_key.as_dict(private=False)) == okp_key.thumbprint()
    oct_jwk = {
        "kty": "oct",
        "k": "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9",
    }
    assert len(thumbprint(oct_jwk)) == 43


def test_b64url_is_strict() -> None:
    assert b64url_decode("AQAB") == b"\x01\x00\x01"
    for bad in ("AQAB=", "A", "AQ A", "AR", "a+b/"):
        with pytest.raises(JWKError):
            b64url_decode(bad)


def test_parse_jwks() -> None:
    a, b = Agent(), Agent("EdDSA")
    keys = parse_jwks({"keys": [a.public.to_dict(), b.public.to_dict()]})
    assert set(keys) == {a.kid, b.kid}
    for bad, match in [
        ({"keys": []}, "non-empty"),
        ({"keys": "x"}, "non-empty"),
        ([], "exactly one member"),
        ({"keys": [a.public.to_dict()], "extra": 1}, "exactly one member"),
        ({"keys": [a.public.to_dict()] * 2}, "duplicate kid"),
        ({"keys": [a.jwk()]}, "kid"),
        ({"keys": [a.public.to_dict() | {"d": "AAAA"}]}, "private"),
        ({"keys": [Agent().public.to_dict() for _ in range(11)]}, "at most"),
    ]:
        with pytest.raises(JWKError, match=match):
            parse_jwks(bad)


# JWS ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    ["", "a.b", "a.b.c.d.e", "a.b.c ", "a.{b}.c", "a.b=.c", "a..c", "ä.b.c", "x" * 20_000],
)
def test_split_compact_rejects_anything_but_three_base64url_parts(token: str) -> None:  # JB-14
    with pytest.raises(JWSError):
        split_compact(token)


def test_decode_jws_rejects_non_string_typ_and_alg() -> None:
    agent = Agent()
    for header in ({"alg": "ES256", "typ": 5}, {"alg": ["ES256"]}, {"typ": "x"}):
        token = agent.sign_raw(header, b"{}")
        with pytest.raises(JWSError):
            decode_jws(token, typs=(None, "x"), algs=("ES256",), resolve_key=lambda _: agent.public)


def test_sign_compact_refuses_a_mismatched_key() -> None:
    with pytest.raises(JWSError):
        sign_compact({"alg": "ES256"}, {}, generate_private_key("EdDSA"))
    with pytest.raises(JWSError):
        sign_compact({"alg": "HS256"}, {}, generate_private_key("ES256"))


def test_bad_signature_lengths() -> None:
    agent, ed = Agent(), Agent("EdDSA")
    for signer in (agent, ed):
        token = signer.sign({"alg": signer.alg}, {"a": 1})
        short = token.rsplit(".", 1)[0] + ".AAAA"
        with pytest.raises(JWSError, match="length"):
            decode_jws(
                short, typs=(None,), algs=(signer.alg,), resolve_key=lambda _, s=signer: s.public
            )


# Signing keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_private_jwk_roundtrip(alg: str) -> None:
    key = generate_private_key(alg)
    jwk = private_jwk(key, alg=alg, kid="k1")
    loaded, public = load_private_jwk(jwk)
    assert public.kid == "k1"
    assert private_jwk(loaded, alg=alg, kid="k1") == jwk
    with pytest.raises(JWKError):
        load_private_jwk({**jwk, "x": private_jwk(generate_private_key(alg), alg=alg)["x"]})
    with pytest.raises(JWKError):
        load_private_jwk({k: v for k, v in jwk.items() if k != "d"})
    with pytest.raises(JWKError):
        load_private_jwk({**jwk, "d": "AAAA"})


def test_generate_private_key_refuses_other_algs() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        generate_private_key("RS256")


def test_key_set_statuses_and_publication() -> None:
    first = new_signing_key(activates_at=100)
    second = new_signing_key(activates_at=1000)
    keys = SigningKeySet([second, first], max_token_ttl=300)
    assert keys.keys == (first, second)
    with pytest.raises(NoActiveKey):
        keys.current(50)
    assert [keys.status(k, 500) for k in keys.keys] == [KeyStatus.ACTIVE, KeyStatus.NEXT]
    assert [k.kid for k in keys.published(500)] == [first.kid, second.kid]  # next pre-published
    assert [keys.status(k, 1100) for k in keys.keys] == [KeyStatus.RETIRED, KeyStatus.ACTIVE]
    assert [k.kid for k in keys.published(1299)] == [first.kid, second.kid]  # retired, still live
    assert [k.kid for k in keys.published(1300)] == [second.kid]  # every old token expired
    document = keys.jwks(500)
    assert [k["kid"] for k in document["keys"]] == [first.kid, second.kid]
    for jwk in document["keys"]:  # JW-02, JW-04, JW-05
        assert jwk["use"] == "sig"
        assert jwk["alg"] == "ES256"
        assert "d" not in jwk
    assert set(keys.verification_keys(1300)) == {second.kid}


def test_key_set_refuses_duplicate_kids() -> None:
    key = new_signing_key(activates_at=0)
    with pytest.raises(ValueError, match="duplicate"):
        SigningKeySet([key, key], max_token_ttl=300)


def test_b64url_canonical_check_matches_reencoding() -> None:
    import base64
    import string

    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    tails = [a + b for a in alphabet for b in alphabet] + ["AA" + c for c in alphabet]
    for tail in tails:
        loose = base64.urlsafe_b64decode(tail + "=" * (-len(tail) % 4))
        canonical = base64.urlsafe_b64encode(loose).rstrip(b"=").decode() == tail
        try:
            assert b64url_decode(tail) == loose
            accepted = True
        except JWKError:
            accepted = False
        assert accepted == canonical, tail


def test_sealed_keys_need_the_right_kek_and_kid() -> None:
    from app.core.keys import seal_private_key, unseal_private_key

    key = new_signing_key(activates_at=7)
    kek = b"k" * 32
    sealed = seal_private_key(key, kek)
    restored = unseal_private_key(sealed, kek, kid=key.kid, activates_at=7)
    assert restored.public == key.public
    assert restored.activates_at == 7
    with pytest.raises(ValueError, match="wrong key-encryption key"):
        unseal_private_key(sealed, b"x" * 32, kid=key.kid, activates_at=7)
    with pytest.raises(ValueError, match="wrong key-encryption key"):
        unseal_private_key(sealed, kek, kid="another-kid", activates_at=7)
