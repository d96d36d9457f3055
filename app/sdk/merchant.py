"""For resource servers ("merchants"): check agents' DPoP-bound tokens at the verifier.

    verifier = VerifierClient("http://localhost:8081", client_id, client_secret)
    app = FastAPI()
    app.add_middleware(AgentAuthMiddleware, verifier=verifier, public_url="https://shop.example")

    @app.post("/api/pay")
    async def pay(grant: Annotated[dict, Depends(requires("pay", amount=amount_from_body))]):
        ...  # grant["sub"] is the human, grant["act"] the delegation chain

The middleware refuses requests without ``Authorization: DPoP`` and one ``DPoP`` header
(401 with ``WWW-Authenticate: DPoP``) and keeps them on ``request.state.agentauth``;
:func:`requires` makes the one ``/verify`` call for the capability the endpoint needs and
answers 401, 403, 429 or 503 with the ``WWW-Authenticate`` value the verifier suggests.
"""

from __future__ import annotations

import base64
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import httpx
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.dpop import DPOP_ALGS
from app.core.errors import www_authenticate

WELL_KNOWN = "/.well-known/oauth-protected-resource"
ALGS = DPOP_ALGS[:2]  # ES256 and EdDSA ("Ed25519" is an alias the proofs may also use)
STATUS_BY_REASON = {
    "insufficient_capability": 403,
    "outside_time_window": 403,
    "amount_exceeds_limit": 403,
    "budget_exhausted": 403,
    "rate_limited": 429,
}  # every other reason is about the token or the proof: 401


# RFC 6750 §3.1 codes for the statuses the SDK answers with; every refusal has the body
# {"error", "error_description"}, whether the middleware or a dependency refuses.
ERROR_BY_STATUS = {
    400: "invalid_request",
    401: "invalid_token",
    403: "insufficient_scope",
    429: "rate_limited",
    503: "temporarily_unavailable",
}
_MARK = "x-agentauth-refusal"  # set by refuse(), consumed by the middleware


def refuse(
    status: int, description: str, headers: Mapping[str, str] | None = None
) -> HTTPException:
    """The exception a dependency raises to refuse a request; under
    :class:`AgentAuthMiddleware` its body is ``{"error", "error_description"}``."""
    return HTTPException(status, description, headers={**(headers or {}), _MARK: "1"})


class VerifierClient:
    """Calls the verifier's ``/verify`` as a registered resource server (client_secret_basic)."""

    def __init__(
        self,
        verifier_url: str,
        client_id: str,
        client_secret: str,
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        credentials = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
        self._authorization = "Basic " + base64.b64encode(credentials.encode()).decode()
        self._http = http or httpx.AsyncClient(base_url=verifier_url.rstrip("/"), timeout=5)

    async def verify(self, **request: Any) -> dict[str, Any]:
        """The verifier's decision (``allowed``, ``reason``, ``www_authenticate``, claims);
        raises 503 when the verifier cannot decide."""
        body = {k: v for k, v in request.items() if v is not None}
        try:
            response = await self._http.post(
                "/verify", json=body, headers={"Authorization": self._authorization}
            )
        except httpx.HTTPError:
            raise refuse(503, "The token verifier is unreachable.") from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code == 400:
            # The request itself is malformed (an amount that is not a decimal string, ...).
            description = answer.get("error_description") if isinstance(answer, dict) else None
            raise refuse(400, str(description or "Malformed request."))
        if response.status_code != 200 or not isinstance(answer, dict):
            raise refuse(503, "The token verifier could not decide.")
        return answer

    async def introspect(self, token: str) -> dict[str, Any]:
        """The verifier's RFC 7662 answer for ``token`` (``{"active": false}`` for anything
        it does not vouch for); raises 503 when the verifier cannot answer."""
        try:
            response = await self._http.post(
                "/introspect",
                data={"token": token},
                headers={"Authorization": self._authorization},
            )
            answer = response.json()
        except (httpx.HTTPError, ValueError):
            raise refuse(503, "The token verifier is unreachable.") from None
        if response.status_code != 200 or not isinstance(answer, dict):
            raise refuse(503, "The token verifier could not answer.")
        return answer

    async def aclose(self) -> None:
        await self._http.aclose()


class Verifier(Protocol):
    """Decides a request: :class:`VerifierClient` (the verifier's ``/verify``, the default)
    or :class:`~app.sdk.local.LocalVerifier` (local checks, see its trade-offs)."""

    async def verify(self, **request: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class AgentRequest:
    """What the middleware extracted; :func:`requires` sends it to the verifier."""

    verifier: Verifier
    token: str
    dpop: str | None  # None: a Bearer token, at a resource server that accepts them
    method: str
    url: str
    resource_metadata: str | None = None  # where this resource's RFC 9728 metadata is


def _challenge(
    error: str | None = None, resource_metadata: str | None = None, *, bearer: bool = False
) -> dict[str, str]:
    """The 401 challenge: ``DPoP``, preceded by ``Bearer`` where Bearer tokens are accepted
    (RFC 9110 §11.6.1: one challenge per scheme)."""
    challenge = www_authenticate(
        "DPoP", error=error, algs=ALGS, resource_metadata=resource_metadata
    )
    if bearer:
        plain = www_authenticate("Bearer", error=error, resource_metadata=resource_metadata)
        challenge = f"{plain}, {challenge}"
    return {"WWW-Authenticate": challenge}


def metadata_path(resource: str) -> str:
    """Where RFC 9728 metadata for ``resource`` is served (§3.1): the well-known path
    inserted between the host and the resource's path, so ``https://shop.example/api`` has
    it at ``/.well-known/oauth-protected-resource/api``."""
    path = urlsplit(resource).path.rstrip("/")
    return WELL_KNOWN + path


def metadata_url(resource: str) -> str:
    parts = urlsplit(resource)
    return f"{parts.scheme}://{parts.netloc}{metadata_path(resource)}"


class AgentAuthMiddleware:
    """Refuses HTTP requests below ``prefix`` that do not carry DPoP credentials. It only
    checks that they are present: a route is protected by depending on :func:`requires`,
    which verifies them (once per request: the proof is single use).

    Given ``resource`` (the identifier the resource server registered) and
    ``authorization_servers``, it also serves the RFC 9728 metadata at the path §3.1 puts
    it (:func:`metadata_path`), and every 401 challenge names it (``resource_metadata``,
    §5.1).

    With ``dpop_required=False`` (the resource server registered ``dpop_required: false``)
    ``Authorization: Bearer`` without a proof is let through too; the verifier still refuses
    a DPoP-bound token presented that way."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: Verifier,
        public_url: str | None = None,
        prefix: str = "/",
        resource: str | None = None,
        authorization_servers: list[str] | None = None,
        dpop_required: bool = True,
        scopes_supported: list[str] | None = None,
    ) -> None:
        self.app = app
        self.dpop_required = dpop_required
        self.verifier = verifier
        self.public_url = public_url.rstrip("/") if public_url else None
        self.prefix = prefix
        self.metadata: dict[str, Any] | None = None
        self.metadata_path: str | None = None
        self.metadata_url: str | None = None
        if resource is not None:
            extra: dict[str, Any] = (
                {"scopes_supported": scopes_supported} if scopes_supported else {}
            )
            self.metadata = protected_resource_metadata(
                resource, authorization_servers or [], dpop_required=dpop_required, **extra
            )
            self.metadata_path, self.metadata_url = metadata_path(resource), metadata_url(resource)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and self.metadata is not None
            and scope["path"] == self.metadata_path
        ):
            headers = {"Cache-Control": "public, max-age=300"}
            await JSONResponse(self.metadata, headers=headers)(scope, receive, send)
            return
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        authorization = request.headers.get("authorization", "")
        proofs = request.headers.getlist("dpop")
        bearer = not self.dpop_required and authorization[:7].lower() == "bearer " and not proofs
        if not bearer and (not authorization.startswith("DPoP ") or len(proofs) != 1):
            error = "invalid_request" if authorization.startswith("DPoP ") else None
            needed = "DPoP token needed" if self.dpop_required else "DPoP or Bearer token needed"
            body = {"error": error or "invalid_token", "error_description": needed}
            headers = _challenge(error, self.metadata_url, bearer=not self.dpop_required)
            await JSONResponse(body, 401, headers=headers)(scope, receive, send)
            return
        url = str(request.url)
        if self.public_url is not None:
            url = self.public_url + request.url.path
            url += f"?{request.url.query}" if request.url.query else ""
        token = authorization[7:] if bearer else authorization[5:]
        scope.setdefault("state", {})["agentauth"] = AgentRequest(
            self.verifier,
            token.strip(),
            None if bearer else proofs[0],
            request.method,
            url,
            self.metadata_url,
        )
        await self.app(scope, receive, _RefusalBodies(send))


class _RefusalBodies:
    """Rewrites the body of a refusal raised with :func:`refuse` (the framework renders it
    as ``{"detail": ...}``) to ``{"error", "error_description"}``, the middleware's own."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.start: Message | None = None
        self.body = b""

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            names = [name.lower() for name, _ in message.get("headers", [])]
            if _MARK.encode() not in names:
                await self.send(message)
                return
            self.start = message
            return
        if self.start is None or message["type"] != "http.response.body":
            await self.send(message)
            return
        self.body += message.get("body", b"")
        if message.get("more_body"):
            return
        try:
            description = str(json.loads(self.body).get("detail", ""))
        except (ValueError, AttributeError):
            description = ""
        status = int(self.start["status"])
        body = json.dumps(
            {
                "error": ERROR_BY_STATUS.get(status, "invalid_request"),
                "error_description": description,
            }
        ).encode()
        kept = [
            (name, value)
            for name, value in self.start.get("headers", [])
            if name.lower() not in (_MARK.encode(), b"content-length", b"content-type")
        ]
        headers = [
            *kept,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await self.send({**self.start, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})


Amount = Mapping[str, str] | Callable[[Request], Mapping[str, str] | Awaitable[Mapping[str, str]]]


def requires(
    action: str | None = None,
    *,
    identifier: str | None = None,
    amount: Amount | None = None,
    type: str | None = None,
) -> Callable[[Request], Awaitable[dict[str, Any]]]:
    """A FastAPI/Starlette dependency: one ``/verify`` for ``action`` (and ``amount``, a
    ``{"value", "currency"}`` mapping or a function of the request returning one; ``type``
    restricts the match to capabilities of that RFC 9396 type); returns
    the verified grant (``sub``, ``act``, ``client_id``, ``grant_id``, …), also kept on
    ``request.state.agentauth_grant``."""

    async def dependency(request: Request) -> dict[str, Any]:
        pending: AgentRequest | None = getattr(request.state, "agentauth", None)
        if pending is None:
            raise refuse(401, "DPoP token needed", headers=_challenge())
        try:
            money = amount(request) if callable(amount) else amount
            if inspect.isawaitable(money):
                money = await money
            requested = dict(money) if money is not None else None
        except (ValueError, KeyError, TypeError):  # an unreadable body, a missing member, ...
            raise refuse(400, "The request does not say a readable amount.") from None
        decision = await pending.verifier.verify(
            token=pending.token,
            dpop=pending.dpop,
            method=pending.method,
            url=pending.url,
            type=type,
            action=action,
            identifier=identifier,
            amount=requested,
        )
        if not decision.get("allowed"):
            reason = str(decision.get("reason", "invalid_token"))
            challenge = str(decision.get("www_authenticate", "DPoP"))
            if pending.resource_metadata is not None:
                separator = ", " if " " in challenge else " "
                challenge += f'{separator}resource_metadata="{pending.resource_metadata}"'
            headers = {"WWW-Authenticate": challenge}
            raise refuse(STATUS_BY_REASON.get(reason, 401), reason, headers=headers)
        request.state.agentauth_grant = decision
        return decision

    return dependency


def protected_resource_metadata(
    resource: str, authorization_servers: list[str], *, dpop_required: bool = True, **extra: Any
) -> dict[str, Any]:
    """RFC 9728 metadata for ``resource`` (serve it at :func:`metadata_path`; its
    ``resource`` must be the identifier itself, §3.3): ES256 or EdDSA proofs, and DPoP-bound
    tokens only unless ``dpop_required`` is false."""
    return {
        "resource": resource,
        "authorization_servers": authorization_servers,
        "bearer_methods_supported": ["header"],
        "dpop_signing_alg_values_supported": list(ALGS),
        "dpop_bound_access_tokens_required": dpop_required,
        **extra,
    }
