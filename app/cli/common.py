"""What the command groups share: settings from the environment, the database checks,
and the HTTP helpers of the operator commands that talk to a running registry's admin API.

Operator commands use ``AGENTAUTH_ISSUER`` and ``AGENTAUTH_ADMIN_TOKEN`` (or ``--url`` /
``--admin-token``), print a readable summary by default and the server's JSON with
``--json``. Exit codes: 0 done, 1 refused by the server (or an inactive token), 2 bad usage,
3 server unreachable (a database command: 3 for a missing, unmigrated or unreachable
database).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from app.settings import CommonSettings, RegistrySettings, VerifierSettings, WorkerSettings

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


AnySettings = TypeVar("AnySettings", bound=CommonSettings)

DEV_DATABASE = Path(".agentauth") / "agentauth.db"  # where `agentauth dev` keeps it

DATABASE_ERROR = 3  # exit code: no database, no schema, or it cannot be reached


def _settings(kind: type[AnySettings]) -> AnySettings:
    """The settings of ``kind`` (one process's, or all of them) from the environment. Without
    ``AGENTAUTH_DATABASE_URL``, where ``agentauth dev`` keeps its database (``./.agentauth``),
    commands use that one."""
    try:
        settings = kind()
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            name = f"AGENTAUTH_{field.upper()}: " if field else ""
            for problem in error["msg"].removeprefix("Value error, ").splitlines():
                typer.echo(f"error: {name}{problem}", err=True)  # one line each
        raise typer.Exit(1) from None
    if "database_url" not in settings.model_fields_set and DEV_DATABASE.exists():
        url = f"sqlite+aiosqlite:///{DEV_DATABASE.resolve()}"
        settings = settings.model_copy(update={"database_url": url})
    return settings


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ValueError:
        return "(an unreadable URL)"


def _existing_database(settings: CommonSettings) -> None:
    """Say which database a command opens; a SQLite file that does not exist is an error
    (opening it would create an empty one)."""
    typer.echo(f"database: {_shown(settings.database_url)}", err=True)
    if settings.database_url.startswith("sqlite"):
        from sqlalchemy.engine import make_url

        path = make_url(settings.database_url).database or ""
        if path not in ("", ":memory:") and not Path(path).exists():
            typer.echo(
                f"error: there is no database at {path}; set AGENTAUTH_DATABASE_URL, or run"
                " `agentauth migrate` (or `agentauth dev`) first",
                err=True,
            )
            raise typer.Exit(DATABASE_ERROR)


def _reachable_database(url: str, *, read_only_role: bool) -> None:
    """Fail with one line, before a server starts, when its database cannot be opened."""
    import asyncio

    from app.store.db import read_one_row

    try:
        asyncio.run(read_one_row(url, read_only_role=read_only_role))
    except (SQLAlchemyError, OSError) as exc:
        raise _database_failure(exc, url) from None


def _database_failure(exc: BaseException, url: str) -> typer.Exit:
    """One line for a database that is missing, unmigrated or unreachable."""
    text = " ".join(str(getattr(exc, "orig", None) or exc).split())
    missing_schema = "no such table" in text or ("does not exist" in text and "relation" in text)
    if missing_schema:
        message = "has no AgentAuth schema; run `agentauth migrate`"
    elif "does not exist" in text:
        message = f"does not exist ({text[:160]}); create it first (createdb)"
    else:
        message = f"cannot be reached or read: {text[:200]}"
    typer.echo(f"error: the database {_shown(url)} {message}", err=True)
    return typer.Exit(DATABASE_ERROR)


# Each process reads only its own settings: the verifier never loads the registry's secrets.
PROCESS_SETTINGS: dict[str, type[CommonSettings]] = {
    "registry": RegistrySettings,
    "verifier": VerifierSettings,
    "worker": WorkerSettings,
}
