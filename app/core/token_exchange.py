"""RFC 8693 token exchange: request validation and the delegation rules.

Policy (docs/protocol.md "Token exchange"): we never impersonate. Every issued token names the
acting agent in ``act``; without an ``actor_token`` the exchange re-audiences the token for
the same actor, with one it sub-delegates to the actor (``act`` nests the previous chain,
outermost = current actor). Each token has exactly one audience.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.core.capabilities import AuthorizationDetail, for_audience, load_details, narrow_details
from app.core.client_auth import ACTOR_TOKEN_TYPE, AgentAssertion
from app.core.errors import InvalidRequest, InvalidScope, InvalidTarget
from app.core.params import FormParams
from app.core.resources import canonical_resource
from app.core.tokens import AccessTokenClaims, actor_depth, new_jti
from app.core.urns import ACCESS_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT

GRANT_TYPE = TOKEN_EXCHANGE_GRANT
MAX_DELEGATION_DEPTH = 4  # hard cap on top of each grant's own max_delegation_depth
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 §3.3 NQCHAR


def parse_scope(scope: str | None) -> tuple[str, ...] | None:
    """Split a ``scope`` parameter (RFC 6749 §3.3); ``invalid_scope`` on bad characters."""
    if scope is None:
        return None
    tokens = scope.split(" ")
    if not all(_SCOPE_TOKEN.match(t) for t in tokens):
        raise InvalidScope("The scope contains invalid characters or empty entries.")
    return tuple(dict.fromkeys(tokens))


@dataclass(frozen=True, slots=True)
class ExchangeRequest:
    """A syntactically valid token-exchange request."""

    subject_token: str
    actor_token: str | None
    target: str | None
    authorization_details: str | None
    scope: tuple[str, ...] | None


def _target(form: FormParams) -> str | None:
    """RFC 8707 §2 / RFC 8693 §2.1: ``resource`` and ``audience`` name resource server URLs;
    this server issues one audience per token, so all of them must name the same one."""
    targets = set()
    for value in (*form.getlist("resource"), *form.getlist("audience")):
        try:
            targets.add(canonical_resource(value))
        except ValueError as exc:
            raise InvalidTarget(f"Invalid resource or audience: {exc}.") from None
    if len(targets) > 1:
        raise InvalidTarget("Exactly one resource or audience may be requested per token.")
    return targets.pop() if targets else None


def parse_exchange_request(form: FormParams) -> ExchangeRequest:
    """Validate the RFC 8693 §2.1 parameters of a token-exchange request."""
    subject_token = form.require("subject_token")
    if form.require("subject_token_type") != ACCESS_TOKEN_TYPE:
        raise InvalidRequest("subject_token_type must be an access token.")
    actor_token, actor_type = form.get("actor_token"), form.get("actor_token_type")
    if (actor_token is None) != (actor_type is None):
        raise InvalidRequest("actor_token and actor_token_type must be sent together.")
    if actor_type is not None and actor_type != ACTOR_TOKEN_TYPE:
        raise InvalidRequest("actor_token_type must be urn:ietf:params:oauth:token-type:jwt.")
    requested = form.get("requested_token_type")
    if requested is not None and requested != ACCESS_TOKEN_TYPE:
        raise InvalidRequest("Only access tokens can be requested.")
    return ExchangeRequest(
        subject_token=subject_token,
        actor_token=actor_token,
        target=_target(form),
        authorization_details=form.get("authorization_details"),
        scope=parse_scope(form.get("scope")),
    )


@dataclass(frozen=True, slots=True)
class ExchangeContext:
    """What the token endpoint knows besides the request: the caller and the grant."""

    caller: str  # the authenticated client
    caller_jkt: str  # thumbprint of the caller's verified DPoP proof key
    grant_details: Sequence[AuthorizationDetail]  # what the human approved, all locations
    grant_max_depth: int
    grant_expires_at: int
    issuer: str
    now: int
    ttl: int


def _source_details(
    subject: AccessTokenClaims,
    subject_details: Sequence[AuthorizationDetail],
    target: str,
    ctx: ExchangeContext,
) -> list[AuthorizationDetail]:
    """Capabilities the new token may draw from: the subject token's own at its audience; at
    another location of the grant only for the grant holder itself (depth 0), whose refresh
    token could obtain exactly those anyway."""
    if target == subject.aud:
        return list(subject_details)
    if subject.delegation_depth == 0:
        source = for_audience(ctx.grant_details, target)
        if source:
            return source
    raise InvalidTarget("The requested audience is not available for this token.")


def _new_actor(
    subject: AccessTokenClaims,
    actor: AgentAssertion | None,
    actor_default_jkt: str | None,
    ctx: ExchangeContext,
) -> tuple[dict[str, Any], str, str]:
    if actor is None:
        return subject.act, subject.client_id, ctx.caller_jkt
    if actor.client_id == subject.client_id:
        raise InvalidRequest("The actor must be a different agent.")
    act: dict[str, Any] = {"sub": actor.client_id, "act": subject.act}
    if actor_depth(act) > min(ctx.grant_max_depth, MAX_DELEGATION_DEPTH):
        raise InvalidRequest("The grant does not allow this delegation depth.")
    jkt = actor.jkt or actor_default_jkt
    if jkt is None:
        raise InvalidRequest("The actor has no key to bind the token to.")
    return act, actor.client_id, jkt


def derive_token(
    subject: AccessTokenClaims,
    request: ExchangeRequest,
    ctx: ExchangeContext,
    *,
    requested_details: Sequence[AuthorizationDetail] | None = None,
    actor: AgentAssertion | None = None,
    actor_default_jkt: str | None = None,
) -> AccessTokenClaims:
    """The claims of the exchanged token (RFC 8693 §2.2.1, §4.1).

    The caller must be the subject token's current actor and prove its key;
    the audience must be a location of the grant; capabilities only narrow; ``exp`` never
    outlives the subject token or the grant; delegation depth stays within the grant's
    ``max_delegation_depth``.
    """
    if subject.client_id != ctx.caller:
        raise InvalidRequest("The subject_token was not issued to this client.")
    if subject.jkt != ctx.caller_jkt:
        raise InvalidRequest("The DPoP proof key does not match the subject_token binding.")
    target = request.target or subject.aud
    try:
        subject_details = load_details(subject.authorization_details)
    except ValueError:
        raise InvalidRequest("The subject_token carries malformed capabilities.") from None
    source = _source_details(subject, subject_details, target, ctx)
    details = narrow_details(source, requested_details) if requested_details else source
    scope = subject.scope
    if request.scope is not None:
        granted = set((subject.scope or "").split())
        if not set(request.scope) <= granted:
            raise InvalidScope("The requested scope exceeds the subject_token's scope.")
        scope = " ".join(request.scope)
    act, client_id, jkt = _new_actor(subject, actor, actor_default_jkt, ctx)
    exp = min(subject.exp, ctx.now + ctx.ttl, ctx.grant_expires_at)
    if exp <= ctx.now:
        raise InvalidRequest("The subject_token or its grant has expired.")
    return AccessTokenClaims(
        iss=ctx.issuer,
        sub=subject.sub,
        aud=target,
        client_id=client_id,
        act=act,
        iat=ctx.now,
        exp=exp,
        jkt=jkt,
        grant_id=subject.grant_id,
        auth_time=subject.auth_time,
        authorization_details=[d.to_dict() for d in for_audience(details, target)],
        jti=new_jti(),
        scope=scope,
    )
