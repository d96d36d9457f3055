"""``agentauth humans``: invite, list and suspend humans."""

from __future__ import annotations

import typer

from app.cli.common import Admin, Json, Url, _admin, _listing, _print

humans_app = typer.Typer(
    help="Invite, list and suspend humans.", no_args_is_help=True, rich_markup_mode=None
)


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
