"""``agentauth migrate``, ``agentauth dev`` and ``agentauth serve``: the commands that create the
schema and run the processes (registered on the root command in ``app.cli``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from app.cli.common import (
    PROCESS_SETTINGS,
    _database_failure,
    _existing_database,
    _reachable_database,
    _settings,
    _shown,
)
from app.settings import (
    Settings,
    WorkerSettings,
)


def migrate(
    readonly_role: Annotated[
        str | None,
        typer.Option(
            help="Also create or update this read-only PostgreSQL role for the verifier"
            " (password from AGENTAUTH_READONLY_PASSWORD)."
        ),
    ] = None,
) -> None:
    """Apply database migrations to AGENTAUTH_DATABASE_URL."""
    import asyncio

    from app.store.migrate import upgrade
    from app.store.roles import ensure_readonly_role

    settings = _settings(Settings)
    typer.echo(f"applying migrations to {_shown(settings.database_url)} ...", err=True)
    try:
        upgrade(settings.database_url)
    except (SQLAlchemyError, OSError) as exc:
        raise _database_failure(exc, settings.database_url) from None
    typer.echo("database is up to date")
    if readonly_role is not None:
        password = os.environ.get("AGENTAUTH_READONLY_PASSWORD")
        try:
            asyncio.run(ensure_readonly_role(settings.database_url, readonly_role, password))
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"read-only role {readonly_role} is ready")


def dev(
    host: Annotated[str, typer.Option(help="Address to bind both servers to.")] = "127.0.0.1",
    registry_port: Annotated[int, typer.Option(help="Registry and approval UI port.")] = 8080,
    verifier_port: Annotated[int, typer.Option(help="Verifier port.")] = 8081,
    data_dir: Annotated[
        Path, typer.Option(help="Where the database and the generated secrets live.")
    ] = Path(".agentauth"),
) -> None:
    """Run the whole stack in one process (development only).

    The registry, verifier, worker and approval UI, on SQLite and an in-process cache."""
    import asyncio

    from app.dev import plan, run
    from app.store.migrate import upgrade

    try:
        stack = plan(data_dir, host, registry_port, verifier_port)
    except ValidationError as exc:
        for error in exc.errors():
            typer.echo(f"error: {error['msg'].removeprefix('Value error, ')}", err=True)
        raise typer.Exit(1) from None
    except RuntimeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    try:
        upgrade(stack.settings.database_url)
    except (SQLAlchemyError, OSError) as exc:
        raise _database_failure(exc, stack.settings.database_url) from None
    from app.api.logs import configure_logging

    configure_logging("WARNING", "text")  # the banner is the interface here
    try:
        asyncio.run(run(stack, announce=typer.echo))
    except RuntimeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


PROCESSES = {"registry": "app.registry.main:create", "verifier": "app.verifier.main:create"}


def _run_worker(settings: WorkerSettings) -> None:
    import asyncio
    import signal

    from app.api.logs import configure_logging
    from app.worker.process import run_worker

    configure_logging(settings.log_level, settings.log_format)
    typer.echo(
        f"worker started: ledger and pruning on {_shown(settings.database_url)}, spends and"
        f" heartbeats on {_shown(settings.redis_url)}"
        + ("; signing audit checkpoints" if settings.audit_signing_key else "")
        + " (Ctrl+C stops it)",
        err=True,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run_worker(settings, stop)

    asyncio.run(main())


def serve(
    process: Annotated[str, typer.Argument(help="registry, verifier or worker")],
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Run the registry, a verifier or the worker.

    The registry and the verifier are served by uvicorn; the worker runs in the background."""
    import uvicorn

    if process not in (*PROCESSES, "worker"):
        typer.echo(
            f"error: unknown process {process!r}; available: registry, verifier, worker", err=True
        )
        raise typer.Exit(2)
    settings = _settings(PROCESS_SETTINGS[process])  # fail fast with a readable message
    if settings.redis_url.startswith("memory://") and (workers > 1 or process != "registry"):
        # Replay protection, counters and revocation events must be shared between processes.
        typer.echo(
            "error: the in-process cache (memory://) cannot be shared between processes;"
            " set AGENTAUTH_REDIS_URL (or use --workers 1 for the registry alone)",
            err=True,
        )
        raise typer.Exit(2)
    _existing_database(settings)
    _reachable_database(settings.database_url, read_only_role=process == "verifier")
    if isinstance(settings, WorkerSettings):
        _run_worker(settings)
        return
    uvicorn.run(
        PROCESSES[process],
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,  # the app factory configures logging in each worker process
        lifespan="on",
        # Per-address limits key on the client: only configured proxies may name it.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or None,
    )
