"""Private PostgreSQL clusters on 127.0.0.1: a primary and a streaming replica made with
``pg_basebackup``, run as the ``postgres`` user (the server refuses root) from the Debian
binaries, in a temporary directory, stopped with the test."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import asyncpg

from tests.support.processes import free_port, wait_until_listening


def _binaries() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        raise RuntimeError("the PostgreSQL server binaries are not installed")
    return found[-1].parent


def _as_postgres(*args: str) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    done = subprocess.run(  # noqa: S603 - fixed arguments
        [*prefix, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{Path(args[0]).name} failed: {done.stderr.decode(errors='replace')}")


class Cluster:
    def __init__(self, workdir: Path, name: str) -> None:
        self.bin = _binaries()
        self.data = workdir / name
        self.port = free_port()

    def url(self, user: str = "postgres", database: str = "postgres") -> str:
        return f"postgresql+asyncpg://{user}@127.0.0.1:{self.port}/{database}"

    def _ctl(self, *args: str) -> None:
        _as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30", *args)

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories="
        options += f"{self.data} -c fsync=off -c full_page_writes=off"
        self._ctl("-o", options, "-l", str(self.data / "server.log"), "start")
        wait_until_listening(self.port)

    def stop(self) -> None:
        with suppress(subprocess.CalledProcessError):
            self._ctl("-m", "immediate", "stop")

    def restart(self) -> None:
        """A normal restart (``pg_ctl restart -m fast``): every connection is closed."""
        self._ctl("-m", "fast", "stop")
        self.start()


@contextmanager
def _workdir() -> Iterator[Path]:
    """A directory the ``postgres`` user owns (pytest's temporary directories are private
    to the user running the tests)."""
    workdir = Path(tempfile.mkdtemp(prefix="agentauth-pg-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(workdir, "postgres", "postgres")
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def primary_and_replica() -> Iterator[tuple[Cluster, Cluster]]:
    """A primary (trust authentication on 127.0.0.1, replication allowed) and a hot standby
    streaming from it."""
    with _workdir() as workdir, _pair(workdir) as pair:
        yield pair


@contextmanager
def private_cluster() -> Iterator[Cluster]:
    """One started cluster of its own (trust authentication on 127.0.0.1), for tests that
    restart or reconfigure the server."""
    with _workdir() as workdir:
        cluster = Cluster(workdir, "primary")
        _initdb(cluster)
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop()


def _initdb(cluster: Cluster) -> None:
    _as_postgres(
        str(cluster.bin / "initdb"),
        "-D",
        str(cluster.data),
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--no-sync",
    )
    with (cluster.data / "pg_hba.conf").open("a") as hba:
        hba.write("host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n")


@contextmanager
def _pair(workdir: Path) -> Iterator[tuple[Cluster, Cluster]]:
    primary, replica = Cluster(workdir, "primary"), Cluster(workdir, "replica")
    _initdb(primary)
    primary.start()
    try:
        _as_postgres(
            str(primary.bin / "pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-D",
            str(replica.data),
            "-R",
            "-X",
            "stream",
            "--no-sync",
        )
        replica.start()
        try:
            yield primary, replica
        finally:
            replica.stop()
    finally:
        primary.stop()


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def execute(url: str, statement: str) -> object:
    connection = await asyncpg.connect(_plain(url))
    try:
        return await connection.fetchval(statement)
    finally:
        await connection.close()


REPLAY_WAIT = 10.0


async def wait_for_replay(primary: Cluster, replica: Cluster) -> None:
    """Until the replica has replayed everything the primary has written so far."""
    target = await execute(primary.url(), "SELECT pg_current_wal_lsn()::text")
    deadline = time.monotonic() + REPLAY_WAIT
    while time.monotonic() < deadline:
        done = await execute(
            replica.url(), f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"
        )
        if done:
            return
        await asyncio.sleep(0.02)
    raise TimeoutError("the replica did not catch up")
