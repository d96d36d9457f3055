"""Plain-language summaries of capabilities for the approval page.

A human approves what they read here, so the text states every limit and never hides one:
"Make payments of up to 50.00 EUR each, 200.00 EUR per day, at most 60 requests a minute,
Mon-Fri 09:00-17:00 Europe/Berlin, at shop.example" (with en dashes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from app.core.capabilities import AuthorizationDetail
from app.core.envelope import DAYS, Limits, TimeWindow

ACTION_PHRASES: Mapping[str, str] = {
    "pay": "Make payments",
    "payment": "Make payments",
    "purchase": "Make purchases",
    "transact": "Make transactions",
    "refund": "Issue refunds",
    "transfer": "Transfer money",
    "read": "Read data",
    "list": "List data",
    "write": "Write data",
    "create": "Create items",
    "update": "Change items",
    "delete": "Delete items",
    "book": "Make bookings",
    "cancel": "Cancel bookings",
}
_PERIOD_WORDS = {"second": "a second", "minute": "a minute", "hour": "an hour", "day": "a day"}


def _join(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _action_phrase(actions: Sequence[str] | None) -> str:
    if actions is None:
        return "Use any action"
    phrases = [ACTION_PHRASES.get(a, f'Perform "{a}"') for a in actions]
    first, rest = phrases[0], [p[0].lower() + p[1:] for p in phrases[1:]]
    return _join([first, *rest])


def _days(days: frozenset[str]) -> str:
    ordered = [d for d in DAYS if d in days]
    indices = [DAYS.index(d) for d in ordered]
    names = [d.capitalize() for d in ordered]
    if len(ordered) == 7:
        return "every day"
    if len(ordered) > 2 and indices == list(range(indices[0], indices[-1] + 1)):
        return f"{names[0]}\u2013{names[-1]}"
    return ", ".join(names)


def _window(window: TimeWindow) -> str:
    shown = window.to_dict()
    return f"{_days(window.days)} {shown['start']}\u2013{shown['end']} {window.time_zone}"


def describe_limits(limits: Limits) -> list[str]:
    """Each limit as a short phrase, in a fixed order."""
    parts = []
    if limits.max_amount is not None:
        parts.append(f"of up to {limits.max_amount} each")
    if limits.budget is not None:
        parts.append(f"{limits.budget.money} per {limits.budget.period}")
    if limits.rate is not None:
        count = limits.rate.max_requests
        noun = "request" if count == 1 else "requests"
        parts.append(f"at most {count} {noun} {_PERIOD_WORDS[limits.rate.period]}")
    if limits.time_windows:
        parts.append(" or ".join(_window(w) for w in limits.time_windows))
    return parts


def summarize(detail: AuthorizationDetail, *, type_titles: Mapping[str, str] | None = None) -> str:
    """One sentence describing ``detail`` (all values come from validated input)."""
    text = _action_phrase(detail.actions)
    limit_parts = describe_limits(detail.limits) if detail.limits else []
    if limit_parts and limit_parts[0].startswith("of up to"):
        text += " " + limit_parts.pop(0)
    if limit_parts:
        text += ", " + ", ".join(limit_parts)
    if detail.identifier is not None:
        text += f", on {detail.identifier}"
    if detail.type != "api":
        title = (type_titles or {}).get(detail.type, detail.type)
        text += f" ({title})"
    hosts = [urlsplit(loc).netloc + urlsplit(loc).path for loc in detail.locations]
    return f"{text}, at {_join(hosts)}"
