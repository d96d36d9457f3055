"""Capabilities as RFC 9396 ``authorization_details``: parsing, coverage and narrowing.

Every object names its ``type`` and the ``locations`` (resource server URLs) it applies to.
``api`` is built in; other types are registered by resource servers with a JSON Schema.
Policy beyond RFC 9396: ``locations`` is required (a capability without a place is unbounded)
and type-specific members must be declared in the type's schema ``properties`` (RAR-02). For
a registered type the common members that grant something (``actions``, ``identifier``,
``datatypes``, ``privileges``) must be declared there too: a capability only ever allows what
its type declares (docs/protocol.md "Capability types").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing import Registry as SchemaRegistry
from referencing.exceptions import Unresolvable

from app.core.envelope import Limits, NotCovered, limits_cover, narrow_limits, parse_limits
from app.core.errors import InvalidAuthorizationDetails
from app.core.resources import canonical_resource
from app.core.strict_json import parse_json, strings_within
from app.core.text import check_display_text

BUILTIN_TYPE = "api"
ARRAY_FIELDS = ("locations", "actions", "datatypes", "privileges")
COMMON_FIELDS = frozenset({"type", "identifier", "limits", *ARRAY_FIELDS})
# Members whose presence widens what a capability allows; a registered type must declare them.
GRANTING_FIELDS = frozenset({"actions", "identifier", "datatypes", "privileges"})
MAX_DETAILS = 16
MAX_RAW_CHARS = 16 * 1024
MAX_ARRAY_ITEMS = 32
MAX_STRING_CHARS = 256

# resource URL -> {type -> JSON Schema} for the types that resource server accepts.
TypeRegistry = Mapping[str, Mapping[str, Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class AuthorizationDetail:
    """One validated capability. ``None`` for an array field means "not restricted"."""

    type: str
    locations: tuple[str, ...]
    actions: tuple[str, ...] | None = None
    identifier: str | None = None
    datatypes: tuple[str, ...] | None = None
    privileges: tuple[str, ...] | None = None
    limits: Limits | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "locations": list(self.locations)}
        for name in ARRAY_FIELDS[1:]:
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value)
        if self.identifier is not None:
            out["identifier"] = self.identifier
        if self.limits is not None:
            out["limits"] = self.limits.to_dict()
        return {**out, **self.extra}


# References resolve inside the schema only: this registry knows no resource and retrieves
# none, where jsonschema's default would fetch any URL a schema names.
_NO_RETRIEVAL: SchemaRegistry[Any] = SchemaRegistry()
_REFERENCES = ("$ref", "$dynamicRef", "$recursiveRef")


@lru_cache(maxsize=256)
def _validator(schema_json: bytes) -> Draft202012Validator:
    return Draft202012Validator(orjson.loads(schema_json), registry=_NO_RETRIEVAL)


def _remote_reference(node: object) -> str | None:
    """The first reference in ``node`` that points outside the schema's own document."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            for name in _REFERENCES:
                value = item.get(name)
                if isinstance(value, str) and not value.startswith("#"):
                    return value
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def check_type_schema(schema: object) -> None:
    """Validate a resource server's JSON Schema for a capability type (raises ``ValueError``).
    References must stay inside the schema (``#...``): validation never touches the
    network."""
    if not isinstance(schema, Mapping) or schema.get("type", "object") != "object":
        raise ValueError("a capability type schema must describe a JSON object")
    remote = _remote_reference(schema)
    if remote is not None:
        raise ValueError(
            f"references must point inside the schema ('#...'), not to {remote[:80]!r}"
        )
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"invalid JSON Schema: {exc.message}") from None


def _string_array(obj: Mapping[str, Any], name: str) -> tuple[str, ...] | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not value or len(value) > MAX_ARRAY_ITEMS:
        raise ValueError(f"{name} must be a non-empty array of strings")
    if not all(isinstance(v, str) and 0 < len(v) <= MAX_STRING_CHARS for v in value):
        raise ValueError(f"{name} must contain non-empty strings")
    if len(set(value)) != len(value):
        raise ValueError(f"{name} must not repeat values")
    return tuple(value)


def _locations(obj: Mapping[str, Any], registry: TypeRegistry) -> tuple[str, ...]:
    raw = _string_array(obj, "locations")
    if raw is None:
        raise ValueError("locations is required")
    out = []
    for location in raw:
        canonical = canonical_resource(location)
        if canonical not in registry:
            raise ValueError(f"unknown location {canonical}")
        out.append(canonical)
    if len(set(out)) != len(out):
        raise ValueError("locations must not repeat")
    return tuple(out)


def _check_type_members(
    obj: Mapping[str, Any], locations: Sequence[str], reg: TypeRegistry
) -> None:
    kind = obj["type"]
    extra = set(obj) - COMMON_FIELDS
    if kind == BUILTIN_TYPE:
        if extra:
            raise ValueError(f"unknown field {sorted(extra)[0]!r} for type api")
        if obj.get("actions") is None:
            raise ValueError("type api requires actions")
        return
    for location in locations:
        schema = reg[location].get(kind)
        if schema is None:
            raise ValueError(f"type {kind[:80]!r} is not accepted at {location}")
        undeclared = (extra | (GRANTING_FIELDS & set(obj))) - set(schema.get("properties", {}))
        if undeclared:
            raise ValueError(f"unknown field {sorted(undeclared)[0]!r} for type {kind[:80]!r}")
        validator = _validator(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))
        try:
            error = next(iter(validator.iter_errors(dict(obj))), None)
        except Unresolvable:  # a reference the schema does not hold: never fetched
            raise ValueError(f"the schema of type {kind[:80]!r} cannot be resolved") from None
        if error is not None:
            raise ValueError(f"schema violation: {error.message[:200]}")


def _build(obj: Mapping[str, Any], locations: tuple[str, ...]) -> AuthorizationDetail:
    identifier = obj.get("identifier")
    if identifier is not None and (
        not isinstance(identifier, str) or not 0 < len(identifier) <= MAX_STRING_CHARS
    ):
        raise ValueError("identifier must be a non-empty string")
    return AuthorizationDetail(
        type=obj["type"],
        locations=locations,
        actions=_string_array(obj, "actions"),
        identifier=identifier,
        datatypes=_string_array(obj, "datatypes"),
        privileges=_string_array(obj, "privileges"),
        limits=parse_limits(obj["limits"]) if "limits" in obj else None,
        extra={k: v for k, v in obj.items() if k not in COMMON_FIELDS},
    )


def _check_type(obj: object) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise ValueError("each authorization detail must be an object")
    kind = obj.get("type")
    if not isinstance(kind, str) or not kind or len(kind) > MAX_STRING_CHARS:
        raise ValueError("each authorization detail needs a string type")
    return obj


def parse_detail(obj: object, registry: TypeRegistry) -> AuthorizationDetail:
    """Validate one untrusted ``authorization_details`` object; raises ``ValueError``."""
    checked = _check_type(obj)
    locations = _locations(checked, registry)
    _check_type_members(checked, locations, registry)
    return _build(checked, locations)


def load_details(objs: Sequence[object]) -> list[AuthorizationDetail]:
    """Rebuild capabilities from a token this server signed (shape checked, no schemas)."""
    out = []
    for obj in objs:
        checked = _check_type(obj)
        locations = _string_array(checked, "locations") or ()
        out.append(_build(checked, tuple(canonical_resource(loc) for loc in locations)))
    return out


def parse_authorization_details(raw: object, registry: TypeRegistry) -> list[AuthorizationDetail]:
    """Parse ``authorization_details`` (a JSON string from a form, or decoded JSON).

    RFC 9396 §2 and §5: a non-empty JSON array of objects with a string ``type``, each valid
    for its type at every one of its locations. Failures raise
    ``invalid_authorization_details`` with the reason as the public description.
    """
    try:
        if isinstance(raw, str):
            if len(raw) > MAX_RAW_CHARS:
                raise ValueError("authorization_details is too large")
            raw = parse_json(raw.encode("utf-8"))
        if not isinstance(raw, list) or not raw or len(raw) > MAX_DETAILS:
            raise ValueError(f"authorization_details must be a JSON array of 1 to {MAX_DETAILS}")
        for text in strings_within(raw):  # every member may be shown to the approving human
            check_display_text(text, "a member")
        return [parse_detail(obj, registry) for obj in raw]
    except ValueError as exc:
        raise InvalidAuthorizationDetails(f"Invalid authorization_details: {exc}") from None


def identifier_covers(granted: str | None, requested: str | None) -> bool:
    """``None`` grants everything; ``orders/*`` covers ``orders/42``; otherwise equality."""
    if granted is None:
        return True
    if requested is None:
        return False
    if granted.endswith("*"):
        return requested.startswith(granted[:-1])
    return requested == granted


def _subset(granted: tuple[str, ...] | None, requested: tuple[str, ...] | None) -> bool:
    if granted is None:
        return True
    return requested is not None and set(requested) <= set(granted)


def covers(granted: AuthorizationDetail, candidate: AuthorizationDetail) -> bool:
    """True when ``candidate`` allows nothing that ``granted`` does not (docs/protocol.md
    "Capabilities and envelopes")."""
    return (
        granted.type == candidate.type
        and set(candidate.locations) <= set(granted.locations)
        and all(_subset(getattr(granted, f), getattr(candidate, f)) for f in ARRAY_FIELDS[1:])
        and identifier_covers(granted.identifier, candidate.identifier)
        and dict(candidate.extra) == dict(granted.extra)
        and limits_cover(granted.limits, candidate.limits)
    )


def narrow(granted: AuthorizationDetail, requested: AuthorizationDetail) -> AuthorizationDetail:
    """The derived capability: ``requested`` with unspecified parts inherited from
    ``granted``. Raises :class:`NotCovered` when ``requested`` asks for more."""
    if granted.type != requested.type:
        raise NotCovered("type differs")
    result = replace(
        requested,
        actions=requested.actions if requested.actions is not None else granted.actions,
        datatypes=requested.datatypes if requested.datatypes is not None else granted.datatypes,
        privileges=requested.privileges if requested.privileges is not None else granted.privileges,
        identifier=requested.identifier if requested.identifier is not None else granted.identifier,
        extra={**granted.extra, **requested.extra},
        limits=narrow_limits(granted.limits, requested.limits),
    )
    if not covers(granted, result):
        raise NotCovered("the requested capability exceeds the granted one")
    return result


def narrow_details(
    granted: Sequence[AuthorizationDetail], requested: Sequence[AuthorizationDetail]
) -> list[AuthorizationDetail]:
    """Narrow every requested object against some granted object of the same type.

    Raises ``invalid_authorization_details`` when one is not covered (RFC 9396 §6.1, RAR-05).
    """
    out = []
    for wanted in requested:
        for have in granted:
            try:
                out.append(narrow(have, wanted))
                break
            except NotCovered:
                continue
        else:
            raise InvalidAuthorizationDetails(
                f"The requested {wanted.type[:80]} capability exceeds the grant."
            )
    return out


def claimed_at(raw: Sequence[Mapping[str, Any]], audience: str) -> list[Mapping[str, Any]]:
    """The entries of a token's ``authorization_details`` claim that name ``audience`` among
    their locations: what introspection shows and what a decision there may use."""
    return [d for d in raw if audience in d.get("locations", ())]


def capabilities_at(raw: Sequence[Mapping[str, Any]], audience: str) -> list[AuthorizationDetail]:
    """The token's capabilities at ``audience``, parsed; unreadable ones allow nothing."""
    try:
        return load_details(claimed_at(raw, audience))
    except ValueError:
        return []


def for_audience(
    details: Sequence[AuthorizationDetail], audience: str
) -> list[AuthorizationDetail]:
    """The capabilities valid at ``audience``, each restricted to that single location."""
    return [replace(d, locations=(audience,)) for d in details if audience in d.locations]


def find_capability(
    details: Sequence[AuthorizationDetail],
    *,
    location: str,
    action: str | None,
    identifier: str | None,
    kind: str | None = None,
) -> AuthorizationDetail | None:
    """The first capability of type ``kind`` (any type when ``None``) allowing ``action`` on
    ``identifier`` at ``location``, if any.

    An action is allowed only by a capability that names it: one without ``actions`` (a type
    that declares none) allows no action-bearing request (RFC 9396 §2: the type defines what
    the members mean, so nothing is allowed that the type does not say).
    """
    for detail in details:
        if location not in detail.locations or (kind is not None and detail.type != kind):
            continue
        if action is not None and (detail.actions is None or action not in detail.actions):
            continue
        if detail.identifier is not None and not identifier_covers(detail.identifier, identifier):
            continue
        return detail
    return None
