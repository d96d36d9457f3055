"""``agentauth keys``: generate a key pair, rotate the registry's signing key, list the published
set."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import Admin, Json, Url, _admin, _call, _print, _registry
from app.core.keys import SIGNING_ALGS, generate_private_key, private_jwk

keys_app = typer.Typer(help="Work with JSON Web Keys.", no_args_is_help=True, rich_markup_mode=None)


@keys_app.command("generate")
def keys_generate(
    alg: Annotated[str, typer.Option(help=f"Signing algorithm: {' or '.join(SIGNING_ALGS)}.")] = (
        "ES256"
    ),
    kid: Annotated[str | None, typer.Option(help="Key id (default: the RFC 7638 thumbprint).")] = (
        None
    ),
    public: Annotated[bool, typer.Option("--public", help="Print only the public JWK.")] = False,
    out: Annotated[
        Path | None, typer.Option(help="Write the private JWK to this file (mode 0600).")
    ] = None,
) -> None:
    """Generate a key pair and print it as a JWK (an agent's signing/DPoP key)."""
    if alg not in SIGNING_ALGS:
        typer.echo(f"error: --alg must be one of {', '.join(SIGNING_ALGS)}", err=True)
        raise typer.Exit(2)
    jwk = private_jwk(generate_private_key(alg), alg=alg, kid=kid)
    public_jwk = {k: v for k, v in jwk.items() if k != "d"}
    if out is not None:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(jwk, handle, indent=2)
        typer.echo(f"private key written to {out}", err=True)
        typer.echo(json.dumps(public_jwk, indent=2))
        return
    typer.echo(json.dumps(public_jwk if public else jwk, indent=2))


@keys_app.command("rotate")
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


@keys_app.command("list")
def keys_list(url: Url = None, as_json: Json = False) -> None:
    """List the published signing keys (the registry's JWK set)."""
    data = _call("GET", f"{_registry(url)}/.well-known/jwks.json")
    rows = [f"{k['kid']}  {k.get('alg', '')}  {k.get('crv', '')}" for k in data["keys"]]
    _print(data, as_json, "\n".join(rows))
