"""The ``agentauth`` command line."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from app import __version__, cli_admin
from app.core.keys import SIGNING_ALGS, generate_private_key, private_jwk
from app.settings import (
    CommonSettings,
    RegistrySettings,
    Settings,
    VerifierSettings,
    WorkerSettings,
)

app = typer.Typer(
    name="agentauth",
    help="AgentAuth: an authorization server for AI agents.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # plain help: no "<bool>" metavar on flags
)
keys_app = typer.Typer(help="Work with JSON Web Keys.", no_args_is_help=True, rich_markup_mode=None)
config_app = typer.Typer(
    help="Inspect the configuration.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(keys_app, name="keys")
audit_app = typer.Typer(help="Inspect the audit log.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(config_app, name="config")
app.add_typer(audit_app, name="audit")
app.add_typer(cli_admin.humans_app, name="humans")
app.add_typer(cli_admin.servers_app, name="resource-servers")
app.add_typer(cli_admin.enrollment_app, name="enrollment-tokens")
app.add_typer(cli_admin.agents_app, name="agents")
app.add_typer(cli_admin.token_app, name="token")
keys_app.command("rotate")(cli_admin.keys_rotate)
keys_app.command("list")(cli_admin.keys_list)


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


def _reachable_database(url: str, columns: str) -> None:
    """Fail with one line, before a server starts, when its database cannot be opened."""
    import asyncio

    from sqlalchemy import text

    from app.store.db import create_engine

    async def probe() -> None:
        engine = create_engine(url, pool_size=1)
        try:
            async with engine.connect() as connection:
                await connection.execute(text(f"SELECT {columns} LIMIT 1"))
        finally:
            await engine.dispose()

    try:
        asyncio.run(probe())
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


@app.command("migrate")
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


@app.command("dev")
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
# Each process reads only its own settings: the verifier never loads the registry's secrets.
PROCESS_SETTINGS: dict[str, type[CommonSettings]] = {
    "registry": RegistrySettings,
    "verifier": VerifierSettings,
    "worker": WorkerSettings,
}


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


@app.command("serve")
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
    # A table each process's role can read (the verifier's only sees some columns).
    readable = "activates_at FROM signing_keys" if process == "verifier" else "seq FROM audit_head"
    _reachable_database(settings.database_url, readable)
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


def main() -> None:
    app()
