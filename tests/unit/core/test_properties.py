"""Hypothesis properties of coverage, narrowing and JSON canonicalisation."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from app.core.approvals import canonicalize, request_digest
from app.core.capabilities import AuthorizationDetail, covers, narrow
from app.core.envelope import Budget, Limits, NotCovered, Rate, TimeWindow
from app.core.money import Money

LOCATIONS = ("https://shop.example.com", "https://bank.example.com")
ACTIONS = ("read", "write", "pay", "refund")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def optional_subset(pool: tuple[str, ...]) -> st.SearchStrategy[tuple[str, ...] | None]:
    return st.none() | st.sets(st.sampled_from(pool), min_size=1).map(lambda s: tuple(sorted(s)))


money = st.integers(min_value=1, max_value=10_000).map(
    lambda c: Money(Decimal(c).scaleb(-2), "EUR")
)
windows = st.builds(
    lambda days, start, length: TimeWindow(
        frozenset(days), start, min(start + length, 1440), "Europe/Berlin"
    ),
    st.sets(st.sampled_from(DAYS), min_size=1),
    st.integers(min_value=0, max_value=1380),
    st.integers(min_value=1, max_value=600),
)
limits = st.none() | st.builds(
    Limits,
    max_amount=st.none() | money,
    budget=st.none() | money.map(lambda m: Budget(m, "day")),
    rate=st.none() | st.integers(min_value=1, max_value=100).map(lambda n: Rate(n, "minute")),
    time_windows=st.none() | st.lists(windows, min_size=1, max_size=2).map(tuple),
)
details = st.builds(
    AuthorizationDetail,
    type=st.just("api"),
    locations=st.sets(st.sampled_from(LOCATIONS), min_size=1).map(lambda s: tuple(sorted(s))),
    actions=optional_subset(ACTIONS),
    identifier=st.sampled_from([None, "o*", "or*", "orders", "ord"]),
    limits=limits,
)


@given(details)
def test_coverage_is_reflexive(detail: AuthorizationDetail) -> None:
    assert covers(detail, detail)


@given(details, details)
@settings(max_examples=500)
def test_narrowing_is_covered_by_its_source_and_never_loosens_a_limit(
    granted: AuthorizationDetail, requested: AuthorizationDetail
) -> None:
    try:
        result = narrow(granted, requested)
    except NotCovered:
        return
    assert covers(granted, result)
    g, r = granted.limits, result.limits
    if g is None:
        return
    assert r is not None
    if g.max_amount:
        assert r.max_amount is not None
        assert r.max_amount.value <= g.max_amount.value
    if g.budget:
        assert r.budget is not None
        assert r.budget.money.value <= g.budget.money.value
    if g.rate:
        assert r.rate is not None
        assert r.rate.max_requests <= g.rate.max_requests
    if g.time_windows:
        assert r.time_windows is not None
        assert all(any(gw.contains(rw) for gw in g.time_windows) for rw in r.time_windows)


def narrowed_or_same(granted: AuthorizationDetail, requested: AuthorizationDetail) -> Any:
    """``narrow(granted, requested)``, or ``granted`` itself when ``requested`` asks for more
    (most random pairs do: filtering them out starved the generator)."""
    try:
        return narrow(granted, requested)
    except NotCovered:
        return narrow(granted, granted)


@given(details, details, details)
@settings(max_examples=300)
def test_coverage_is_transitive(
    a: AuthorizationDetail, r1: AuthorizationDetail, r2: AuthorizationDetail
) -> None:
    b = narrowed_or_same(a, r1)
    c = narrowed_or_same(b, r2)
    assert covers(a, b)
    assert covers(b, c)
    assert covers(a, c)


@given(details, details, details)
def test_coverage_is_transitive_on_arbitrary_triples(
    a: AuthorizationDetail, b: AuthorizationDetail, c: AuthorizationDetail
) -> None:
    if covers(a, b) and covers(b, c):
        assert covers(a, c)


# JCS -------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)


def _shuffled(value: Any, seed: int) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        items = items[seed % (len(items) or 1) :] + items[: seed % (len(items) or 1)]
        return {k: _shuffled(v, seed + 1) for k, v in reversed(items)}
    if isinstance(value, list):
        return [_shuffled(v, seed + 1) for v in value]
    return value


@given(json_values, st.integers(min_value=0, max_value=50))
def test_jcs_is_stable_under_member_order(value: Any, seed: int) -> None:
    assert canonicalize(_shuffled(value, seed)) == canonicalize(value)


@given(json_values)
def test_jcs_is_stable_under_unicode_escapes(value: Any) -> None:
    try:
        canonicalize(value)
    except ValueError:
        assume(False)  # lone surrogates have no canonical form
    escaped = json.loads(json.dumps(value, ensure_ascii=True))
    plain = json.loads(json.dumps(value, ensure_ascii=False))
    assert canonicalize(escaped) == canonicalize(plain) == canonicalize(value)
    if isinstance(value, dict):
        assert request_digest(escaped) == request_digest(value)


def _parse_int(text: str) -> int | float:
    # JCS numbers are doubles: integers beyond 2**53 come back as the double they denote.
    value = int(text)
    return value if abs(value) <= 2**53 - 1 else float(value)


@given(json_values)
def test_jcs_output_is_json_and_canonicalisation_is_idempotent(value: Any) -> None:
    try:
        text = canonicalize(value)
    except ValueError:
        assume(False)
        return
    assert canonicalize(json.loads(text, parse_int=_parse_int)) == text
