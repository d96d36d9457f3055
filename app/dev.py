"""``agentauth dev``: the registry, the verifier, the worker and the approval pages in one
process, on a SQLite file and the in-process cache unless ``AGENTAUTH_DATABASE_URL`` /
``AGENTAUTH_REDIS_URL`` say otherwise. For trying AgentAuth and for examples, not for
production (the settings refuse the memory cache there).

Everything it creates lives in ``--data-dir``: the database, and ``secrets.json`` (mode 0600)
with the admin token, the key-encryption key and the DPoP nonce secret, so a restart keeps
every agent, grant and key.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from app.cache.factory import create_cache
from app.core.jwk import b64url_encode
from app.registry.app import create_app as create_registry
from app.registry.services import checkpoints
from app.settings import Settings
from app.store.db import create_engine, session_factory
from app.verifier.app import create_app as create_verifier
from app.worker.process import Worker


@dataclass(frozen=True)
class DevPlan:
    settings: Settings
    host: str
    registry_port: int
    verifier_port: int
    data_dir: Path


SECRETS = ("admin_token", "key_encryption_key", "dpop_nonce_secret")


def _secrets(data_dir: Path) -> dict[str, str]:
    path = data_dir / "secrets.json"
    if path.exists():
        try:
            stored = json.loads(path.read_text())
        except (ValueError, OSError) as exc:
            raise RuntimeError(f"{path} cannot be read ({exc}); restore it from a backup") from None
        if not isinstance(stored, dict) or not all(
            isinstance(stored.get(name), str) for name in SECRETS
        ):
            raise RuntimeError(f"{path} must hold the strings {', '.join(SECRETS)}")
        return {name: stored[name] for name in SECRETS}
    created = {
        "admin_token": secrets.token_urlsafe(32),
        "key_encryption_key": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        "dpop_nonce_secret": secrets.token_urlsafe(32),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(created, handle)
    return created


def _audit_seed(data_dir: Path) -> str:
    path = data_dir / "audit-signing-key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(b64url_encode(secrets.token_bytes(32)))
    return path.read_text().strip()


def plan(data_dir: Path, host: str, registry_port: int, verifier_port: int) -> DevPlan:
    """Settings for the embedded stack: the environment wins, development defaults fill in."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    defaults: dict[str, Any] = {
        **_secrets(data_dir),
        "issuer": f"http://localhost:{registry_port}",
        "verifier_url": f"http://localhost:{verifier_port}",
        "database_url": f"sqlite+aiosqlite:///{(data_dir / 'agentauth.db').resolve()}",
        # The audit key lives in its own file, never in the database (its checkpoints too).
        "audit_signing_key": _audit_seed(data_dir),
        "audit_checkpoints": str((data_dir / "audit-checkpoints").resolve()),
        # Standard OAuth and MCP clients register themselves (public clients only), and may
        # describe themselves with metadata documents served from this machine.
        "registration_policy": "open-public",
        "client_metadata_allow_private": True,
    }
    configured = Settings().model_fields_set  # what the environment (or .env) sets
    settings = Settings(**{k: v for k, v in defaults.items() if k not in configured})
    return DevPlan(settings, host, registry_port, verifier_port, data_dir)


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the embedding process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _server(app: Callable[..., Any], host: str, port: int) -> _Server:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        lifespan="on",
        log_level="warning",
        log_config=None,
        proxy_headers=False,  # a local process: the TCP peer is the client
    )
    return _Server(config)


async def _serve(server: _Server) -> None:
    """uvicorn exits the process when it cannot bind; here that is a start-up failure."""
    try:
        await server.serve()
    except SystemExit:
        raise RuntimeError("a server could not start (is the port in use?)") from None


@dataclass(frozen=True)
class Welcome:
    """Who is there: the humans (id, name), and the first one's invite on a first start."""

    humans: list[tuple[str, str]]
    invite: str | None = None


async def _welcome(plan: DevPlan) -> Welcome:
    """The humans there are; on a first start, a first human and their invite link."""
    admin = plan.settings.admin_token
    assert admin is not None  # noqa: S101 - always set by plan()
    headers = {"Authorization": f"Bearer {admin.get_secret_value()}"}
    base = f"http://127.0.0.1:{plan.registry_port}"
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as http:
        humans = (await http.get("/admin/humans")).json().get("humans", [])
        if humans:
            return Welcome([(h["id"], h["display_name"]) for h in humans])
        created = await http.post("/admin/humans", json={"display_name": "Developer"})
        created.raise_for_status()
        first = created.json()
        return Welcome([(first["id"], "Developer")], str(first["invite_url"]))


def banner(plan: DevPlan, welcome: Welcome) -> str:
    settings = plan.settings
    admin = settings.admin_token.get_secret_value() if settings.admin_token else ""
    lines = [
        "AgentAuth development stack (not for production)",
        f"  registry     {settings.issuer}",
        f"  verifier     {settings.verifier_url}",
        f"  approval UI  {settings.issuer}/ui/",
        f"  database     {settings.database_url}",
        f"  cache        {settings.redis_url}",
        f"  admin token  {admin}",
        f"  data         {plan.data_dir.resolve()}",
    ]
    if welcome.invite:
        human_id = welcome.humans[0][0]
        lines += [
            f"  first invite {welcome.invite}  (open it to create your passkey)",
            f"  your id      {human_id}",
            "Next: open the invite; then, with AGENTAUTH_ADMIN_TOKEN set to the admin token,"
            f" `agentauth enrollment-tokens create --owner {human_id}` gives an agent its"
            " token (docs/quickstart.md walks through a payment).",
        ]
    else:
        known = ", ".join(f"{name} ({human_id})" for human_id, name in welcome.humans[:5])
        lines += [
            f"  humans       {known}{' ...' if len(welcome.humans) > 5 else ''}",
            f"Log in at {settings.issuer}/ui/login with your passkey; invite someone new with"
            " agentauth humans invite NAME.",
        ]
    lines.append("Press Ctrl+C to stop.")
    return "\n".join(lines)


async def run(plan: DevPlan, *, announce: Callable[[str], None] = print) -> None:
    """Serve until SIGINT or SIGTERM, then stop every part cleanly (the database must be
    migrated first: ``app.store.migrate.upgrade`` runs its own event loop)."""
    settings = plan.settings
    cache = create_cache(settings.redis_url, namespace=settings.cache_namespace)
    engine = create_engine(settings.database_url, pool_size=2)
    registry = _server(create_registry(settings, cache=cache), plan.host, plan.registry_port)
    verifier = _server(create_verifier(settings, cache=cache), plan.host, plan.verifier_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    worker = Worker(
        cache,
        engine,
        session_factory(engine),
        checkpoints=checkpoints.writer(settings),
        checkpoint_interval=settings.audit_checkpoint_interval,
    )
    tasks = [
        asyncio.create_task(_serve(registry)),
        asyncio.create_task(_serve(verifier)),
        asyncio.create_task(worker.run(stop)),
    ]
    try:
        while not (registry.started and verifier.started):
            if any(task.done() for task in tasks[:2]):
                raise RuntimeError("a server could not start (is the port in use?)")
            await asyncio.sleep(0.05)
        announce(banner(plan, await _welcome(plan)))
        await stop.wait()
    finally:
        registry.should_exit = verifier.should_exit = True
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await cache.close()
        await engine.dispose()
