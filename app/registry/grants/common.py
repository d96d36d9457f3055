"""Helpers shared by the grant handlers."""

from __future__ import annotations

from collections.abc import Sequence

from app.core.capabilities import AuthorizationDetail
from app.core.errors import InvalidTarget
from app.core.params import FormParams
from app.core.resources import canonical_resource


def choose_audience(form: FormParams, details: Sequence[AuthorizationDetail]) -> str:
    """The token's single audience: the requested ``resource`` (RFC 8707), which must be a
    location of the grant, or by default the first location of the first capability."""
    allowed = {location for detail in details for location in detail.locations}
    resources = form.getlist("resource")
    if not resources:
        return details[0].locations[0]
    try:
        targets = {canonical_resource(r) for r in resources}
    except ValueError as exc:
        raise InvalidTarget(f"Invalid resource: {exc}.") from None
    if len(targets) != 1 or not targets <= allowed:
        raise InvalidTarget("The resource must be exactly one location of this grant.")
    return targets.pop()
