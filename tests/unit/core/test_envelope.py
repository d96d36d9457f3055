"""Limits, envelope decisions, counters' buckets, money and plain-language summaries."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.core.capabilities import parse_authorization_details
from app.core.envelope import (
    Limits,
    NotCovered,
    amount_from_request,
    budget_bucket,
    envelope_denial,
    limits_cover,
    narrow_limits,
    parse_limits,
    rate_bucket,
)
from app.core.money import Money, parse_amount, parse_money
from app.core.summary import summarize

BERLIN = ZoneInfo("Europe/Berlin")
FULL = {
    "max_amount": {"value": "50.00", "currency": "EUR"},
    "budget": {"value": "200.00", "currency": "EUR", "period": "day", "time_zone": "Europe/Berlin"},
    "rate": {"max_requests": 60, "period": "minute"},
    "time_windows": [
        {
            "days": ["mon", "tue", "wed", "thu", "fri"],
            "start": "09:00",
            "end": "17:00",
            "time_zone": "Europe/Berlin",
        }
    ],
}


def at(year: int, month: int, day: int, hour: int, minute: int = 0, tz: ZoneInfo = BERLIN) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=tz).timestamp())


MONDAY_NOON = at(2026, 11, 23, 12)
SATURDAY_NOON = at(2026, 11, 28, 12)


def eur(value: str) -> Money:
    return parse_amount(value, "EUR", positive=False)


def test_parse_and_serialise_limits() -> None:
    limits = parse_limits(FULL)
    assert limits.to_dict() == FULL
    assert limits.currency == "EUR"
    assert Limits().currency is None


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ({}, "non-empty"),
        ([], "non-empty"),
        ({"max_amount": "50"}, "object"),
        ({"max_amount": {"value": "0", "currency": "EUR"}}, "greater than zero"),
        ({"max_amount": {"value": "1", "currency": "EUR", "x": 1}}, "unknown member"),
        ({"max_amount": {"value": "01.00", "currency": "EUR"}}, "invalid amount"),
        ({"max_amount": {"value": "1.5", "currency": "JPY"}}, "0 decimal places"),
        ({"max_amount": {"value": "1e3", "currency": "EUR"}}, "invalid amount"),
        ({"budget": {"value": "1", "currency": "EUR", "period": "year"}}, "period"),
        ({"budget": "x"}, "object"),
        (
            {
                "budget": {
                    "value": "1",
                    "currency": "EUR",
                    "period": "day",
                    "time_zone": "Mars/Base",
                }
            },
            "time zone",
        ),
        (
            {"budget": {"value": "1", "currency": "EUR", "period": "day", "time_zone": "../etc"}},
            "IANA",
        ),
        ({"rate": {"max_requests": 0, "period": "minute"}}, "positive"),
        ({"rate": {"max_requests": True, "period": "minute"}}, "positive"),
        ({"rate": {"max_requests": 5, "period": "fortnight"}}, "period"),
        ({"rate": {"max_requests": 5}}, "rate is"),
        ({"time_windows": []}, "time_windows"),
        (
            {
                "time_windows": [
                    {"days": ["mon"], "start": "09:00", "end": "08:00", "time_zone": "UTC"}
                ]
            },
            "end after",
        ),
        (
            {
                "time_windows": [
                    {"days": ["mon"], "start": "9:00", "end": "18:00", "time_zone": "UTC"}
                ]
            },
            "HH:MM",
        ),
        (
            {
                "time_windows": [
                    {"days": ["monday"], "start": "09:00", "end": "18:00", "time_zone": "UTC"}
                ]
            },
            "days",
        ),
        (
            {
                "time_windows": [
                    {"days": ["mon", "mon"], "start": "09:00", "end": "18:00", "time_zone": "UTC"}
                ]
            },
            "repeat",
        ),
        ({"time_windows": [{"days": ["mon"], "start": "09:00", "end": "18:00"}]}, "exactly"),
        (
            {
                "max_amount": {"value": "1", "currency": "EUR"},
                "budget": {"value": "1", "currency": "USD", "period": "day"},
            },
            "same currency",
        ),
    ],
)
def test_invalid_limits(obj: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_limits(obj)


def test_amounts_are_strings_not_floats() -> None:
    with pytest.raises(ValueError, match="decimal strings"):
        parse_amount(12.5, "EUR")
    assert parse_amount("12.5", "EUR").minor_units == 1250
    assert parse_amount("1000", "JPY").minor_units == 1000
    assert parse_amount("1.234", "KWD").minor_units == 1234
    assert str(parse_amount("7", "EUR")) == "7.00 EUR"
    assert parse_money({"value": "0", "currency": "USD"}, positive=False).value == Decimal(0)
    assert amount_from_request({"value": "0.00", "currency": "EUR"}).minor_units == 0


# decisions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "amount", "reason"),
    [
        (MONDAY_NOON, "12.50", None),
        (SATURDAY_NOON, "12.50", "outside_time_window"),
        (at(2026, 11, 23, 8, 59), "12.50", "outside_time_window"),
        (at(2026, 11, 23, 17, 0), "12.50", "outside_time_window"),
        (at(2026, 11, 23, 16, 59), "12.50", None),
        (MONDAY_NOON, "50.00", None),
        (MONDAY_NOON, "50.01", "amount_exceeds_limit"),
        (MONDAY_NOON, None, "amount_exceeds_limit"),
    ],
)
def test_envelope_denial(now: int, amount: str | None, reason: str | None) -> None:
    money = eur(amount) if amount is not None else None
    assert envelope_denial(parse_limits(FULL), amount=money, now=now) == reason


def test_envelope_denial_currency_mismatch_and_no_limits() -> None:
    usd = parse_amount("1", "USD")
    assert envelope_denial(parse_limits(FULL), amount=usd, now=MONDAY_NOON) == (
        "amount_exceeds_limit"
    )
    assert envelope_denial(None, amount=None, now=MONDAY_NOON) is None
    rate_only = parse_limits({"rate": {"max_requests": 1, "period": "second"}})
    assert envelope_denial(rate_only, amount=None, now=0) is None  # counted by the cache


def test_time_windows_follow_daylight_saving() -> None:
    window = parse_limits(
        {
            "time_windows": [
                {"days": ["sun"], "start": "02:30", "end": "03:30", "time_zone": "Europe/Berlin"}
            ]
        }
    )
    summer = at(2026, 7, 5, 3, 0)
    assert envelope_denial(window, amount=None, now=summer) is None
    assert envelope_denial(window, amount=None, now=summer + 3600) == "outside_time_window"


def test_buckets() -> None:
    limits = parse_limits(FULL)
    assert limits.rate is not None
    assert limits.budget is not None
    bucket, ttl = rate_bucket(limits.rate, 120)
    assert (bucket, ttl) == ("r:minute:2", 60)
    assert rate_bucket(limits.rate, 179) == ("r:minute:2", 1)
    # 23:30 UTC on Nov 22 is already Nov 23 in Berlin.
    late = int(datetime(2026, 11, 22, 23, 30, tzinfo=ZoneInfo("UTC")).timestamp())
    assert budget_bucket(limits.budget, late) == "b:day:Europe/Berlin:2026-11-23"
    for period, label in [("hour", "2026-11-23T00"), ("week", "2026-W48"), ("month", "2026-11")]:
        budget = parse_limits(
            {
                "budget": {
                    "value": "1",
                    "currency": "EUR",
                    "period": period,
                    "time_zone": "Europe/Berlin",
                }
            }
        ).budget
        assert budget is not None
        assert budget_bucket(budget, late) == f"b:{period}:Europe/Berlin:{label}"


# narrowing of limits ---------------------------------------------------------------------


def test_narrow_limits() -> None:
    granted = parse_limits(FULL)
    stricter = parse_limits(
        {
            "max_amount": {"value": "10.00", "currency": "EUR"},
            "rate": {"max_requests": 10, "period": "minute"},
            "time_windows": [
                {"days": ["mon"], "start": "10:00", "end": "11:00", "time_zone": "Europe/Berlin"}
            ],
        }
    )
    result = narrow_limits(granted, stricter)
    assert result is not None
    assert result.budget == granted.budget
    assert result.max_amount == stricter.max_amount
    assert limits_cover(granted, result)
    assert not limits_cover(granted, stricter)  # budget missing: stricter alone is unbounded
    assert narrow_limits(None, stricter) is stricter
    assert narrow_limits(granted, None) is granted
    assert limits_cover(None, None)
    assert not limits_cover(granted, None)


@pytest.mark.parametrize(
    "looser",
    [
        {"max_amount": {"value": "60.00", "currency": "EUR"}},
        {"max_amount": {"value": "10.00", "currency": "USD"}},
        {
            "budget": {
                "value": "100.00",
                "currency": "EUR",
                "period": "week",
                "time_zone": "Europe/Berlin",
            }
        },
        {"budget": {"value": "100.00", "currency": "EUR", "period": "day"}},
        {"rate": {"max_requests": 61, "period": "minute"}},
        {"rate": {"max_requests": 1, "period": "hour"}},
        {
            "time_windows": [
                {"days": ["sat"], "start": "10:00", "end": "11:00", "time_zone": "Europe/Berlin"}
            ]
        },
        {
            "time_windows": [
                {"days": ["mon"], "start": "08:00", "end": "11:00", "time_zone": "Europe/Berlin"}
            ]
        },
        {"time_windows": [{"days": ["mon"], "start": "10:00", "end": "11:00", "time_zone": "UTC"}]},
    ],
)
def test_narrow_limits_refuses_looser_or_incomparable(looser: dict[str, Any]) -> None:
    with pytest.raises(NotCovered):
        narrow_limits(parse_limits(FULL), parse_limits(looser))


# summaries ---------------------------------------------------------------------------------------

SHOP = "https://shop.example.com"


def summary_of(obj: dict[str, Any], registry: dict[str, Any] | None = None) -> str:
    (detail,) = parse_authorization_details([obj], registry or {SHOP: {}})
    return summarize(detail, registry)


def test_summary_states_every_limit() -> None:
    text = summary_of({"type": "api", "locations": [SHOP], "actions": ["pay"], "limits": FULL})
    assert text == (
        "Make payments of up to 50.00 EUR each, 200.00 EUR per day (Europe/Berlin), at most 60"
        " requests a minute, Mon\u2013Fri 09:00\u201317:00 Europe/Berlin, at shop.example.com"
    )


def test_summary_of_other_shapes() -> None:
    assert summary_of(
        {
            "type": "api",
            "locations": [SHOP],
            "actions": ["read", "export"],
            "identifier": "orders/*",
        }
    ) == ('Read data and perform "export", on orders/*, at shop.example.com')
    assert summary_of(
        {
            "type": "https://shop.example.com/rar/x",
            "locations": [SHOP],
            "limits": {
                "rate": {"max_requests": 1, "period": "hour"},
                "time_windows": [
                    {"days": ["sat", "sun"], "start": "00:00", "end": "24:00", "time_zone": "UTC"},
                    {
                        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                        "start": "12:00",
                        "end": "13:00",
                        "time_zone": "UTC",
                    },
                ],
            },
        },
        {SHOP: {"https://shop.example.com/rar/x": {"type": "object"}}},
    ) == (
        "Use the service without naming an action, at most 1 request an hour, Sat, Sun"
        " 00:00\u201324:00 UTC or every day 12:00\u201313:00 UTC"
        " (https://shop.example.com/rar/x), at shop.example.com"
    )


TRANSFER = "https://bank.example.com/rar/transfer"
TRANSFER_SCHEMA = {
    "type": "object",
    "title": "Credit transfer",
    "properties": {
        "actions": {},
        "instructedAmount": {
            "title": "Amount",
            "type": "object",
            "properties": {"currency": {"title": "Currency"}, "amount": {"title": "Sum"}},
        },
        "creditorName": {"title": "Creditor", "type": "string"},
        "creditorAccount": {"type": "object"},
    },
}


def test_summary_shows_every_member_with_the_schemas_titles() -> None:
    """Nothing that changes what the human agrees to is left to the raw JSON."""
    text = summary_of(
        {
            "type": TRANSFER,
            "locations": [SHOP],
            "actions": ["transfer"],
            "instructedAmount": {"currency": "EUR", "amount": "123.50"},
            "creditorName": "Merchant A",
            "creditorAccount": {"iban": "DE02100100109307118603"},
        },
        {SHOP: {TRANSFER: TRANSFER_SCHEMA}},
    )
    assert text == (
        "Transfer money (Credit transfer), with creditorAccount: {iban:"
        " \u201cDE02100100109307118603\u201d}; Creditor: \u201cMerchant A\u201d;"
        " Amount: {Sum: \u201c123.50\u201d; Currency: \u201cEUR\u201d}, at shop.example.com"
    )


def test_summary_shows_data_types_and_privileges() -> None:
    text = summary_of(
        {
            "type": "api",
            "locations": [SHOP],
            "actions": ["read"],
            "datatypes": ["contacts", "photos"],
            "privileges": ["admin"],
        }
    )
    assert text == (
        "Read data, data types contacts and photos, privileges admin, at shop.example.com"
    )


def test_summary_shows_member_values_of_every_json_kind() -> None:
    kind = "https://shop.example.com/rar/order"
    schema = {
        "type": "object",
        "properties": {
            "actions": {},
            "gift": {"title": "Gift wrap"},
            "note": {},
            "items": {"type": "array", "items": {"type": "object", "properties": {}}},
            "quantity": {"title": "Quantity"},
        },
    }
    text = summary_of(
        {
            "type": kind,
            "locations": [SHOP],
            "actions": ["purchase"],
            "gift": True,
            "note": None,
            "items": [{"sku": "A-1"}, {"sku": "B-2"}],
            "quantity": 3,
        },
        {SHOP: {kind: schema}},
    )
    assert text == (
        f"Make purchases ({kind}), with Gift wrap: yes; items: {{sku: \u201cA-1\u201d}} and"
        " {sku: \u201cB-2\u201d}; note: none; Quantity: 3, at shop.example.com"
    )
