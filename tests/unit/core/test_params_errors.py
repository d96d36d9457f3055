"""Strict form parsing (TOK-03, TOK-04, TOK-05) and the error classes."""

from __future__ import annotations

import pytest

from app.core.errors import (
    ALL_ERRORS,
    InvalidClient,
    InvalidDPoPProof,
    InvalidRequest,
    OAuthError,
    UseDPoPNonce,
    safe_description,
    www_authenticate,
)
from app.core.params import parse_form
from app.core.strict_json import JSONError, parse_json


def test_parse_form_basics() -> None:
    form = parse_form(b"grant_type=refresh_token&scope=&foo=bar&refresh_token=a%2Bb+c")
    assert dict(form) == {"grant_type": "refresh_token", "foo": "bar", "refresh_token": "a+b c"}
    assert "scope" not in form  # TOK-04: empty = absent
    assert len(form) == 3
    assert form.getlist("foo") == ("bar",)
    assert form.getlist("missing") == ()
    assert form.require("foo") == "bar"


def test_duplicates_are_rejected_except_resource_and_audience() -> None:  # TOK-03
    with pytest.raises(InvalidRequest, match="more than once"):
        parse_form(b"grant_type=a&grant_type=b")
    with pytest.raises(InvalidRequest, match="more than once"):
        parse_form(b"subject_token=a&subject_token=a")
    form = parse_form(b"resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb&audience=x")
    assert form.getlist("resource") == ("https://a", "https://b")
    assert form.getlist("audience") == ("x",)
    assert "resource" not in form


def test_empty_duplicate_is_not_a_duplicate() -> None:
    assert parse_form(b"scope=&scope=read")["scope"] == "read"


def test_required_parameter_named_in_the_error() -> None:
    with pytest.raises(InvalidRequest, match="grant_type"):
        parse_form(b"").require("grant_type")


def test_size_limits() -> None:
    with pytest.raises(InvalidRequest) as err:
        parse_form(b"a=" + b"x" * 70_000)
    assert err.value.status == 413
    with pytest.raises(InvalidRequest, match="Too many"):
        parse_form(b"&".join(b"p%d=1" % i for i in range(100)))
    with pytest.raises(InvalidRequest, match="too long"):
        parse_form(b"a=" + b"x" * 20_000, max_bytes=100_000)


def test_invalid_utf8() -> None:
    with pytest.raises(InvalidRequest, match="UTF-8"):
        parse_form(b"a=%ff")
    with pytest.raises(InvalidRequest, match="UTF-8"):
        parse_form(b"%ff=1")


def test_nul_characters_are_refused() -> None:
    for body in (b"auth_req_id=a%00b", b"a%00=1", b"x=%00"):
        with pytest.raises(InvalidRequest, match="NUL"):
            parse_form(body)


def test_strict_json_refuses_nul_but_not_an_escaped_backslash() -> None:
    for raw in (rb'"a\u0000b"', rb'{"k\u0000": 1}', rb'["\\\u0000"]'):
        with pytest.raises(JSONError, match="NUL"):
            parse_json(raw)
    assert parse_json(rb'"a\\u0000b"') == "a\\u0000b"
    assert parse_json(rb'"\u0001"') == "\x01"


def test_strict_json_refuses_unpaired_surrogates_but_not_pairs() -> None:
    for raw in (rb'"\ud800"', rb'"a\udc00"', rb'{"\ud83dx": 1}', rb'[{"a": ["\ude00\ud83d"]}]'):
        with pytest.raises(JSONError, match="unpaired surrogate"):
            parse_json(raw)
    assert parse_json(rb'"\ud83d\ude00"') == "\U0001f600"
    assert parse_json(rb'"\\ud800"') == "\\ud800"  # an escaped backslash, then text


def test_flag_without_value_is_absent() -> None:
    assert dict(parse_form(b"flag&x=1")) == {"x": "1"}


# errors -------------------------------------------------------------------------------------------


def test_every_error_has_a_distinct_code_and_a_client_or_server_status() -> None:
    codes = [cls.error for cls in ALL_ERRORS]
    assert len(set(codes)) == len(codes)
    for cls in ALL_ERRORS:
        error = cls("x") if cls is not UseDPoPNonce else cls("nonce")
        assert 400 <= error.status < 600
        assert error.body()["error"] == cls.error


def test_public_description_and_log_only_detail_are_separate() -> None:
    error = InvalidClient(detail="kid abc unknown for agent agt_1")
    assert error.body() == {
        "error": "invalid_client",
        "error_description": "Client authentication failed.",
    }
    assert "agt_1" in str(error)
    assert error.status == 401


def test_description_is_restricted_to_the_rfc_alphabet() -> None:  # TOK-13
    error = InvalidRequest('bad "quote" and \\ backslash \u00e9\n')
    assert error.description == "bad 'quote' and / backslash ??"  # still readable
    assert safe_description("x" * 1000) == "x" * 300


def test_headers_and_status_override() -> None:
    nonce = UseDPoPNonce("n-1")
    assert dict(nonce.headers) == {"DPoP-Nonce": "n-1"}
    assert nonce.nonce == "n-1"
    error = InvalidDPoPProof(status_code=401, headers={"WWW-Authenticate": "DPoP"})
    assert (error.status, dict(error.headers)) == (401, {"WWW-Authenticate": "DPoP"})
    assert isinstance(error, OAuthError)


def test_www_authenticate() -> None:
    assert www_authenticate("DPoP") == "DPoP"
    assert www_authenticate("DPoP", algs=("ES256", "EdDSA")) == 'DPoP algs="ES256 EdDSA"'
    assert (
        www_authenticate("DPoP", error="invalid_token", description='Invalid "DPoP" key binding')
        == 'DPoP error="invalid_token", error_description="Invalid \'DPoP\' key binding"'
    )
    assert www_authenticate("Basic", realm='a"b') == 'Basic realm="a\\"b"'
