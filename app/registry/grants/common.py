"""Helpers shared by the grant handlers."""

from __future__ import annotations

from collections.abc import Sequence

from app.core.capabilities import AuthorizationDetail
from app.core.dpop import DPoPProof
from app.core.errors import InvalidDPoPProof, InvalidRequest, InvalidTarget
from app.core.params import FormParams
from app.core.resources import canonical_resource
from app.store import token_store
from app.store.sql import Db


def requested_resources(form: FormParams) -> set[str]:
    """The request's ``resource`` values (RFC 8707 §2), canonical; empty when none is sent."""
    try:
        return {canonical_resource(r) for r in form.getlist("resource")}
    except ValueError as exc:
        raise InvalidTarget(f"Invalid resource: {exc}.") from None


def choose_audience(form: FormParams, allowed: Sequence[str]) -> str:
    """The token's single audience: the requested ``resource`` (RFC 8707 §2.2), which must be
    one of ``allowed`` (the grant's locations, or the resources the human approved), or by
    default the first of them."""
    targets = requested_resources(form)
    if not targets:
        return allowed[0]
    if len(targets) != 1 or not targets <= set(allowed):
        raise InvalidTarget("The resource must be exactly one location of this grant.")
    return targets.pop()


def locations(details: Sequence[AuthorizationDetail]) -> list[str]:
    """Every location of ``details``, in order: the first capability's first one first."""
    return list(dict.fromkeys(location for detail in details for location in detail.locations))


def proof_of(proof: DPoPProof | None) -> DPoPProof:
    """The proof of a grant that requires one (``/token`` already refused a request
    without it)."""
    if proof is None:
        raise InvalidDPoPProof("A DPoP proof is required.")
    return proof


async def check_bearer_accepted(db: Db, audience: str) -> None:
    """A token without a DPoP binding is issued only for a resource server that declared
    ``dpop_required: false`` (docs/protocol.md "Bearer tokens")."""
    server = await token_store.resource_server(db, audience)
    if server is None or server.dpop_required:
        raise InvalidRequest(
            f"The resource server {audience[:200]} accepts only DPoP-bound tokens;"
            " send a DPoP proof with the token request."
        )
