"""The behavioural envelope of a capability: the ``limits`` member (docs/protocol.md
"Capabilities and envelopes").

``limits`` has up to four members, each optional::

    {"max_amount": {"value": "50.00", "currency": "EUR"},
     "budget": {"value": "200.00", "currency": "EUR", "period": "day", "time_zone": "UTC"},
     "rate": {"max_requests": 60, "period": "minute"},
     "time_windows": [{"days": ["mon", "tue"], "start": "09:00", "end": "17:00",
                       "time_zone": "Europe/Berlin"}]}

Budgets count per calendar period in their time zone; rates count per fixed window. Counters
belong to the grant, so a derived token with stricter limits shares its parent's counters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.core.money import Money, parse_money

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RATE_PERIODS: Mapping[str, int] = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
BUDGET_PERIODS = ("hour", "day", "week", "month")
_HHMM = re.compile(r"^(?:[01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")
LIMIT_MEMBERS = frozenset({"max_amount", "budget", "rate", "time_windows"})
MAX_WINDOWS = 14
MAX_RATE = 1_000_000


class NotCovered(ValueError):
    """A requested limit is looser than, or not comparable with, the granted one."""


def _zone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not name or len(name) > 64 or ".." in name:
        raise ValueError("time_zone must be an IANA time zone name such as Europe/Berlin")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name[:40]!r}") from None


def _minutes(hhmm: object) -> int:
    if not isinstance(hhmm, str) or not _HHMM.match(hhmm):
        raise ValueError("times are HH:MM between 00:00 and 24:00")
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True, slots=True)
class Budget:
    money: Money
    period: str
    time_zone: str = "UTC"


@dataclass(frozen=True, slots=True)
class Rate:
    max_requests: int
    period: str


@dataclass(frozen=True, slots=True)
class TimeWindow:
    days: frozenset[str]
    start: int  # minutes after midnight
    end: int  # exclusive
    time_zone: str

    def contains(self, other: TimeWindow) -> bool:
        return (
            self.time_zone == other.time_zone
            and other.days <= self.days
            and self.start <= other.start
            and other.end <= self.end
        )

    def is_open(self, now: int) -> bool:
        local = datetime.fromtimestamp(now, tz=ZoneInfo(self.time_zone))
        minute = local.hour * 60 + local.minute
        return DAYS[local.weekday()] in self.days and self.start <= minute < self.end

    def to_dict(self) -> dict[str, object]:
        return {
            "days": [d for d in DAYS if d in self.days],
            "start": f"{self.start // 60:02d}:{self.start % 60:02d}",
            "end": f"{self.end // 60:02d}:{self.end % 60:02d}",
            "time_zone": self.time_zone,
        }


@dataclass(frozen=True, slots=True)
class Limits:
    max_amount: Money | None = None
    budget: Budget | None = None
    rate: Rate | None = None
    time_windows: tuple[TimeWindow, ...] | None = None

    @property
    def currency(self) -> str | None:
        """The currency of the amount limits, when there are any (they share one)."""
        money = self.max_amount or (self.budget.money if self.budget else None)
        return money.currency if money else None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.max_amount is not None:
            out["max_amount"] = self.max_amount.to_dict()
        if self.budget is not None:
            out["budget"] = {
                **self.budget.money.to_dict(),
                "period": self.budget.period,
                "time_zone": self.budget.time_zone,
            }
        if self.rate is not None:
            out["rate"] = {"max_requests": self.rate.max_requests, "period": self.rate.period}
        if self.time_windows is not None:
            out["time_windows"] = [w.to_dict() for w in self.time_windows]
        return out


def _parse_budget(obj: object) -> Budget:
    if not isinstance(obj, Mapping):
        raise ValueError("budget must be an object")
    money = parse_money(obj, extra=frozenset({"period", "time_zone"}))
    if obj.get("period") not in BUDGET_PERIODS:
        raise ValueError(f"budget period must be one of {', '.join(BUDGET_PERIODS)}")
    zone = obj.get("time_zone", "UTC")
    _zone(zone)
    return Budget(money, str(obj["period"]), str(zone))


def _parse_rate(obj: object) -> Rate:
    if not isinstance(obj, Mapping) or set(obj) != {"max_requests", "period"}:
        raise ValueError('rate is {"max_requests": <integer>, "period": "minute"}')
    count, period = obj["max_requests"], obj["period"]
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_RATE:
        raise ValueError("rate max_requests must be a positive integer")
    if not isinstance(period, str) or period not in RATE_PERIODS:
        raise ValueError(f"rate period must be one of {', '.join(RATE_PERIODS)}")
    return Rate(count, period)


def _parse_window(obj: object) -> TimeWindow:
    if not isinstance(obj, Mapping) or set(obj) != {"days", "start", "end", "time_zone"}:
        raise ValueError("a time window has exactly days, start, end and time_zone")
    days = obj["days"]
    if not isinstance(days, list) or not days or not all(d in DAYS for d in days):
        raise ValueError(f"days must be a non-empty list of {', '.join(DAYS)}")
    if len(set(days)) != len(days):
        raise ValueError("days must not repeat")
    start, end = _minutes(obj["start"]), _minutes(obj["end"])
    if start >= end:
        raise ValueError("a time window must end after it starts (no overnight windows)")
    _zone(obj["time_zone"])
    return TimeWindow(frozenset(days), start, end, str(obj["time_zone"]))


def parse_limits(obj: object) -> Limits:
    """Validate a ``limits`` object; raises ``ValueError`` naming the first problem."""
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError("limits must be a non-empty object")
    unknown = set(obj) - LIMIT_MEMBERS
    if unknown:
        raise ValueError(f"unknown limit {sorted(unknown)[0]!r}")
    windows = obj.get("time_windows")
    if windows is not None and (
        not isinstance(windows, list) or not windows or len(windows) > MAX_WINDOWS
    ):
        raise ValueError(f"time_windows must be a list of 1 to {MAX_WINDOWS} windows")
    limits = Limits(
        max_amount=parse_money(obj["max_amount"]) if "max_amount" in obj else None,
        budget=_parse_budget(obj["budget"]) if "budget" in obj else None,
        rate=_parse_rate(obj["rate"]) if "rate" in obj else None,
        time_windows=tuple(_parse_window(w) for w in windows) if windows is not None else None,
    )
    if _mixed_currencies(limits):
        raise ValueError("max_amount and budget must use the same currency")
    return limits


def _mixed_currencies(limits: Limits) -> bool:
    """One limits object speaks one currency: a maximum and a budget in two would each
    bound a different amount of the same payment."""
    budget = limits.budget.money if limits.budget else None
    return bool(limits.max_amount and budget and limits.max_amount.currency != budget.currency)


def narrow_limits(granted: Limits | None, requested: Limits | None) -> Limits | None:
    """The limits of a derived capability: ``requested`` where given, else ``granted``.

    Raises :class:`NotCovered` when a requested limit is looser than the granted one or not
    comparable (another currency, period or time zone), so narrowing never loosens a limit.
    """
    if granted is None:
        return requested
    if requested is None:
        return granted
    g, r = granted, requested
    if (
        g.max_amount
        and r.max_amount
        and not (
            r.max_amount.currency == g.max_amount.currency
            and r.max_amount.value <= g.max_amount.value
        )
    ):
        raise NotCovered("max_amount exceeds the granted maximum")
    if (
        g.budget
        and r.budget
        and not (
            (r.budget.period, r.budget.time_zone, r.budget.money.currency)
            == (g.budget.period, g.budget.time_zone, g.budget.money.currency)
            and r.budget.money.value <= g.budget.money.value
        )
    ):
        raise NotCovered("budget exceeds or is not comparable with the granted budget")
    if (
        g.rate
        and r.rate
        and not (r.rate.period == g.rate.period and r.rate.max_requests <= g.rate.max_requests)
    ):
        raise NotCovered("rate exceeds or is not comparable with the granted rate")
    if (
        g.time_windows
        and r.time_windows
        and not all(any(gw.contains(rw) for gw in g.time_windows) for rw in r.time_windows)
    ):
        raise NotCovered("time_windows reach outside the granted windows")
    derived = Limits(
        max_amount=r.max_amount or g.max_amount,
        budget=r.budget or g.budget,
        rate=r.rate or g.rate,
        time_windows=r.time_windows or g.time_windows,
    )
    if _mixed_currencies(derived):
        raise NotCovered("max_amount and budget would use different currencies")
    return derived


def limits_cover(granted: Limits | None, candidate: Limits | None) -> bool:
    """True when ``candidate`` is at least as strict as ``granted`` in every limit."""
    if granted is None:
        return True
    if candidate is None or not _has_every_limit(granted, candidate):
        return False
    try:
        narrow_limits(granted, candidate)
    except NotCovered:
        return False
    return True


def _has_every_limit(granted: Limits, candidate: Limits) -> bool:
    pairs = (
        (granted.max_amount, candidate.max_amount),
        (granted.budget, candidate.budget),
        (granted.rate, candidate.rate),
        (granted.time_windows, candidate.time_windows),
    )
    return all(c is not None for g, c in pairs if g is not None)


def envelope_denial(limits: Limits | None, *, amount: Money | None, now: int) -> str | None:
    """The checks of ``limits`` that need no counter: ``None`` to allow, else the ``/verify``
    reason code. Order: time window, currency, per-transaction maximum. A capability with an
    amount limit requires an amount in the same currency (else ``amount_exceeds_limit``).
    The rate and the budget are counted atomically by the cache (:mod:`app.core.decision`
    names the counters)."""
    if limits is None:
        return None
    if limits.time_windows and not any(w.is_open(now) for w in limits.time_windows):
        return "outside_time_window"
    if limits.currency is not None and (amount is None or amount.currency != limits.currency):
        return "amount_exceeds_limit"
    if limits.max_amount and amount and amount.value > limits.max_amount.value:
        return "amount_exceeds_limit"
    return None


def rate_bucket(rate: Rate, now: int) -> tuple[str, int]:
    """Fixed-window counter id and the seconds until it can be dropped."""
    size = RATE_PERIODS[rate.period]
    window = now // size
    return f"r:{rate.period}:{window}", (window + 1) * size - now


@lru_cache(maxsize=256)  # one entry per budget and second: hot at the verifier
def budget_bucket(budget: Budget, now: int) -> str:
    """Calendar-period counter id in the budget's time zone (``2026-11-22`` for a day)."""
    local = datetime.fromtimestamp(now, tz=ZoneInfo(budget.time_zone))
    if budget.period == "hour":
        label = local.strftime("%Y-%m-%dT%H")
    elif budget.period == "day":
        label = local.strftime("%Y-%m-%d")
    elif budget.period == "week":
        year, week, _ = local.isocalendar()
        label = f"{year}-W{week:02d}"
    else:
        label = local.strftime("%Y-%m")
    return f"b:{budget.period}:{budget.time_zone}:{label}"


def amount_from_request(obj: object) -> Money:
    """Parse the ``amount`` of a ``/verify`` request (zero allowed)."""
    return parse_money(obj, positive=False)
