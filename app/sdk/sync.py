"""A synchronous face for :class:`~app.sdk.client.AgentClient`, for scripts and code without
an event loop. It drives the async client on a private event loop; ``DPoPAuth`` itself works
with both ``httpx.Client`` and ``httpx.AsyncClient``."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

from app.sdk.client import AgentClient, GrantRequest, TokenSet
from app.sdk.dpop import AgentKey, DPoPAuth


class SyncGrantRequest:
    def __init__(self, runner: asyncio.Runner, request: GrantRequest) -> None:
        self._runner = runner
        self.request = request
        self.auth_req_id = request.auth_req_id
        self.approval_hint = request.approval_hint

    def wait_for_approval(self) -> TokenSet:
        return self._runner.run(self.request.wait_for_approval())


class SyncAgentClient:
    """The same operations as :class:`AgentClient`, blocking."""

    def __init__(self, issuer: str, key: AgentKey, *, client_id: str | None = None) -> None:
        self._runner = asyncio.Runner()
        self._client = AgentClient(issuer, key, client_id=client_id)

    @property
    def client(self) -> AgentClient:
        return self._client

    @property
    def client_id(self) -> str | None:
        return self._client.client_id

    def __enter__(self) -> SyncAgentClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._runner.run(self._client.aclose())
        self._runner.close()

    def register(self, enrollment_token: str, client_name: str, **metadata: Any) -> str:
        return self._runner.run(self._client.register(enrollment_token, client_name, **metadata))

    def request_grant(
        self, authorization_details: list[dict[str, Any]], **options: Any
    ) -> SyncGrantRequest:
        request = self._runner.run(self._client.request_grant(authorization_details, **options))
        return SyncGrantRequest(self._runner, request)

    def refresh(self, *, resource: str | None = None) -> TokenSet:
        return self._runner.run(self._client.refresh(resource=resource))

    def access_token(self) -> str:
        return self._runner.run(self._client.access_token())

    def exchange(self, resource: str, **options: Any) -> str:
        return self._runner.run(self._client.exchange(resource, **options))

    def delegate_to(self, actor: SyncAgentClient, resource: str, **options: Any) -> str:
        return self._runner.run(self._client.delegate_to(actor.client, resource, **options))

    def revoke(self, token: str | None = None) -> None:
        self._runner.run(self._client.revoke(token))

    def auth(self, token: str | None = None) -> DPoPAuth:
        """For ``httpx.Client``: the current token is refreshed on this client's loop."""
        return self._client.auth(token, run=self._runner.run)
