"""Operator commands that talk to a running registry's admin API (and to a verifier).

They use ``AGENTAUTH_ISSUER`` and ``AGENTAUTH_ADMIN_TOKEN`` (or ``--url`` / ``--admin-token``),
print a readable summary by default and the server's JSON with ``--json``. Exit codes: 0 done,
1 refused by the server (or an inactive token), 2 bad usage, 3 server unreachable.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote_plus

import httpx
import typer

from app.core.capabilities import load_details
from app.core.jwk import JWKError, b64url_decode
from app.core.summary import summarize

humans_app = typer.Typer(
    help="Invite, list and suspend humans.", no_args_is_help=True, rich_markup_mode=None
)
servers_app = typer.Typer(
    help="Register and list resource servers.", no_args_is_help=True, rich_markup_mode=None
)
enrollment_app = typer.Typer(
    help="One-time agent enrollment tokens.", no_args_is_help=True, rich_markup_mode=None
)
agents_app = typer.Typer(
    help="List and disable agents.", no_args_is_help=True, rich_markup_mode=None
)
token_app = typer.Typer(
    help="Explain and check access tokens.", no_args_is_help=True, rich_markup_mode=None
)

Url = Annotated[str | None, typer.Option("--url", help="Registry URL (default AGENTAUTH_ISSUER).")]
Admin = Annotated[str | None, typer.Option("--admin-token", help="Default: AGENTAUTH_ADMIN_TOKEN.")]
Json = Annotated[bool, typer.Option("--json", help="Print the server's JSON answer.")]


def _registry(url: str | None) -> str:
    return (url or os.environ.get("AGENTAUTH_ISSUER", "http://localhost:8080")).rstrip("/")


def _call(method: str, url: str, **options: Any) -> dict[str, Any]:
    """One HTTP call: exit 3 when unreachable, 1 when the server refuses or answers nonsense."""
    try:
        response = httpx.request(method, url, timeout=30, **options)
    except httpx.HTTPError as exc:
        typer.echo(f"error: cannot reach {url}: {exc}", err=True)
        raise typer.Exit(3) from None
    try:
        data = response.json() if response.content else {}
    except ValueError:
        data = None
    if not isinstance(data, dict):
        typer.echo(f"error: {url} answered {response.status_code} without a JSON object", err=True)
        raise typer.Exit(1)
    if response.status_code >= 400:
        typer.echo(f"error: {data.get('error')}: {data.get('error_description')}", err=True)
        raise typer.Exit(1)
    return data


def _admin(
    method: str, path: str, url: str | None, token: str | None, body: Any = None
) -> dict[str, Any]:
    secret = token or os.environ.get("AGENTAUTH_ADMIN_TOKEN")
    if not secret:
        typer.echo("error: set AGENTAUTH_ADMIN_TOKEN or pass --admin-token", err=True)
        raise typer.Exit(2)
    headers = {"Authorization": f"Bearer {secret}"}
    return _call(method, f"{_registry(url)}/admin{path}", json=body, headers=headers)


def _listing(
    path: str, member: str, columns: tuple[str, ...], url: str | None, token: str | None
) -> tuple[dict[str, Any], str]:
    """A GET listing and its rows as text, one item per line."""
    data = _admin("GET", path, url, token)
    rows = ["  ".join(str(item.get(c) or "") for c in columns) for item in data[member]]
    return data, "\n".join(rows) or f"no {member.replace('_', ' ')}"


def _print(data: Any, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, indent=2) if as_json else text)


@humans_app.command("invite")
def humans_invite(
    name: str,
    email: str | None = None,
    url: Url = None,
    admin_token: Admin = None,
    as_json: Json = False,
) -> None:
    """Create a human and print the invite link to send them."""
    data = _admin("POST", "/humans", url, admin_token, {"display_name": name, "email": email})
    text = f"human id: {data['id']}\nsend {name} this invite link:\n{data['invite_url']}"
    _print(data, as_json, text)


@humans_app.command("list")
def humans_list(url: Url = None, admin_token: Admin = None, as_json: Json = False) -> None:
    """List humans."""
    data, text = _listing("/humans", "humans", ("id", "status", "display_name"), url, admin_token)
    _print(data, as_json, text)


@humans_app.command("suspend")
def humans_suspend(
    human_id: str, url: Url = None, admin_token: Admin = None, as_json: Json = False
) -> None:
    """Suspend a human: every grant they gave is revoked."""
    data = _admin("POST", f"/humans/{human_id}/suspend", url, admin_token)
    _print(data, as_json, f"{human_id} suspended")


@servers_app.command("create")
def servers_create(
    name: str,
    resource: str,
    auth_method: Annotated[
        str,
        typer.Option(
            help="client_secret_basic (the secret also works as client_secret_post) or"
            " private_key_jwt (with --jwks)"
        ),
    ] = "client_secret_basic",
    jwks: Annotated[
        Path | None,
        typer.Option(help="File with the public JWK set, for --auth-method private_key_jwt."),
    ] = None,
    accept_bearer: Annotated[
        bool,
        typer.Option(
            "--accept-bearer",
            help="Accept Bearer tokens (dpop_required false), as MCP clients need.",
        ),
    ] = False,
    scopes: Annotated[
        Path | None,
        typer.Option(help='JSON file: {"<scope>": [<authorization_details object>, ...]}.'),
    ] = None,
    url: Url = None,
    admin_token: Admin = None,
    as_json: Json = False,
) -> None:
    """Register a resource server; its client secret is shown once."""
    body: dict[str, Any] = {
        "name": name,
        "resource": resource,
        "token_endpoint_auth_method": auth_method,
        "dpop_required": not accept_bearer,
    }
    for option, path, member in (("--jwks", jwks, "jwks"), ("--scopes", scopes, "scopes")):
        if path is None:
            continue
        try:
            body[member] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            typer.echo(f"error: {option} {path}: {exc}", err=True)
            raise typer.Exit(2) from None
    data = _admin("POST", "/resource-servers", url, admin_token, body)
    text = f"client id: {data['client_id']}\nresource:  {data['resource']}"
    if data.get("client_secret"):
        text += f"\nclient secret (shown once): {data['client_secret']}"
    _print(data, as_json, text)


@servers_app.command("list")
def servers_list(url: Url = None, admin_token: Admin = None, as_json: Json = False) -> None:
    """List resource servers."""
    columns = ("client_id", "resource", "name")
    data, text = _listing("/resource-servers", "resource_servers", columns, url, admin_token)
    _print(data, as_json, text)


@enrollment_app.command("create")
def enrollment_create(
    owner: Annotated[str, typer.Option(help="The human (usr_…) who will own the agent.")],
    expires_in: Annotated[int, typer.Option(help="Seconds the token stays valid.")] = 3600,
    url: Url = None,
    admin_token: Admin = None,
    as_json: Json = False,
) -> None:
    """Create a one-time enrollment token for an agent's /register call."""
    data = _admin(
        "POST", "/enrollment-tokens", url, admin_token, {"owner": owner, "expires_in": expires_in}
    )
    _print(data, as_json, f"{data['token']}\n(valid until {data['expires_at']}, usable once)")


@agents_app.command("list")
def agents_list(url: Url = None, admin_token: Admin = None, as_json: Json = False) -> None:
    """List agents."""
    columns = ("client_id", "status", "client_name")
    data, text = _listing("/agents", "agents", columns, url, admin_token)
    _print(data, as_json, text)


@agents_app.command("disable")
def agents_disable(
    client_id: str, url: Url = None, admin_token: Admin = None, as_json: Json = False
) -> None:
    """Disable an agent: its grants are revoked."""
    data = _admin("POST", f"/agents/{client_id}/disable", url, admin_token)
    _print(data, as_json, f"{client_id} disabled")


def keys_rotate(
    prepublish_seconds: Annotated[int | None, typer.Option(help="Publish before signing.")] = None,
    url: Url = None,
    admin_token: Admin = None,
    as_json: Json = False,
) -> None:
    """Create the next signing key (published now, signing after the pre-publication period)."""
    body = {} if prepublish_seconds is None else {"prepublish_seconds": prepublish_seconds}
    data = _admin("POST", "/keys/rotate", url, admin_token, body)
    _print(data, as_json, f"{data['kid']} ({data['alg']}) signs from {data['activates_at']}")


def keys_list(url: Url = None, as_json: Json = False) -> None:
    """List the published signing keys (the registry's JWK set)."""
    data = _call("GET", f"{_registry(url)}/.well-known/jwks.json")
    rows = [f"{k['kid']}  {k.get('alg', '')}  {k.get('crv', '')}" for k in data["keys"]]
    _print(data, as_json, "\n".join(rows))


def _part(token: str, index: int) -> dict[str, Any]:
    try:
        value = json.loads(b64url_decode(token.split(".")[index]))
    except (IndexError, JWKError, ValueError):
        typer.echo("error: not a compact JWT", err=True)
        raise typer.Exit(2) from None
    if not isinstance(value, dict):
        typer.echo("error: not a compact JWT", err=True)
        raise typer.Exit(2)
    return value


def _when(epoch: object, now: int) -> str:
    if not isinstance(epoch, int) or isinstance(epoch, bool):
        return "-"
    try:
        stamp = datetime.fromtimestamp(epoch, tz=UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):
        return f"{epoch} (not a representable time)"
    delta = epoch - now
    return f"{stamp} ({'in ' if delta >= 0 else ''}{abs(delta)} s{' ago' if delta < 0 else ''})"


def _chain(act: object) -> str:
    names = []
    while isinstance(act, dict):
        names.append(str(act.get("sub")))
        act = act.get("act")
    return " acting for ".join(names) if names else "-"


@token_app.command("inspect")
def token_inspect(
    token: str,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the decoded header and claims as JSON.")
    ] = False,
) -> None:
    """Decode and explain a token WITHOUT verifying it (like jwt.io, but local)."""
    header, claims = _part(token, 0), _part(token, 1)
    if as_json:
        typer.echo(json.dumps({"header": header, "claims": claims}, indent=2))
        return
    now = int(datetime.now(tz=UTC).timestamp())
    lines = [
        "NOT VERIFIED: decoded only; use `agentauth token verify` to check it.",
        f"type        {header.get('typ')}  alg {header.get('alg')}  kid {header.get('kid')}",
        f"issuer      {claims.get('iss')}",
        f"human       {claims.get('sub')}",
        f"audience    {claims.get('aud')}",
        f"agents      {_chain(claims.get('act'))}",
        f"grant       {claims.get('grant_id')}",
        f"issued      {_when(claims.get('iat'), now)}",
        f"expires     {_when(claims.get('exp'), now)}",
        f"bound key   {cnf.get('jkt') if isinstance(cnf := claims.get('cnf'), dict) else '-'}",
    ]
    try:
        details = load_details(claims.get("authorization_details") or [])
        lines += [f"may         {summarize(detail)}" for detail in details]
    except (ValueError, TypeError):
        lines.append("may         (unreadable authorization_details)")
    typer.echo("\n".join(lines))


@token_app.command("verify")
def token_verify(
    token: str,
    verifier: Annotated[str, typer.Option(help="Verifier URL.")] = "http://localhost:8081",
    client_id: Annotated[str, typer.Option(envvar="AGENTAUTH_RS_CLIENT_ID")] = "",
    client_secret: Annotated[str, typer.Option(envvar="AGENTAUTH_RS_CLIENT_SECRET")] = "",
    as_json: Json = False,
) -> None:
    """Introspect a token at the verifier as a resource server (exit 1 when inactive)."""
    if not client_id or not client_secret:
        typer.echo(
            "error: pass --client-id and --client-secret (or set AGENTAUTH_RS_CLIENT_ID and"
            " AGENTAUTH_RS_CLIENT_SECRET): the verifier answers registered resource servers only",
            err=True,
        )
        raise typer.Exit(2)
    # RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    credentials = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
    basic = base64.b64encode(credentials.encode()).decode()
    data = _call(
        "POST",
        f"{verifier.rstrip('/')}/introspect",
        data={"token": token},
        headers={"Authorization": f"Basic {basic}"},
    )
    _print(data, as_json, "active" if data.get("active") else "inactive")
    if not data.get("active"):
        raise typer.Exit(1)
