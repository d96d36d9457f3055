"""Client side of AgentAuth: the agent SDK (``AgentClient``, ``DPoPAuth``)."""

from app.sdk.client import AgentAuthError, AgentClient, GrantRequest
from app.sdk.dpop import AgentKey, DPoPAuth
from app.sdk.sync import SyncAgentClient

__all__ = [
    "AgentAuthError",
    "AgentClient",
    "AgentKey",
    "DPoPAuth",
    "GrantRequest",
    "SyncAgentClient",
]
