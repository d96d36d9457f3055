"""``agentauth resource-servers``: register and list resource servers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.common import Admin, Json, Url, _admin, _listing, _print

servers_app = typer.Typer(
    help="Register and list resource servers.", no_args_is_help=True, rich_markup_mode=None
)


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
