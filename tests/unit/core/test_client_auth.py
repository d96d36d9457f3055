"""private_key_jwt client assertions (RFC 7523) and actor tokens: a negative test per check."""

from __future__ import annotations

from typing import Any

import pytest

from app.core.client_auth import (
    CLIENT_ASSERTION_TYPE,
    AgentAssertion,
    read_client_assertion,
    unverified_actor,
    unverified_issuer,
    verify_actor_token,
    verify_client_assertion,
)
from app.core.dpop import verify_proof
from app.core.errors import InvalidClient, InvalidDPoPProof, InvalidRequest, InvalidToken
from app.core.keys import new_signing_key
from app.core.tokens import AccessTokenClaims, mint_access_token, verify_access_token
from tests.factories import ISSUER, NOW, RESOURCE, Agent, b64json, hs256, tamper


@pytest.fixture(scope="module")
def agent() -> Agent:
    return Agent()


def options(agent: Agent, **overrides: Any) -> dict[str, Any]:
    return {"client_id": agent.client_id, "keys": agent.keys, "issuer": ISSUER, "now": NOW} | (
        overrides
    )


def authenticate(agent: Agent, assertion: str, **kwargs: Any) -> AgentAssertion:
    return verify_client_assertion(assertion, **options(agent, **kwargs))


def refused(agent: Agent, assertion: str, **kwargs: Any) -> InvalidClient:
    with pytest.raises(InvalidClient) as err:
        authenticate(agent, assertion, **kwargs)
    assert err.value.status == 401
    assert err.value.error == "invalid_client"
    return err.value


@pytest.mark.parametrize("typ", [None, "JWT", "client-authentication+jwt"])
@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_valid_assertion(typ: str | None, alg: str) -> None:
    agent = Agent(alg)
    result = authenticate(agent, agent.assertion(typ=typ, jti="j1"))
    assert result == AgentAssertion(client_id=agent.client_id, jti="j1", exp=NOW + 60, iat=NOW)


def test_an_assertion_without_kid_is_verified_with_the_registered_keys() -> None:
    """RFC 7523 does not require ``kid``: each registered key is tried (EdDSA and ES256
    keys side by side; the one that signed wins)."""
    signer, other = Agent("EdDSA"), Agent("ES256")
    keys = {**other.keys, **signer.keys}
    assertion = signer.assertion(header={"kid": None}, jti="j2")
    result = authenticate(signer, assertion, keys=keys)
    assert result.jti == "j2"


def test_an_assertion_without_kid_by_an_unregistered_key_is_refused(agent: Agent) -> None:
    stranger = Agent()
    stranger.client_id = agent.client_id
    error = refused(agent, stranger.assertion(header={"kid": None}))
    assert error.detail is not None
    assert "no registered key verifies it" in error.detail


def test_an_assertion_naming_an_unknown_kid_is_refused(agent: Agent) -> None:
    refused(agent, agent.assertion(header={"kid": "not-registered"}))


def test_read_client_assertion() -> None:
    form = {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": "a.b.c"}
    assert read_client_assertion(form) == ("a.b.c", None)
    assert read_client_assertion(form | {"client_id": "agt_1"}) == ("a.b.c", "agt_1")
    with pytest.raises(InvalidClient):
        read_client_assertion({"client_assertion": "a.b.c"})
    with pytest.raises(InvalidClient):  # CA-10
        read_client_assertion(form | {"client_assertion_type": "urn:other"})
    with pytest.raises(InvalidClient):
        read_client_assertion({"client_assertion_type": CLIENT_ASSERTION_TYPE})


def test_unverified_issuer(agent: Agent) -> None:
    assert unverified_issuer(agent.assertion()) == agent.client_id
    for junk in ("junk", "a.b.c", f"{b64json({})}.{b64json({'iss': 5})}.AAAA"):
        with pytest.raises(InvalidClient):
            unverified_issuer(junk)


def test_iss_sub_must_be_the_client(agent: Agent) -> None:  # CA-01
    refused(agent, agent.assertion(iss="agt_other"))
    refused(agent, agent.assertion(sub="agt_other"))
    refused(agent, agent.assertion(), client_id="agt_other", keys=agent.keys)


@pytest.mark.parametrize(
    "aud",
    [f"{ISSUER}/token", [ISSUER], [ISSUER, "https://other"], "https://other", None, ISSUER + "/"],
)
def test_audience_must_be_exactly_the_issuer(agent: Agent, aud: Any) -> None:  # CA-02, CA-03
    refused(agent, agent.assertion(aud=aud))


@pytest.mark.parametrize(
    ("aud", "ok"),
    [
        (f"{ISSUER}/token", True),
        (ISSUER, True),
        ([f"{ISSUER}/token"], False),
        ([ISSUER, f"{ISSUER}/token"], False),
        (f"{ISSUER}/revoke", False),
        ("https://other/token", False),
    ],
)
def test_the_token_endpoint_may_be_the_audience_where_the_server_names_it(
    agent: Agent, aud: Any, ok: bool
) -> None:  # CA-03, pinned: the registry names its token endpoint (RFC 7523 §3, MCP)
    assertion = agent.assertion(aud=aud)
    if ok:
        assert authenticate(agent, assertion, token_endpoint=f"{ISSUER}/token").client_id
    else:
        refused(agent, assertion, token_endpoint=f"{ISSUER}/token")


@pytest.mark.parametrize(
    ("exp", "ok"),
    [
        (None, False),
        (NOW, False),
        (NOW - 1, False),
        (NOW + 300, True),
        (NOW + 301, False),
        (NOW + 3600, False),
        ("tomorrow", False),
    ],
)
def test_expiry(agent: Agent, exp: Any, ok: bool) -> None:  # CA-04, CA-05
    assertion = agent.assertion(exp=exp)
    if ok:
        authenticate(agent, assertion)
    else:
        refused(agent, assertion)


def test_not_before_and_old_iat(agent: Agent) -> None:  # CA-06
    refused(agent, agent.assertion(nbf=NOW + 60))
    refused(agent, agent.assertion(iat=NOW - 3600))
    refused(agent, agent.assertion(iat=NOW + 60))
    refused(agent, agent.assertion(iat=True))


def test_an_assertion_without_iat_is_refused(agent: Agent) -> None:
    """Policy (RFC 7523 makes it optional): single use is remembered in the cache, and after
    the cache lost its data whatever was issued before is refused, which needs ``iat``."""
    error = refused(agent, agent.assertion(drop=("iat",)))
    assert error.detail is not None
    assert "iat missing" in error.detail
    refused(agent, agent.assertion(iat=None))


@pytest.mark.parametrize("jti", ["", "x" * 257, 7])
def test_bad_jti(agent: Agent, jti: Any) -> None:  # CA-07
    refused(agent, agent.assertion(jti=jti))


def test_missing_jti(agent: Agent) -> None:
    refused(agent, agent.assertion(drop=("jti",)))


def test_signature_by_unregistered_key(agent: Agent) -> None:  # CA-08
    impostor = Agent(client_id=agent.client_id)
    refused(agent, impostor.assertion())
    refused(agent, impostor.assertion(header={"kid": agent.kid}))
    refused(agent, tamper(agent.assertion(), 1))
    refused(agent, tamper(agent.assertion(), 2))


@pytest.mark.parametrize("alg", ["none", "HS256", "RS256", "es256"])
def test_forbidden_algorithms(agent: Agent, alg: str) -> None:  # CA-09
    header = {"alg": alg, "kid": agent.kid}
    claims = {
        "iss": agent.client_id,
        "sub": agent.client_id,
        "aud": ISSUER,
        "exp": NOW + 60,
        "jti": "j",
    }
    refused(agent, hs256(header, claims, b"any-secret-at-all"))
    refused(agent, f"{b64json(header)}.{b64json(claims)}.")


def test_two_jwts_in_one_parameter(agent: Agent) -> None:  # CA-10
    refused(agent, agent.assertion() + "," + agent.assertion())


def test_client_id_parameter_must_match(agent: Agent) -> None:  # CA-11
    refused(agent, agent.assertion(), client_id_param="agt_other")
    authenticate(agent, agent.assertion(), client_id_param=agent.client_id)


@pytest.mark.parametrize("typ", ["dpop+jwt", "at+jwt", "actor+jwt", "oauth-id-jag+jwt", "jwt"])
def test_other_explicit_typ_is_refused(agent: Agent, typ: str) -> None:  # CA-12
    refused(agent, agent.assertion(typ=typ))


def test_crit_and_duplicate_members(agent: Agent) -> None:  # CA-13
    refused(agent, agent.assertion(header={"crit": ["b64"], "b64": False}))
    payload = (
        f'{{"iss":"{agent.client_id}","sub":"{agent.client_id}","aud":"{ISSUER}",'
        f'"exp":{NOW + 60},"jti":"a","aud":"{ISSUER}"}}'
    )
    refused(agent, agent.sign_raw({"alg": "ES256", "kid": agent.kid}, payload.encode()))


# Actor tokens -----------------------------------------------------------------------------------


def actor(agent: Agent, token: str, **kwargs: Any) -> AgentAssertion:
    return verify_actor_token(token, **options(agent, **kwargs))


def test_valid_actor_token(agent: Agent) -> None:
    result = actor(agent, agent.actor_token(jti="a1"))
    assert (result.client_id, result.jti, result.jkt) == (agent.client_id, "a1", None)
    bound = actor(agent, agent.actor_token(cnf={"jkt": agent.jkt}))
    assert bound.jkt == agent.jkt
    assert unverified_actor(agent.actor_token()) == agent.client_id


@pytest.mark.parametrize(
    "kwargs",
    [
        {"typ": None},
        {"typ": "JWT"},
        {"typ": "client-authentication+jwt"},
        {"typ": "dpop+jwt"},
        {"aud": f"{ISSUER}/token"},
        {"exp": NOW - 1},
        {"exp": NOW + 3600},
        {"iss": "agt_x"},
        {"jti": ""},
        {"cnf": {"jkt": "short"}},
        {"cnf": "jkt"},
    ],
)
def test_actor_token_negatives(agent: Agent, kwargs: dict[str, Any]) -> None:  # TX-06
    typ = kwargs.pop("typ", "actor+jwt")
    token = agent.assertion(typ=typ, **kwargs)
    with pytest.raises(InvalidRequest) as err:
        actor(agent, token)
    assert (err.value.status, err.value.error) == (400, "invalid_request")


def test_actor_token_from_unregistered_key(agent: Agent) -> None:
    with pytest.raises(InvalidRequest):
        actor(agent, Agent(client_id=agent.client_id).actor_token())
    with pytest.raises(InvalidRequest):
        unverified_actor("garbage")


# JB-13: every JWT kind is refused where another kind is expected --------------------------------


def test_cross_jwt_substitution_matrix(agent: Agent) -> None:
    server_key = new_signing_key(activates_at=0)
    # An agent key published with the server's kid, so only the typ check can stop confusion.
    keys = {agent.kid: agent.public}
    claims = {
        "iss": agent.client_id,
        "sub": agent.client_id,
        "aud": ISSUER,
        "exp": NOW + 60,
        "iat": NOW,
        "jti": "j",
        "htm": "POST",
        "htu": f"{ISSUER}/token",
        "client_id": agent.client_id,
        "act": {"sub": agent.client_id},
        "cnf": {"jkt": agent.jkt},
        "grant_id": "g",
        "auth_time": NOW,
        "authorization_details": [],
    }
    kinds = {
        "dpop": agent.sign(
            {"typ": "dpop+jwt", "alg": "ES256", "jwk": agent.jwk(), "kid": agent.kid}, claims
        ),
        "assertion": agent.sign(
            {"typ": "client-authentication+jwt", "alg": "ES256", "kid": agent.kid}, claims
        ),
        "actor": agent.sign(
            {"typ": "actor+jwt", "alg": "ES256", "kid": agent.kid, "jwk": agent.jwk()}, claims
        ),
        "access": agent.sign(
            {"typ": "at+jwt", "alg": "ES256", "kid": agent.kid, "jwk": agent.jwk()}, claims
        ),
    }
    server_token = mint_access_token(
        AccessTokenClaims.from_jwt_claims(claims | {"iss": ISSUER, "aud": RESOURCE}), server_key
    )
    expectations = {
        "dpop": lambda t: verify_proof([t], method="POST", url=f"{ISSUER}/token", now=NOW),
        "assertion": lambda t: verify_client_assertion(
            t, client_id=agent.client_id, keys=keys, issuer=ISSUER, now=NOW
        ),
        "actor": lambda t: verify_actor_token(
            t, client_id=agent.client_id, keys=keys, issuer=ISSUER, now=NOW
        ),
        "access": lambda t: verify_access_token(t, issuer=agent.client_id, keys=keys, now=NOW),
    }
    errors = (InvalidDPoPProof, InvalidClient, InvalidRequest, InvalidToken)
    for expected, check in expectations.items():
        check(kinds[expected])  # the right kind passes
        for presented, token in [*kinds.items(), ("server-access", server_token)]:
            if presented == expected:
                continue
            with pytest.raises(errors):
                check(token)


def test_secrets_are_stored_as_hashes_and_compared_exactly() -> None:
    from app.core.client_auth import same_secret, secret_hash

    stored = secret_hash("s3cret")
    assert stored != "s3cret"
    assert len(stored) == 64
    assert same_secret("s3cret", stored)
    assert not same_secret("s3cret ", stored)
    assert not same_secret("", stored)
