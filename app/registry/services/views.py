"""How stored rows read on the wire (the admin and approval APIs) and on the approval pages:
one shape per kind of row, so every listing of a thing shows it alike."""

from __future__ import annotations

from typing import Any

from app.core.capabilities import TypeRegistry, load_details
from app.core.summary import summarize
from app.registry.services.approvals import agent_view
from app.registry.services.common import rfc3339
from app.store.models import Agent, AuditEvent, Grant, GrantRequest, Human, ResourceServer


def human(h: Human) -> dict[str, Any]:
    return {
        "id": h.id,
        "display_name": h.display_name,
        "email": h.email,
        "status": h.status,
        "created_at": rfc3339(h.created_at),
    }


def agent(a: Agent) -> dict[str, Any]:
    return {
        "client_id": a.id,
        "client_name": a.client_name,
        "owner": a.owner_id,
        "status": a.status,
        "software_id": a.client_metadata.get("software_id"),
        "software_version": a.client_metadata.get("software_version"),
        "created_at": rfc3339(a.created_at),
    }


def grant(g: Grant) -> dict[str, Any]:
    return {
        "id": g.id,
        "human": g.human_id,
        "agent": g.agent_id,
        "status": g.status,
        "authorization_details": g.authorization_details,
        "max_delegation_depth": g.max_delegation_depth,
        "created_at": rfc3339(g.created_at),
        "expires_at": rfc3339(g.expires_at),
        "revoked_at": rfc3339(g.revoked_at),
    }


def resource_server(s: ResourceServer) -> dict[str, Any]:
    return {
        "client_id": s.id,
        "name": s.name,
        "resource": s.resource,
        "token_endpoint_auth_method": s.auth_method,
        "authorization_details_types": s.capability_types,
        "dpop_required": s.dpop_required,
        "scopes": s.scopes,
        "created_at": rfc3339(s.created_at),
    }


def audit_event(e: AuditEvent) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "created_at": rfc3339(e.created_at),
        "event": e.event,
        "actor": e.actor,
        "subject": e.subject,
        "data": e.data,
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }


def summary(g: Grant | GrantRequest, types: TypeRegistry) -> list[str]:
    """What a grant or a request allows, one sentence per capability."""
    return [summarize(d, types) for d in load_details(g.authorization_details)]


def grant_request(row: GrantRequest, a: Agent, types: TypeRegistry) -> dict[str, Any]:
    """A pending request as the human reviews it."""
    return {
        "auth_req_id": row.auth_req_id,
        "agent": agent_view(a),
        "binding_message": row.binding_message,
        "max_delegation_depth": row.max_delegation_depth,
        "grant_lifetime": row.grant_lifetime,
        "standing": row.standing,
        "expires_at": rfc3339(row.expires_at),
        "summary": summary(row, types),
        "locations": locations(row),
    }


def locations(row: GrantRequest) -> list[str]:
    """The resource servers a request names, sorted."""
    return sorted({loc for d in load_details(row.authorization_details) for loc in d.locations})


def grant_request_api(row: GrantRequest, a: Agent, types: TypeRegistry) -> dict[str, Any]:
    """A pending request as the approval API lists it: the page's view with the resource
    servers and the request's own ``authorization_details``."""
    view = grant_request(row, a, types)
    servers = view.pop("locations")
    return {
        "auth_req_id": view.pop("auth_req_id"),
        "agent": view.pop("agent"),
        "resource_servers": servers,
        "authorization_details": row.authorization_details,
        **view,
    }
