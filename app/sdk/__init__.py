"""Client side of AgentAuth: the agent SDK (``AgentClient``, ``DPoPAuth``)."""

from app.sdk.client import AgentAuthError, AgentClient, GrantRequest
from app.sdk.dpop import AgentKey, DPoPAuth

__all__ = ["AgentAuthError", "AgentClient", "AgentKey", "DPoPAuth", "GrantRequest"]
