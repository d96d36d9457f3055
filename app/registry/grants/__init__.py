"""The token endpoint's grants: one module each, declaring a :class:`Grant`.

A module that defines ``GRANT`` is a grant: ``/token`` dispatches on it, the metadata
document advertises it and client registration accepts it (node-oidc-provider keeps its
grants the same way). Adding a grant means adding one module.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from app.core.params import REPEATABLE, FormParams

if TYPE_CHECKING:
    from app.cache.base import RevocationChannel, SingleUse
    from app.core.dpop import DPoPProof
    from app.registry.ports import Database
    from app.registry.services.issuance import TokenSigner
    from app.settings.registry import RegistrySettings
    from app.store.token_store import AgentRecord


@dataclass(frozen=True, slots=True)
class GrantPorts:
    """What a grant handler may use: the settings, the database, the replay guard (an actor
    token's ``jti``), the event stream (a reuse revokes a grant) and the token signer."""

    settings: RegistrySettings
    database: Database
    guard: SingleUse
    events: RevocationChannel
    signer: TokenSigner


# (the ports, the authenticated client, its proof, the form, the request's one ``now``)
Handler = Callable[
    [GrantPorts, "AgentRecord", "DPoPProof | None", FormParams, int], Awaitable[dict[str, Any]]
]


@dataclass(frozen=True)
class Grant:
    grant_type: str  # the grant_type value (a URN from core/urns.py)
    metric: str  # its label on agentauth_tokens_issued_total
    parameters: frozenset[str]  # what it reads besides grant_type and client authentication
    handle: Handler
    order: int  # its place in the advertised and registered lists
    repeatable: frozenset[str] = REPEATABLE  # parameters that may be sent more than once
    # Whether a DPoP proof is required (``/token`` refuses the request without one) or the
    # grant decides, issuing Bearer tokens where the resource server accepts them.
    dpop_required: bool = True


@cache
def grants() -> Mapping[str, Grant]:
    """Every grant module's ``GRANT``, by grant type, in their declared order."""
    found = []
    for module in pkgutil.iter_modules(__path__):
        grant = getattr(importlib.import_module(f"{__name__}.{module.name}"), "GRANT", None)
        if isinstance(grant, Grant):
            found.append(grant)
    return {grant.grant_type: grant for grant in sorted(found, key=lambda g: g.order)}


def grant_types() -> list[str]:
    return list(grants())
