"""``agentauth token``: explain an access token locally, or check it at the verifier."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote_plus

import typer

from app.cli.common import Json, _call, _print
from app.core.capabilities import load_details
from app.core.jwk import JWKError, b64url_decode
from app.core.summary import summarize

token_app = typer.Typer(
    help="Explain and check access tokens.", no_args_is_help=True, rich_markup_mode=None
)


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
