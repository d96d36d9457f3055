"""RFC 9449 §4.3 proof checks: one negative test per rule (checklist §2.1, §2.5, §2.7)."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from app.core.dpop import DPoPProof, NonceSource, normalize_htu, replay_entry, verify_proof
from app.core.errors import InvalidDPoPProof, InvalidToken, UseDPoPNonce
from app.core.jwk import KeyCache
from tests.factories import ISSUER, NOW, Agent, b64json, hs256, raw_jws, tamper

URL = f"{ISSUER}/token"


@pytest.fixture(scope="module")
def agent() -> Agent:
    return Agent()


def check(proof: str | list[str], **kwargs: Any) -> DPoPProof:
    options: dict[str, Any] = {"method": "POST", "url": URL, "now": NOW}
    options.update(kwargs)
    return verify_proof([proof] if isinstance(proof, str) else proof, **options)


def rejected(proof: str | list[str], **kwargs: Any) -> InvalidDPoPProof:
    with pytest.raises(InvalidDPoPProof) as err:
        check(proof, **kwargs)
    assert err.value.error == "invalid_dpop_proof"
    assert err.value.status == 400
    return err.value


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_valid_proof_returns_thumbprint_jti_and_iat(alg: str) -> None:
    agent = Agent(alg)
    proof = check(agent.dpop(jti="abc"))
    assert (proof.jkt, proof.jti, proof.iat) == (agent.jkt, "abc", NOW)
    assert proof.htu == URL
    assert len(proof.replay_key) == 64


def test_ed25519_alg_name_is_accepted(agent: Agent) -> None:
    ed = Agent("EdDSA")
    assert check(ed.dpop(header={"alg": "Ed25519"})).jkt == ed.jkt


# DP-01, DP-02 ---------------------------------------------------------------------------------


def test_two_dpop_headers(agent: Agent) -> None:
    rejected([agent.dpop(), agent.dpop()])


def test_no_dpop_header() -> None:
    rejected([])


@pytest.mark.parametrize(
    "mangle",
    [
        lambda p: p + "," + p,
        lambda p: p + ".AAAA.BBBB",
        lambda p: " " + p,
        lambda p: p.replace(".", ". ", 1),
        lambda p: p + "=",
        lambda p: '{"payload":"' + p + '"}',
        lambda p: p.split(".")[0] + "." + p.split(".")[1],
    ],
    ids=[
        "two-jwts",
        "jwe-like-5-parts",
        "leading-space",
        "inner-space",
        "padding",
        "json",
        "2-parts",
    ],
)
def test_not_a_single_compact_jws(agent: Agent, mangle: Any) -> None:
    rejected(mangle(agent.dpop()))


# DP-03, DP-04 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["jti", "htm", "htu", "iat"])
def test_missing_claim(agent: Agent, claim: str) -> None:
    rejected(agent.dpop(drop=(claim,)))


@pytest.mark.parametrize(
    "claims",
    [{"iat": str(NOW)}, {"iat": float(NOW)}, {"iat": True}, {"htm": 1}, {"jti": ""}, {"htu": 5}],
    ids=["iat-string", "iat-float", "iat-bool", "htm-number", "jti-empty", "htu-number"],
)
def test_wrong_claim_types(agent: Agent, claims: dict[str, Any]) -> None:
    rejected(agent.dpop(**claims))


def test_oversized_jti(agent: Agent) -> None:  # DP-23
    rejected(agent.dpop(jti="x" * 10_000))


# DP-05 .. DP-13 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typ",
    [None, "JWT", "at+jwt", "dpop+JWT", "application/dpop+jwt", "actor+jwt", ["dpop+jwt"]],
)
def test_wrong_typ(agent: Agent, typ: Any) -> None:
    header: dict[str, Any] = {"typ": typ}
    proof = agent.dpop(header=header)
    if typ is None:
        claims = {"jti": "a", "htm": "POST", "htu": URL, "iat": NOW}
        proof = agent.sign({"alg": "ES256", "jwk": agent.jwk()}, claims)
    rejected(proof)


@pytest.mark.parametrize(
    "alg", ["none", "None", "NONE", "es256", "RS256", "ES256K", "ES384", "HS256"]
)
def test_alg_outside_the_allow_list(agent: Agent, alg: str) -> None:
    claims = {"jti": "a", "htm": "POST", "htu": URL, "iat": NOW}
    rejected(raw_jws({"typ": "dpop+jwt", "alg": alg, "jwk": agent.jwk()}, claims, b"\x00" * 64))


def test_alg_none_with_empty_signature(agent: Agent) -> None:
    claims = {"jti": "a", "htm": "POST", "htu": URL, "iat": NOW}
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": agent.jwk()}
    rejected(f"{b64json(header)}.{b64json(claims)}.")


def test_hmac_with_symmetric_jwk(agent: Agent) -> None:  # DP-07
    claims = {"jti": "a", "htm": "POST", "htu": URL, "iat": NOW}
    jwk = {"kty": "oct", "k": "c2VjcmV0"}
    rejected(hs256({"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk}, claims, b"secret"))


def test_hmac_keyed_with_the_public_key_pem(agent: Agent) -> None:  # JB-02
    pem = agent.private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = {"jti": "a", "htm": "POST", "htu": URL, "iat": NOW}
    rejected(hs256({"typ": "dpop+jwt", "alg": "HS256", "jwk": agent.jwk()}, claims, pem))


def test_alg_does_not_fit_the_key(agent: Agent) -> None:  # DP-09
    ed = Agent("EdDSA")
    claims = f'{{"jti":"a","htm":"POST","htu":"{URL}","iat":{NOW}}}'.encode()
    rejected(agent.sign_raw({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": agent.jwk()}, claims))
    rejected(ed.sign_raw({"typ": "dpop+jwt", "alg": "ES256", "jwk": ed.jwk()}, claims))


@pytest.mark.parametrize(
    "jwk",
    [
        None,
        "a string",
        {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
        {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"},
    ],
    ids=["missing", "not-object", "rsa", "p384"],
)
def test_missing_or_unsupported_jwk(agent: Agent, jwk: Any) -> None:  # DP-10
    header: dict[str, Any] = {"jwk": jwk}
    rejected(agent.dpop(header=header))


def test_jku_or_kid_instead_of_jwk(agent: Agent) -> None:
    claims = {"jti": "a", "htm": "POST", "htu": URL, "iat": NOW}
    rejected(agent.sign({"typ": "dpop+jwt", "alg": "ES256", "jku": "https://evil/jwks"}, claims))
    rejected(agent.sign({"typ": "dpop+jwt", "alg": "ES256", "kid": agent.kid}, claims))


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "oth", "k"])
def test_private_members_in_jwk(agent: Agent, member: str) -> None:  # DP-11
    rejected(agent.dpop(header={"jwk": agent.jwk(**{member: "AAAA"})}))


@pytest.mark.parametrize("part", [1, 2])
def test_tampered_signature_or_payload(agent: Agent, part: int) -> None:  # DP-12
    rejected(tamper(agent.dpop(), part))


def test_signature_by_another_key(agent: Agent) -> None:
    other = Agent()
    proof = other.dpop(header={"jwk": agent.jwk()})
    rejected(proof)


@pytest.mark.parametrize(
    "coords",
    [
        {"x": "AAAA", "y": "AAAA"},
        {"x": "A" * 43, "y": "A" * 43},
        {"x": "A" * 44, "y": "A" * 44},
    ],
    ids=["short", "off-curve", "too-long"],
)
def test_invalid_curve_points(agent: Agent, coords: dict[str, str]) -> None:  # DP-13
    rejected(agent.dpop(header={"jwk": {"kty": "EC", "crv": "P-256", **coords}}))


def test_extra_header_members_are_ignored(agent: Agent) -> None:  # DP-25
    proof = agent.dpop(header={"jwk": agent.jwk(kid="k1", use="sig"), "x5c": ["AAAA"]}, extra=1)
    assert check(proof).jkt == agent.jkt


def test_crit_header_is_rejected(agent: Agent) -> None:
    rejected(agent.dpop(header={"crit": ["exp"]}))


def test_duplicate_json_members_are_rejected(agent: Agent) -> None:  # JB-08
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": agent.jwk()}
    payload = f'{{"jti":"a","htm":"POST","htu":"{URL}","iat":{NOW},"htu":"https://x/"}}'
    rejected(agent.sign_raw(header, payload.encode()))


def test_non_utf8_payload_is_rejected(agent: Agent) -> None:
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": agent.jwk()}
    rejected(agent.sign_raw(header, b'{"jti":"\xff"}'))
    rejected(agent.sign_raw(header, b"[1, 2]"))
    rejected(agent.sign_raw(header, b'{"iat": NaN}'))


# DP-14 .. DP-19: htm and htu ------------------------------------------------------------------


@pytest.mark.parametrize("htm", ["GET", "post", "PUT"])
def test_htm_mismatch(agent: Agent, htm: str) -> None:
    rejected(agent.dpop(htm=htm))


@pytest.mark.parametrize(
    ("request_url", "htu", "accepted"),
    [
        ("https://as.example.com/token", "https://as.example.com/token", True),
        ("https://as.example.com/token?x=1", "https://as.example.com/token", True),
        ("https://as.example.com/token", "HTTPS://AS.EXAMPLE.COM/token", True),
        ("https://as.example.com/token", "https://as.example.com:443/token", True),
        ("https://as.example.com/token", "https://as.example.com/Token", False),
        ("https://as.example.com/token", "https://as.example.com/token/", False),
        ("https://as.example.com/token", "http://as.example.com/token", False),
        ("https://as.example.com/token", "https://as.example.com:8443/token", False),
        ("https://as.example.com/token", "https://as.example.com/%74oken", True),
        ("https://as.example.com/token", "https://as.example.com/a/../token", True),
        ("https://as.example.com/token", "https://as.example.com/token#frag", True),
        ("https://as.example.com/token", "https://as.example.com/token?q=1", True),
        ("https://as.example.com/token", "https://as.example.com/introspect", False),
        ("https://as.example.com/token", "https://evil.example/token", False),
        ("https://as.example.com/token", "https://user@as.example.com/token", False),
        ("https://as.example.com/token", "https://as.example.com:99999/token", False),
        ("https://as.example.com/token", "/token", False),
        ("http://localhost:8080/token", "http://LOCALHOST:8080/token", True),
        ("https://[::1]/token", "https://[::1]:443/token", True),
    ],
)
def test_htu_normalisation_table(agent: Agent, request_url: str, htu: str, accepted: bool) -> None:
    proof = agent.dpop(htu=htu)
    if accepted:
        assert check(proof, url=request_url).jkt == agent.jkt
    else:
        rejected(proof, url=request_url)


def test_spoofed_forwarded_host_does_not_matter(agent: Agent) -> None:  # DP-19
    # The caller computes the URL from the configured issuer, never from request headers.
    rejected(agent.dpop(htu="https://evil.example/token"), url=URL)


def test_normalize_htu_escapes() -> None:
    assert normalize_htu("https://a.example/%7euser/%2f") == "https://a.example/~user/%2F"
    assert normalize_htu("https://a.example") == "https://a.example/"
    assert normalize_htu("https://a.example/a/./b/../c") == "https://a.example/a/c"
    assert normalize_htu("https://a.example/a/..") == "https://a.example/"
    assert normalize_htu("https://a.example/%zz") == "https://a.example/%zz"
    with pytest.raises(ValueError, match="absolute"):
        normalize_htu("ftp://a.example/x")


# DP-20, DP-21: iat window -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "accepted"),
    [(-300, True), (-301, False), (5, True), (60, True), (61, False), (120, False)],
)
def test_iat_window(agent: Agent, offset: int, accepted: bool) -> None:
    proof = agent.dpop(iat=NOW + offset)
    if accepted:
        check(proof)
    else:
        rejected(proof)


def test_custom_window(agent: Agent) -> None:
    rejected(agent.dpop(iat=NOW - 61), max_age=60)
    rejected(agent.dpop(iat=NOW + 6), future_skew=5)


# DP-RS2, DP-RS3: ath and key binding ------------------------------------------------------------


def test_ath_required_when_a_token_is_presented(agent: Agent) -> None:
    rejected(agent.dpop(htm="GET"), method="GET", access_token="tok")


def test_ath_mismatch(agent: Agent) -> None:
    rejected(agent.dpop(htm="GET", access_token="other"), method="GET", access_token="tok")


def test_ath_not_a_string(agent: Agent) -> None:
    rejected(agent.dpop(ath=1), access_token="tok")


def test_ath_match_and_binding(agent: Agent) -> None:
    proof = agent.dpop(htm="GET", access_token="tok")
    assert check(proof, method="GET", access_token="tok", bound_jkt=agent.jkt).jkt == agent.jkt


def test_key_binding_mismatch_is_invalid_token(agent: Agent) -> None:
    proof = agent.dpop(htm="GET", access_token="tok")
    with pytest.raises(InvalidToken) as err:
        check(proof, method="GET", access_token="tok", bound_jkt=Agent().jkt)
    assert err.value.status == 401
    assert err.value.description == "Invalid DPoP key binding"


def test_ath_ignored_at_the_token_endpoint(agent: Agent) -> None:  # DP-26 PIN: ignore
    check(agent.dpop(ath="whatever"))


# Nonces (§8, §9) --------------------------------------------------------------------------------

SECRET = b"n" * 32


@pytest.fixture
def nonces() -> NonceSource:
    return NonceSource(SECRET, realm="registry", step_seconds=300)


def test_nonce_required_but_missing(agent: Agent, nonces: NonceSource) -> None:  # DP-N1
    with pytest.raises(UseDPoPNonce) as err:
        check(agent.dpop(), nonces=nonces, require_nonce=True)
    assert err.value.error == "use_dpop_nonce"
    assert list(err.value.headers) == ["DPoP-Nonce"]
    assert nonces.is_valid(err.value.headers["DPoP-Nonce"], NOW)


def test_retry_with_the_supplied_nonce(agent: Agent, nonces: NonceSource) -> None:  # DP-N2
    nonce = nonces.issue(NOW)
    assert check(agent.dpop(nonce=nonce), nonces=nonces, require_nonce=True).jkt == agent.jkt


@pytest.mark.parametrize(
    "nonce",
    ["tampered", "", 42, "A" * 48, "A" * 100],
    ids=["garbage", "empty", "number", "well-formed-forged", "too-long"],
)
def test_bad_nonce_gets_a_fresh_one(agent: Agent, nonces: NonceSource, nonce: Any) -> None:
    with pytest.raises(UseDPoPNonce) as err:
        check(agent.dpop(nonce=nonce), nonces=nonces, require_nonce=True)
    assert nonces.is_valid(err.value.nonce, NOW)


def test_stale_nonce(agent: Agent, nonces: NonceSource) -> None:  # DP-N3
    old = nonces.issue(NOW - 600)
    assert nonces.is_valid(nonces.issue(NOW - 300), NOW)  # previous step still accepted
    with pytest.raises(UseDPoPNonce):
        check(agent.dpop(nonce=old), nonces=nonces, require_nonce=True)


def test_present_nonce_is_checked_even_when_not_required(agent: Agent, nonces: NonceSource) -> None:
    with pytest.raises(UseDPoPNonce):
        check(agent.dpop(nonce="forged"), nonces=nonces)
    check(agent.dpop(), nonces=nonces)


def test_nonce_from_another_realm_is_refused(agent: Agent, nonces: NonceSource) -> None:  # DP-N9
    verifier = NonceSource(SECRET, realm="verifier")
    with pytest.raises(UseDPoPNonce):
        check(agent.dpop(nonce=verifier.issue(NOW)), nonces=nonces, require_nonce=True)


def test_nonces_are_unique_and_token_safe(nonces: NonceSource) -> None:  # DP-N4
    issued = {nonces.issue(NOW) for _ in range(10_000)}
    assert len(issued) == 10_000
    assert all(
        set(n) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        for n in issued
    )


def test_nonce_secret_must_be_long() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        NonceSource(b"short", realm="registry")


# Key cache --------------------------------------------------------------------------------------


def test_key_cache_reuses_imports_and_still_rejects_private_keys(agent: Agent) -> None:
    cache = KeyCache(max_size=2)
    first = cache.get(agent.jwk())
    assert cache.get(agent.jwk()) is first
    assert cache.get(agent.jwk(kid="other")) is not first
    cache.get(Agent().jwk())
    assert len(cache) == 2
    from app.core.jwk import JWKError

    with pytest.raises(JWKError):
        cache.get(agent.jwk(d="AAAA"))
    with pytest.raises(JWKError):
        cache.get(agent.jwk(alg="EdDSA"))
    with pytest.raises(JWKError):
        cache.get(agent.jwk(kid=["not", "a", "string"]))
    with pytest.raises(JWKError):
        cache.get("nope")
    with pytest.raises(JWKError):
        cache.get({"kty": "oct", "k": "AAAA"})


def test_replay_entry_outlives_the_acceptance_window() -> None:
    proof = DPoPProof(jkt="k", jti="j", iat=NOW, htu="https://as.example.com/token")
    key, ttl = replay_entry(proof, 300)
    assert key == f"dpop:{proof.replay_key}"
    assert ttl > 300 + 60  # max_age + future skew: never forgotten while still acceptable
    other = DPoPProof(jkt="k", jti="j", iat=NOW, htu="https://shop.example/api")
    assert replay_entry(other, 300)[0] != key  # scoped to the target (RFC 9449 §11.1)
