"""``agentauth enrollment-tokens``: one-time agent enrollment tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import Admin, Json, Url, _admin, _print

enrollment_app = typer.Typer(
    help="One-time agent enrollment tokens.", no_args_is_help=True, rich_markup_mode=None
)


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
