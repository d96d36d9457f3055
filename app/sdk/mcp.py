"""AgentAuth for MCP servers built with the official Python SDK (``mcp``).

    verifier = VerifierClient("http://localhost:8081", client_id, client_secret)
    tools = {"pay": Tool(scope="pay", action="pay", amount=lambda args: args["amount"])}
    server = MCPServer("shop", token_verifier=IntrospectionTokenVerifier(verifier, RESOURCE),
                       auth=auth_settings(ISSUER, RESOURCE))
    app = AgentAuthMCP(server.streamable_http_app(), verifier=verifier, resource=RESOURCE,
                       issuer=ISSUER, tools=tools)

The SDK's clients send ``Authorization: Bearer``, so the resource server registers with
``dpop_required: false`` and scopes that stand for capabilities (docs/sdk.md "MCP servers").
:class:`IntrospectionTokenVerifier` is the SDK's token verifier: it asks the verifier's
``/introspect`` and refuses anything but an active Bearer token issued for this resource (a
DPoP-bound token is never accepted without its proof). :class:`AgentAuthMCP` wraps the
SDK's app: it serves the RFC 9728 metadata at the path-inserted location, names the
``resource_metadata`` and the ``scope`` in every 401 challenge, and checks each
``tools/call`` of a protected tool with one ``/verify`` (action, amount, limits, budget,
revocation). A call the token does not allow is answered ``403`` with
``error="insufficient_scope"``, the ``scope`` needed and, in the body, the RFC 9396
``authorization_details`` to ask for, so the client steps up for exactly what is missing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from pydantic import AnyHttpUrl
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import www_authenticate
from app.core.resources import canonical_resource
from app.sdk.merchant import (
    STATUS_BY_REASON,
    VerifierClient,
    metadata_path,
    metadata_url,
    protected_resource_metadata,
)

MAX_BODY_BYTES = 1024 * 1024  # a tools/call larger than this is refused (413)

Amount = Callable[[Mapping[str, Any]], Mapping[str, str] | None]


@dataclass(frozen=True)
class Tool:
    """What calling one tool needs: the ``scope`` a client asks for, and the capability the
    verifier checks (``action``, optional RFC 9396 ``type``, an ``amount`` read from the
    tool's arguments)."""

    scope: str
    action: str | None = None
    type: str | None = None
    amount: Amount | None = None


def auth_settings(issuer: str, resource: str) -> AuthSettings:
    """The SDK's auth settings for a resource server of ``issuer``; the token verifier
    checks the audience itself."""
    return AuthSettings(
        issuer_url=AnyHttpUrl(issuer),
        resource_server_url=AnyHttpUrl(resource),
        validate_token_resource=False,
    )


class IntrospectionTokenVerifier:
    """The SDK's ``TokenVerifier``, answering through the verifier's ``/introspect``."""

    def __init__(self, verifier: VerifierClient, resource: str) -> None:
        self.verifier = verifier
        self.resource = canonical_resource(resource)

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            answer = await self.verifier.introspect(token)
        except Exception:
            return None
        if (
            answer.get("active") is not True
            or answer.get("token_type") != "Bearer"
            or "cnf" in answer  # sender-constrained: usable only with its DPoP proof
            or answer.get("aud") != self.resource
        ):
            return None
        scope = answer.get("scope")
        return AccessToken(
            token=token,
            client_id=str(answer.get("client_id")),
            scopes=scope.split() if isinstance(scope, str) else [],
            expires_at=answer.get("exp") if isinstance(answer.get("exp"), int) else None,
            resource=self.resource,
            subject=str(answer.get("sub")),
            claims={
                "iss": answer.get("iss"),
                "act": answer.get("act"),
                "grant_id": answer.get("grant_id"),
                "authorization_details": answer.get("authorization_details"),
            },
        )


def _challenge(error: str | None, description: str, metadata: str, scope: str) -> str:
    return www_authenticate(
        "Bearer", error=error, description=description, resource_metadata=metadata, scope=scope
    )


class AgentAuthMCP:
    """ASGI middleware around the SDK's streamable HTTP app (see the module's text)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: VerifierClient,
        resource: str,
        issuer: str,
        tools: Mapping[str, Tool],
        default_scopes: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.resource = canonical_resource(resource)
        self.tools = dict(tools)
        self.scopes = sorted({tool.scope for tool in self.tools.values()} | set(default_scopes))
        # What a client without a token is told to ask for first: the default scopes, or
        # every scope when there are none.
        self.first_scope = " ".join(default_scopes or self.scopes)
        self.metadata = protected_resource_metadata(
            self.resource, [issuer], dpop_required=False, scopes_supported=self.scopes
        )
        self.metadata_path = metadata_path(self.resource)
        self.metadata_url = metadata_url(self.resource)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == self.metadata_path:
            headers = {"Cache-Control": "public, max-age=300"}
            await JSONResponse(self.metadata, headers=headers)(scope, receive, send)
            return
        if scope["method"] != "POST":
            await self.app(scope, receive, self._with_scope(send))
            return
        body = await _read_body(receive)
        if body is None:
            await JSONResponse({"error": "invalid_request"}, 413)(scope, receive, send)
            return
        refusal = await self._check_call(scope, body)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), self._with_scope(send))

    def _with_scope(self, send: Send) -> Send:
        """Every 401 the SDK answers names the scopes to ask for (RFC 6750 §3)."""

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                challenge = _challenge(
                    "invalid_token", "Authentication required", self.metadata_url, self.first_scope
                )
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"www-authenticate"
                ]
                headers.append((b"www-authenticate", challenge.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        return sending

    async def _check_call(self, scope: Scope, body: bytes) -> JSONResponse | None:
        """One ``/verify`` for a ``tools/call`` of a protected tool; ``None`` to let it through
        (calls of other methods, and requests without a token, are the SDK's to answer)."""
        call = _tool_call(body)
        if call is None or call[0] not in self.tools:
            return None
        token = _bearer(scope)
        if token is None:
            return None
        tool = self.tools[call[0]]
        try:
            amount = tool.amount(call[1]) if tool.amount is not None else None
        except (KeyError, TypeError, ValueError):
            return JSONResponse(
                {"error": "invalid_request", "error_description": "No readable amount."}, 400
            )
        try:
            decision = await self.verifier.verify(
                token=token,
                dpop=None,
                method="POST",
                url=self.resource,
                type=tool.type,
                action=tool.action,
                amount=dict(amount) if amount is not None else None,
            )
        except HTTPException as exc:  # the verifier could not decide, or a bad amount
            code = "invalid_request" if exc.status_code == 400 else "temporarily_unavailable"
            return JSONResponse({"error": code, "error_description": exc.detail}, exc.status_code)
        if decision.get("allowed") is True:
            return None
        reason = str(decision.get("reason", "invalid_token"))
        status = STATUS_BY_REASON.get(reason, 401)
        if status == 401:
            challenge = _challenge("invalid_token", reason, self.metadata_url, self.first_scope)
            body_401 = {"error": "invalid_token", "error_description": reason}
            return JSONResponse(body_401, 401, headers={"WWW-Authenticate": challenge})
        if status == 429:
            return JSONResponse({"error": "rate_limited", "error_description": reason}, 429)
        needed: dict[str, Any] = {"type": tool.type or "api", "locations": [self.resource]}
        if tool.action is not None:
            needed["actions"] = [tool.action]
        if amount is not None:
            needed["limits"] = {"max_amount": dict(amount)}
        challenge = _challenge("insufficient_scope", reason, self.metadata_url, tool.scope)
        refusal = {
            "error": "insufficient_scope",
            "error_description": reason,
            "scope": tool.scope,
            "authorization_details": [needed],
        }
        return JSONResponse(refusal, 403, headers={"WWW-Authenticate": challenge})


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            text = bytes(value).decode("latin-1")
            if text[:7].lower() == "bearer " and text[7:].strip():
                return text[7:].strip()
    return None


def _tool_call(body: bytes) -> tuple[str, Mapping[str, Any]] | None:
    """``(tool name, arguments)`` of a JSON-RPC ``tools/call``."""
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("method") != "tools/call":
        return None
    params = message.get("params")
    if not isinstance(params, dict) or not isinstance(params.get("name"), str):
        return None
    arguments = params.get("arguments")
    return params["name"], arguments if isinstance(arguments, dict) else {}


async def _read_body(receive: Receive) -> bytes | None:
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return bytes(body)
        body += message.get("body", b"")
        if len(body) > MAX_BODY_BYTES:
            return None
        if not message.get("more_body"):
            return bytes(body)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replaying() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replaying
