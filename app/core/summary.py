"""Plain-language summaries of capabilities for the approval page.

A human approves what they read here, so the text states every limit and never hides one:
"Make payments of up to 50.00 EUR each, 200.00 EUR per day (Europe/Berlin), at most 60
requests a minute, Mon-Fri 09:00-17:00 Europe/Berlin, at shop.example" (with en dashes).
Every member that changes what is granted appears: data types, privileges, and each member
of a registered type, named by its schema's ``title`` where it has one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from app.core.capabilities import AuthorizationDetail, TypeRegistry
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
    if actions is None:  # such a capability allows no request that names an action
        return "Use the service without naming an action"
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
        budget = limits.budget
        parts.append(f"{budget.money} per {budget.period} ({budget.time_zone})")
    if limits.rate is not None:
        count = limits.rate.max_requests
        noun = "request" if count == 1 else "requests"
        parts.append(f"at most {count} {noun} {_PERIOD_WORDS[limits.rate.period]}")
    if limits.time_windows:
        parts.append(" or ".join(_window(w) for w in limits.time_windows))
    return parts


def _title(schema: Mapping[str, Any] | None, name: str) -> str:
    """A member's title from its schema (``properties.<name>.title``), else its name."""
    member = ((schema or {}).get("properties") or {}).get(name)
    title = member.get("title") if isinstance(member, Mapping) else None
    return title if isinstance(title, str) and title else name


def _value(value: Any, schema: Mapping[str, Any] | None) -> str:
    """A member's value as text, nested objects with their members' titles."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "none"
    if isinstance(value, str):
        return f"\u201c{value}\u201d"
    if isinstance(value, list):
        items = (schema or {}).get("items")
        return _join([_value(v, items if isinstance(items, Mapping) else None) for v in value])
    if isinstance(value, Mapping):
        return "{" + _members(value, schema) + "}"
    return str(value)


def _members(obj: Mapping[str, Any], schema: Mapping[str, Any] | None) -> str:
    properties = (schema or {}).get("properties") or {}
    return "; ".join(
        f"{_title(schema, name)}: "
        + _value(value, properties.get(name) if isinstance(properties, Mapping) else None)
        for name, value in sorted(obj.items())
    )


def summarize(detail: AuthorizationDetail, types: TypeRegistry | None = None) -> str:
    """One sentence describing everything ``detail`` grants (all values come from validated
    input); ``types`` supplies the registered schemas' titles."""
    schema = (types or {}).get(detail.locations[0], {}).get(detail.type)
    text = _action_phrase(detail.actions)
    limit_parts = describe_limits(detail.limits) if detail.limits else []
    if limit_parts and limit_parts[0].startswith("of up to"):
        text += " " + limit_parts.pop(0)
    if limit_parts:
        text += ", " + ", ".join(limit_parts)
    if detail.identifier is not None:
        text += f", on {detail.identifier}"
    if detail.datatypes is not None:
        text += f", data types {_join(list(detail.datatypes))}"
    if detail.privileges is not None:
        text += f", privileges {_join(list(detail.privileges))}"
    if detail.type != "api":
        title = (schema or {}).get("title")
        text += f" ({title if isinstance(title, str) and title else detail.type})"
    if detail.extra:
        text += ", with " + _members(detail.extra, schema)
    hosts = [urlsplit(loc).netloc + urlsplit(loc).path for loc in detail.locations]
    return f"{text}, at {_join(hosts)}"
