"""The ``agentauth`` command line: one command group per module.

``run`` has the root commands (``migrate``, ``dev``, ``serve``); ``keys``, ``config``,
``audit``, ``humans``, ``resource-servers``, ``enrollment-tokens``, ``agents`` and ``token``
are groups; ``common`` holds what they share.
"""

from __future__ import annotations

from typing import Annotated

import typer

from app import __version__
from app.cli import (
    agents,
    audit,
    config,
    enrollment_tokens,
    humans,
    keys,
    resource_servers,
    run,
    token,
)

app = typer.Typer(
    name="agentauth",
    help="AgentAuth: an authorization server for AI agents.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: no "<bool>" metavar on flags
)
app.command("migrate")(run.migrate)
app.command("dev")(run.dev)
app.command("serve")(run.serve)
app.add_typer(keys.keys_app, name="keys")
app.add_typer(config.config_app, name="config")
app.add_typer(audit.audit_app, name="audit")
app.add_typer(humans.humans_app, name="humans")
app.add_typer(resource_servers.servers_app, name="resource-servers")
app.add_typer(enrollment_tokens.enrollment_app, name="enrollment-tokens")
app.add_typer(agents.agents_app, name="agents")
app.add_typer(token.token_app, name="token")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"agentauth {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """AgentAuth: an authorization server for AI agents."""


def main() -> None:
    app()
