"""RFC 8785 canonicalisation vectors and the approval challenge binding."""

from __future__ import annotations

import json
import struct

import pytest

from app.core.approvals import CHALLENGE_BYTES, challenge_binds, new_challenge, request_digest
from app.core.jcs import canonicalize

# RFC 8785 Appendix B: IEEE 754 bit patterns and their ECMAScript serialisation.
NUMBERS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


@pytest.mark.parametrize(("bits", "expected"), NUMBERS)
def test_rfc8785_number_serialisation(bits: str, expected: str) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(bits))
    assert canonicalize(value).decode() == expected


def test_rfc8785_main_example() -> None:  # RFC 8785 §3.2.2
    source = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonicalize(json.loads(source)).decode() == expected


def test_rfc8785_utf16_member_order() -> None:  # RFC 8785 §3.2.3
    source = (
        '{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", "\\ufb33": "Hebrew Letter Dalet With'
        ' Dagesh", "1": "One", "\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control",'
        ' "\\u00f6": "Latin Small Letter O With Diaeresis"}'
    )
    order = list(json.loads(canonicalize(json.loads(source))))
    assert order == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


def test_rfc8785_string_escapes_every_control_character() -> None:  # RFC 8785 §3.2.2.2
    named = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}
    for code in range(0x20):
        expected = named.get(code, f"\\u{code:04x}")
        assert canonicalize(chr(code)).decode() == f'"{expected}"'
    # Quote and backslash are escaped; DEL, U+2028, non-ASCII and astral characters are not.
    assert canonicalize('"\\\x7f\u2028\u00e9\U0001d11e').decode() == (
        '"\\"\\\\\x7f\u2028\u00e9\U0001d11e"'
    )


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), 2**53, -(2**53), {1: "x"}, {"a": object()}, "\ud800"],
    ids=["nan", "inf", "big-int", "big-negative", "int-key", "object", "lone-surrogate"],
)
def test_values_without_a_canonical_form(value: object) -> None:
    with pytest.raises(ValueError, match=r"canonical|JSON|string"):
        canonicalize(value)


def test_tuples_and_nested_structures() -> None:
    assert canonicalize({"b": (1, 2.5), "a": {"d": None, "c": True}}) == (
        b'{"a":{"c":true,"d":null},"b":[1,2.5]}'
    )


REQUEST = {
    "auth_req_id": "req_1",
    "agent": "agt_a",
    "authorization_details": [
        {"type": "api", "locations": ["https://shop.example.com"], "actions": ["pay"]}
    ],
    "binding_message": "Order 42",
}


def test_challenge_binds_exactly_the_request() -> None:
    challenge = new_challenge(REQUEST)
    assert len(challenge) == CHALLENGE_BYTES == 64
    assert challenge[32:] == request_digest(REQUEST)
    assert challenge_binds(challenge, dict(reversed(list(REQUEST.items()))))
    changed = {**REQUEST, "binding_message": "Order 43"}
    assert not challenge_binds(challenge, changed)
    assert not challenge_binds(challenge[:63], REQUEST)


def test_challenges_are_unpredictable() -> None:  # WA-01
    challenges = {new_challenge(REQUEST) for _ in range(1000)}
    assert len(challenges) == 1000
    assert len({c[32:] for c in challenges}) == 1
