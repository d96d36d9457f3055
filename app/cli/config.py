"""``agentauth config``: the configuration table, and the effective settings with secrets masked."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import (
    PROCESS_SETTINGS,
    _settings,
)
from app.settings import (
    Settings,
)

config_app = typer.Typer(
    help="Inspect the configuration.", no_args_is_help=True, rich_markup_mode=None
)


@config_app.command("docs")
def config_docs() -> None:
    """Print the Markdown table of every setting (the one in docs/configuration.md)."""
    from app.settings_docs import settings_table

    typer.echo(settings_table(), nl=False)


@config_app.command("check")
def config_check(
    process: Annotated[
        str,
        typer.Option(help="Check one process's settings: registry, verifier or worker."),
    ] = "all",
) -> None:
    """Load settings from the environment and print them (secrets masked)."""
    if process != "all" and process not in PROCESS_SETTINGS:
        typer.echo(f"error: unknown process {process!r}; available: registry, verifier, worker")
        raise typer.Exit(2)
    settings = _settings(PROCESS_SETTINGS.get(process, Settings))
    for name, value in settings.model_dump().items():
        shown = "(set)" if value is not None and "Secret" in repr(value) else value
        typer.echo(f"AGENTAUTH_{name.upper()}={shown if shown is not None else ''}")
