"""``agentauth audit``: verify the audit chain against its checkpoints; make an audit key."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from sqlalchemy.exc import SQLAlchemyError

from app.cli.common import (
    _database_failure,
    _existing_database,
    _settings,
)
from app.settings import (
    Settings,
)

audit_app = typer.Typer(help="Inspect the audit log.", no_args_is_help=True, rich_markup_mode=None)


def _checked(count: int) -> None:
    typer.echo(f"  {count} events checked ...", err=True)


@audit_app.command("verify")
def audit_verify(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Recompute the audit hash chain and check it against the signed checkpoints
    (AGENTAUTH_AUDIT_CHECKPOINTS); exit 1 and name what no longer holds."""
    import asyncio

    from app.registry.services.audit import verify_chain
    from app.registry.services.checkpoints import configured_check
    from app.store.db import create_engine, session_factory

    settings = _settings(Settings)
    _existing_database(settings)

    async def run() -> dict[str, Any]:
        engine = create_engine(settings.database_url)
        try:
            async with session_factory(engine)() as session:
                progress = None if as_json else _checked
                report: dict[str, Any] = (await verify_chain(session, progress)).to_dict()
                coverage = await configured_check(session, settings)
        finally:
            await engine.dispose()
        if coverage is not None:
            report["checkpoints"] = coverage.to_dict()
            report["ok"] = report["ok"] and coverage.ok
        return report

    try:
        report = asyncio.run(run())
    except (SQLAlchemyError, OSError) as exc:
        raise _database_failure(exc, settings.database_url) from None
    if as_json:
        typer.echo(json.dumps(report))
    else:
        _print_audit(report)
    if not report["ok"]:
        raise typer.Exit(1)


def _print_audit(report: dict[str, Any]) -> None:
    if report["first_broken_seq"] is None:
        typer.echo(f"audit chain intact: {report['events']} events")
    else:
        typer.echo(
            f"audit chain BROKEN at event {report['first_broken_seq']}: {report['reason']}",
            err=True,
        )
    coverage = report.get("checkpoints")
    if coverage is None:
        typer.echo("no signed checkpoints configured (AGENTAUTH_AUDIT_CHECKPOINTS)", err=True)
        return
    if coverage["invalid"] is not None:
        typer.echo(f"checkpoint FORGED or damaged: {coverage['reason']}", err=True)
    elif coverage["rewritten"] is not None:
        first, last = coverage["rewritten"]
        typer.echo(
            f"audit log REWRITTEN: events {first}\u2013{last} no longer match the signed"
            f" checkpoints ({coverage['reason']})",
            err=True,
        )
    else:
        typer.echo(
            f"covered by signed checkpoints through event {coverage['covered_through']}"
            f" ({coverage['checkpoints']} checkpoints)"
        )
    if coverage["uncovered"] is not None:
        first, last = coverage["uncovered"]
        typer.echo(f"events {first}\u2013{last} are not covered by a checkpoint yet")


@audit_app.command("keygen")
def audit_keygen() -> None:
    """Print a new audit signing key and its public half (for AGENTAUTH_AUDIT_SIGNING_KEY
    and AGENTAUTH_AUDIT_PUBLIC_KEY)."""
    import secrets

    from app.core.checkpoints import audit_private_key, public_half
    from app.core.jwk import b64url_encode

    seed = b64url_encode(secrets.token_bytes(32))
    typer.echo(f"AGENTAUTH_AUDIT_SIGNING_KEY={seed}")
    typer.echo(f"AGENTAUTH_AUDIT_PUBLIC_KEY={public_half(audit_private_key(seed))}")
