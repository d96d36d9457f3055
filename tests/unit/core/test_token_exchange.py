"""RFC 8693 request validation (TX-01..TX-17) and the delegation rules (TX-30..TX-38)."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlencode

import pytest

from app.core.capabilities import AuthorizationDetail, parse_authorization_details
from app.core.client_auth import ACTOR_TOKEN_TYPE, AgentAssertion
from app.core.errors import InvalidAuthorizationDetails, InvalidRequest, InvalidScope, InvalidTarget
from app.core.params import parse_form
from app.core.token_exchange import (
    ACCESS_TOKEN_TYPE,
    ExchangeContext,
    ExchangeRequest,
    derive_token,
    parse_exchange_request,
    parse_scope,
)
from app.core.tokens import AccessTokenClaims
from tests.factories import ISSUER, NOW, Agent

SHOP = "https://shop.example.com/api"
BANK = "https://bank.example.com"
REGISTRY: dict[str, dict[str, Any]] = {SHOP: {}, BANK: {}}
GRANT = parse_authorization_details(
    [
        {
            "type": "api",
            "locations": [SHOP],
            "actions": ["read", "pay"],
            "limits": {"max_amount": {"value": "50.00", "currency": "EUR"}},
        },
        {"type": "api", "locations": [BANK], "actions": ["read"]},
    ],
    REGISTRY,
)
A, B, C = Agent(client_id="agt_a"), Agent(client_id="agt_b"), Agent(client_id="agt_c")


def form(**params: Any) -> ExchangeRequest:
    base = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": "tok",
        "subject_token_type": ACCESS_TOKEN_TYPE,
    }
    base.update(params)
    pairs = []
    for name, value in base.items():
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                pairs.append((name, item))
    return parse_exchange_request(parse_form(urlencode(pairs).encode()))


def subject(**overrides: Any) -> AccessTokenClaims:
    base = AccessTokenClaims(
        iss=ISSUER,
        sub="usr_alice",
        aud=SHOP,
        client_id=A.client_id,
        act={"sub": A.client_id},
        iat=NOW - 10,
        exp=NOW + 200,
        jkt=A.jkt,
        grant_id="grt_1",
        auth_time=NOW - 100,
        authorization_details=[d.to_dict() for d in GRANT if SHOP in d.locations],
        scope="read pay",
    )
    return dataclasses.replace(base, **overrides)


def context(**overrides: Any) -> ExchangeContext:
    base = ExchangeContext(
        caller=A.client_id,
        caller_jkt=A.jkt,
        grant_details=GRANT,
        grant_max_depth=2,
        grant_expires_at=NOW + 3600,
        issuer=ISSUER,
        now=NOW,
        ttl=300,
    )
    return dataclasses.replace(base, **overrides)


def actor(agent: Agent, jkt: str | None = None) -> AgentAssertion:
    return AgentAssertion(client_id=agent.client_id, jti="j", exp=NOW + 60, iat=NOW, jkt=jkt)


def details(*objs: dict[str, Any]) -> list[AuthorizationDetail]:
    return parse_authorization_details(list(objs), REGISTRY)


# request validation -----------------------------------------------------------------------------


def test_parse_minimal_request() -> None:
    request = form()
    assert request == ExchangeRequest("tok", None, None, None, None)


@pytest.mark.parametrize(
    "params",
    [
        {"subject_token": None},  # TX-01
        {"subject_token_type": None},
        {"actor_token": "x"},  # TX-02
        {"actor_token_type": ACTOR_TOKEN_TYPE},  # TX-03
        {"subject_token_type": "urn:ietf:params:oauth:token-type:saml1"},  # TX-04
        {"subject_token_type": "urn:ietf:params:oauth:token-type:refresh_token"},
        {"actor_token": "x", "actor_token_type": ACCESS_TOKEN_TYPE},
        {"requested_token_type": "urn:ietf:params:oauth:token-type:saml2"},  # TX-13
        {"subject_token": ["a", "b"]},
    ],
)
def test_invalid_requests(params: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest):
        form(**params)


@pytest.mark.parametrize(
    "params",
    [
        {"resource": "/orders"},  # TX-10
        {"resource": "shop.example.com"},
        {"resource": f"{SHOP}#frag"},
        {"resource": [SHOP, BANK]},  # TX-12: one audience per token
        {"resource": SHOP, "audience": BANK},
        {"audience": "logical-name"},
    ],
)
def test_invalid_targets(params: dict[str, Any]) -> None:
    with pytest.raises(InvalidTarget):
        form(**params)


def test_repeated_identical_targets_and_canonical_form() -> None:
    assert form(resource=[SHOP, SHOP + "/"], audience="HTTPS://SHOP.example.com/api").target == SHOP


def test_scope_parsing() -> None:
    assert parse_scope(None) is None
    assert parse_scope("read pay read") == ("read", "pay")
    for bad in ('re"ad', "a\\b", "a  b", " a"):
        with pytest.raises(InvalidScope):
            parse_scope(bad)


# delegation rules -------------------------------------------------------------------------------


def test_reaudience_for_the_same_actor() -> None:
    token = derive_token(subject(), form(resource=BANK), context())
    assert (token.aud, token.client_id, token.act, token.jkt) == (
        BANK,
        A.client_id,
        {"sub": A.client_id},
        A.jkt,
    )
    assert token.authorization_details == [
        {"type": "api", "locations": [BANK], "actions": ["read"]}
    ]
    assert (token.sub, token.grant_id, token.auth_time) == ("usr_alice", "grt_1", NOW - 100)
    assert token.iat == NOW
    assert token.exp == NOW + 200  # never beyond the subject token (TX-17)
    assert token.jti != subject().jti


def test_sub_delegation_nests_act_and_binds_the_actor_key() -> None:  # TX-32
    token = derive_token(
        subject(),
        form(actor_token="x", actor_token_type=ACTOR_TOKEN_TYPE),
        context(),
        actor=actor(B),
        actor_default_jkt=B.jkt,
    )
    assert token.act == {"sub": B.client_id, "act": {"sub": A.client_id}}
    assert (token.client_id, token.jkt, token.aud) == (B.client_id, B.jkt, SHOP)
    assert token.delegation_depth == 1
    assert token.sub == "usr_alice"
    named = derive_token(
        subject(), form(), context(), actor=actor(B, jkt=C.jkt), actor_default_jkt=B.jkt
    )
    assert named.jkt == C.jkt


def test_second_hop_and_depth_limit() -> None:  # TX-34
    hop1 = derive_token(subject(), form(), context(), actor=actor(B), actor_default_jkt=B.jkt)
    ctx_b = context(caller=B.client_id, caller_jkt=B.jkt)
    hop2 = derive_token(hop1, form(), ctx_b, actor=actor(C), actor_default_jkt=C.jkt)
    assert hop2.act == {
        "sub": C.client_id,
        "act": {"sub": B.client_id, "act": {"sub": A.client_id}},
    }
    with pytest.raises(InvalidRequest, match="depth"):
        derive_token(
            hop1,
            form(),
            dataclasses.replace(ctx_b, grant_max_depth=1),
            actor=actor(C),
            actor_default_jkt=C.jkt,
        )
    with pytest.raises(InvalidRequest, match="depth"):
        derive_token(
            subject(), form(), context(grant_max_depth=0), actor=actor(B), actor_default_jkt=B.jkt
        )


def test_delegated_token_cannot_be_reaudienced_elsewhere() -> None:
    hop1 = derive_token(subject(), form(), context(), actor=actor(B), actor_default_jkt=B.jkt)
    with pytest.raises(InvalidTarget):
        derive_token(hop1, form(resource=BANK), context(caller=B.client_id, caller_jkt=B.jkt))


def test_audience_outside_the_grant() -> None:  # TX-11
    with pytest.raises(InvalidTarget):
        derive_token(subject(), form(resource="https://other.example.com"), context())


def test_caller_must_be_the_current_actor() -> None:  # TX-08
    with pytest.raises(InvalidRequest, match="not issued to this client"):
        derive_token(subject(), form(), context(caller=B.client_id, caller_jkt=B.jkt))


def test_caller_must_prove_the_subject_key() -> None:  # DP-B5
    with pytest.raises(InvalidRequest, match="DPoP"):
        derive_token(subject(), form(), context(caller_jkt=B.jkt))


def test_actor_must_differ_and_have_a_key() -> None:
    with pytest.raises(InvalidRequest, match="different"):
        derive_token(subject(), form(), context(), actor=actor(A), actor_default_jkt=A.jkt)
    with pytest.raises(InvalidRequest, match="no key"):
        derive_token(subject(), form(), context(), actor=actor(B))


def test_capabilities_only_narrow() -> None:  # TX-16
    narrower = details(
        {
            "type": "api",
            "locations": [SHOP],
            "actions": ["pay"],
            "limits": {"max_amount": {"value": "10.00", "currency": "EUR"}},
        }
    )
    token = derive_token(subject(), form(), context(), requested_details=narrower)
    assert token.authorization_details == [narrower[0].to_dict()]
    wider = details(
        {
            "type": "api",
            "locations": [SHOP],
            "actions": ["pay"],
            "limits": {"max_amount": {"value": "99.00", "currency": "EUR"}},
        }
    )
    with pytest.raises(InvalidAuthorizationDetails):
        derive_token(subject(), form(), context(), requested_details=wider)


def test_scope_only_narrows() -> None:
    assert derive_token(subject(), form(scope="read"), context()).scope == "read"
    assert derive_token(subject(), form(), context()).scope == "read pay"
    with pytest.raises(InvalidScope):
        derive_token(subject(), form(scope="admin"), context())


def test_lifetime_bounds() -> None:  # TX-17
    assert derive_token(subject(), form(), context(ttl=60)).exp == NOW + 60
    assert derive_token(subject(), form(), context(grant_expires_at=NOW + 30)).exp == NOW + 30
    with pytest.raises(InvalidRequest, match="expired"):
        derive_token(subject(), form(), context(grant_expires_at=NOW))


def test_malformed_subject_capabilities() -> None:
    broken = subject(authorization_details=[{"type": "api", "locations": ["not a url"]}])
    with pytest.raises(InvalidRequest, match="malformed"):
        derive_token(broken, form(), context())
