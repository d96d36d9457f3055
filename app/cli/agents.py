"""``agentauth agents``: list and disable agents."""

from __future__ import annotations

import typer

from app.cli.common import Admin, Json, Url, _admin, _listing, _print

agents_app = typer.Typer(
    help="List and disable agents.", no_args_is_help=True, rich_markup_mode=None
)


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
