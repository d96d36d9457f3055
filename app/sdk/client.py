"""The agent SDK: register, ask a human for a grant, hold and refresh DPoP-bound tokens,
exchange and delegate them, revoke them.

    key = AgentKey.load_or_create(Path("agent-key.json"))
    async with AgentClient("http://localhost:8080", key) as agent:
        await agent.register(enrollment_token, client_name="Shopping agent")
        request = await agent.request_grant(details, binding_message="Order 42")
        print("approve at", request.approval_hint)
        await request.wait_for_approval()
        response = await shop.post(url, auth=agent.auth())   # DPoP-signed with the token
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import httpx

from app.core.urns import (
    ACCESS_TOKEN_TYPE,
    CIBA_GRANT,
    CLIENT_ASSERTION_TYPE,
    JWT_TOKEN_TYPE,
    TOKEN_EXCHANGE_GRANT,
)
from app.sdk.dpop import AgentKey, DPoPAuth

CIBA = CIBA_GRANT
EXCHANGE = TOKEN_EXCHANGE_GRANT
JWT_TYPE = JWT_TOKEN_TYPE
ASSERTION_TYPE = CLIENT_ASSERTION_TYPE
REFRESH_MARGIN = 30  # seconds before expiry at which a token is refreshed


class AgentAuthError(Exception):
    """An OAuth error answer (``error`` is the RFC code, e.g. ``access_denied``)."""

    def __init__(self, status: int, error: str, description: str = "") -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description

    @classmethod
    def from_response(cls, response: httpx.Response) -> AgentAuthError:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        return cls(
            response.status_code,
            str(body.get("error", "unexpected_response")),
            str(body.get("error_description", "")),
        )


@dataclass
class TokenSet:
    access_token: str
    expires_at: float
    refresh_token: str | None = None
    authorization_details: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class GrantRequest:
    """A pending CIBA request; :meth:`wait_for_approval` polls until the human answers."""

    client: AgentClient
    auth_req_id: str
    interval: float
    expires_at: float

    @property
    def approval_hint(self) -> str:
        return f"{self.client.issuer}/ui/requests/{self.auth_req_id}"

    async def wait_for_approval(self) -> TokenSet:
        """Poll ``/token`` every ``interval`` seconds (more slowly after ``slow_down``);
        raises :class:`AgentAuthError` on ``access_denied`` or ``expired_token``."""
        interval = self.interval
        while True:
            try:
                return await self.client._token_request(
                    {"grant_type": CIBA, "auth_req_id": self.auth_req_id}
                )
            except AgentAuthError as error:
                if error.error == "slow_down":
                    interval += 5  # CIBA §11
                elif error.error != "authorization_pending":
                    raise
            if time.time() > self.expires_at:
                raise AgentAuthError(400, "expired_token", "the request expired")
            await asyncio.sleep(interval)


class AgentClient:
    """One registered agent talking to the registry at ``issuer``."""

    def __init__(
        self,
        issuer: str,
        key: AgentKey,
        *,
        client_id: str | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.key = key
        self.client_id = client_id
        self._http = http or httpx.AsyncClient(base_url=self.issuer, timeout=30)
        self._own_http = http is None
        self._as_auth = DPoPAuth(key)
        self._refreshing = asyncio.Lock()
        self.tokens: TokenSet | None = None

    async def __aenter__(self) -> AgentClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    def _client_auth(self) -> dict[str, str]:
        if self.client_id is None:
            raise RuntimeError("register the agent (or pass client_id) first")
        assertion = self.key.assertion(self.client_id, self.issuer, typ="client-authentication+jwt")
        return {"client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion}

    async def _post_form(self, path: str, form: dict[str, Any], *, dpop: bool) -> dict[str, Any]:
        pairs = {k: v for k, v in {**self._client_auth(), **form}.items() if v is not None}
        response = await self._http.post(
            path, data=pairs, auth=self._as_auth if dpop else httpx.USE_CLIENT_DEFAULT
        )
        if response.status_code >= 400:
            raise AgentAuthError.from_response(response)
        body: dict[str, Any] = response.json() if response.content else {}
        return body

    async def register(self, enrollment_token: str, client_name: str, **metadata: Any) -> str:
        """RFC 7591 registration with a one-time enrollment token; returns the client_id."""
        body = {"client_name": client_name, "jwks": self.key.jwks(), **metadata}
        response = await self._http.post(
            "/register", json=body, headers={"Authorization": f"Bearer {enrollment_token}"}
        )
        if response.status_code != 201:
            raise AgentAuthError.from_response(response)
        self.client_id = str(response.json()["client_id"])
        return self.client_id

    async def request_grant(
        self,
        authorization_details: list[dict[str, Any]],
        *,
        binding_message: str | None = None,
        max_delegation_depth: int | None = None,
    ) -> GrantRequest:
        """Ask the owning human (CIBA poll mode) for these capabilities."""
        body = await self._post_form(
            "/bc-authorize",
            {
                "authorization_details": json.dumps(authorization_details),
                "binding_message": binding_message,
                "max_delegation_depth": max_delegation_depth,
            },
            dpop=False,
        )
        return GrantRequest(
            self,
            str(body["auth_req_id"]),
            float(body.get("interval", 5)),
            time.time() + float(body["expires_in"]),
        )

    async def _token_request(self, form: dict[str, Any], *, keep: bool = True) -> TokenSet:
        body = await self._post_form("/token", form, dpop=True)
        tokens = TokenSet(
            access_token=str(body["access_token"]),
            expires_at=time.time() + float(body.get("expires_in", 0)),
            refresh_token=body.get("refresh_token"),
            authorization_details=list(body.get("authorization_details", [])),
        )
        if keep:
            if tokens.refresh_token is None and self.tokens is not None:
                tokens.refresh_token = self.tokens.refresh_token
            self.tokens = tokens
        return tokens

    async def refresh(self, *, resource: str | None = None) -> TokenSet:
        async with self._refreshing:
            return await self._refresh(resource)

    async def _refresh(self, resource: str | None) -> TokenSet:
        if self.tokens is None or self.tokens.refresh_token is None:
            raise RuntimeError("no refresh token: wait for an approved grant first")
        form = {"grant_type": "refresh_token", "refresh_token": self.tokens.refresh_token}
        return await self._token_request({**form, "resource": resource})

    def _expiring(self) -> bool:
        tokens = self.tokens
        return (
            tokens is not None
            and tokens.refresh_token is not None
            and tokens.expires_at - time.time() < REFRESH_MARGIN
        )

    async def access_token(self) -> str:
        """The current access token, refreshed shortly before it expires. Parallel callers
        share one refresh: a refresh token is single use, and using it twice would revoke
        the grant (reuse detection)."""
        if self._expiring():
            async with self._refreshing:
                if self._expiring():  # not already refreshed by the caller we waited for
                    await self._refresh(None)
        if self.tokens is None:
            raise RuntimeError("no token yet: wait for an approved grant first")
        return self.tokens.access_token

    async def exchange(
        self, resource: str, *, authorization_details: list[dict[str, Any]] | None = None
    ) -> str:
        """RFC 8693: a token for another audience (``resource``) of the same grant."""
        return await self._exchange(resource, authorization_details)

    async def delegate_to(
        self,
        actor: AgentClient,
        resource: str,
        *,
        authorization_details: list[dict[str, Any]] | None = None,
    ) -> str:
        """Sub-delegate to ``actor``: a token whose ``act`` names the actor first, bound to
        the actor's key. Give it to the actor (``actor.use_token``)."""
        if actor.client_id is None:
            raise RuntimeError("the actor must be registered")
        actor_token = actor.key.assertion(actor.client_id, self.issuer, typ="actor+jwt")
        return await self._exchange(
            resource, authorization_details, actor_token=actor_token, actor_token_type=JWT_TYPE
        )

    async def _exchange(
        self,
        resource: str,
        authorization_details: list[dict[str, Any]] | None,
        **actor: str,
    ) -> str:
        form = {
            "grant_type": EXCHANGE,
            "subject_token": await self.access_token(),
            "subject_token_type": ACCESS_TOKEN_TYPE,
            **actor,
            "resource": resource,
            "authorization_details": (
                json.dumps(authorization_details) if authorization_details else None
            ),
        }
        return (await self._token_request(form, keep=False)).access_token

    def use_token(self, access_token: str, expires_in: float = 300) -> None:
        """Hold a token received from a delegating agent."""
        self.tokens = TokenSet(access_token=access_token, expires_at=time.time() + expires_in)

    async def revoke(self, token: str | None = None) -> None:
        """RFC 7009: revoke ``token`` (default: the refresh token, which ends the grant)."""
        if token is None and self.tokens is not None:
            token = self.tokens.refresh_token or self.tokens.access_token
        if token is None:
            return
        await self._post_form("/revoke", {"token": token}, dpop=False)

    def auth(
        self,
        token: str | None = None,
        *,
        run: Callable[[Coroutine[Any, Any, str]], str] | None = None,
    ) -> DPoPAuth:
        """``httpx.Auth`` for calls to a resource server with a given token or, by default,
        the agent's current one, refreshed before a request when it is about to expire
        (``run`` drives that refresh for a blocking ``httpx.Client``)."""
        if token is not None:
            return DPoPAuth(self.key, token)
        return _CurrentTokenAuth(self, run)


class _CurrentTokenAuth(DPoPAuth):
    """:class:`DPoPAuth` with the agent's current token, made fresh before each request."""

    def __init__(
        self, agent: AgentClient, run: Callable[[Coroutine[Any, Any, str]], str] | None
    ) -> None:
        super().__init__(agent.key, lambda: agent.tokens.access_token if agent.tokens else None)
        self._agent = agent
        self._run = run

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        if self._run is not None and self._agent.tokens is not None:
            self._run(self._agent.access_token())
        yield from super().sync_auth_flow(request)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self._agent.tokens is not None:
            await self._agent.access_token()
        flow = super().async_auth_flow(request)
        request = await flow.__anext__()
        while True:
            response = yield request
            try:
                request = await flow.asend(response)
            except StopAsyncIteration:
                return
