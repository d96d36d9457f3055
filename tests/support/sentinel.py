"""A Redis primary, its replica and a Sentinel watching them, on 127.0.0.1, started by the
test (``redis-server --sentinel``), so a failover is real: the primary is killed, the
Sentinel promotes the replica and clients that asked it follow."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import redis

from tests.support.processes import RedisServer, free_port, wait_until_listening

SERVICE = "agentauth"


class ReplicaServer(RedisServer):
    def __init__(self, workdir: Path, primary: RedisServer) -> None:
        super().__init__(workdir)
        self.primary = primary

    def start(self) -> None:
        args = [self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.workdir)]
        args += ["--replicaof", "127.0.0.1", str(self.primary.port)]
        self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until_listening(self.port)


class SentinelServer:
    def __init__(self, workdir: Path, binary: str, primary: RedisServer) -> None:
        self.port = free_port()
        self.config = workdir / "sentinel.conf"
        self.config.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {workdir}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary.port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 500\n"
            f"sentinel failover-timeout {SERVICE} 3000\n"
        )
        self.binary = binary
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [self.binary, str(self.config), "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until_listening(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)

    def primary_port(self) -> int:
        client = redis.Redis(port=self.port, socket_timeout=2)
        try:
            _, port = client.sentinel_get_master_addr_by_name(SERVICE)
            return int(port)
        finally:
            client.close()

    def url(self, db: int = 0) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{SERVICE}/{db}"


def replicating(primary: RedisServer, replica: RedisServer, within: float = 10.0) -> None:
    """Until ``replica`` has its link to ``primary`` up."""
    deadline = time.monotonic() + within
    client = redis.Redis(port=replica.port, socket_timeout=2)
    try:
        while time.monotonic() < deadline:
            if client.info("replication").get("master_link_status") == "up":
                return
            time.sleep(0.05)
    finally:
        client.close()
    raise TimeoutError("the replica never connected to its primary")


def _watched(sentinel: SentinelServer, replicas: int, within: float = 10.0) -> None:
    """Until the Sentinel knows the primary and its replica (it learns replicas from INFO)."""
    deadline = time.monotonic() + within
    client = redis.Redis(port=sentinel.port, socket_timeout=2)
    try:
        while time.monotonic() < deadline:
            with suppress(redis.RedisError):
                if len(client.sentinel_slaves(SERVICE)) >= replicas:
                    return
            time.sleep(0.1)
    finally:
        client.close()
    raise TimeoutError("the Sentinel never saw the replica")


Group = tuple[RedisServer, RedisServer, "SentinelServer"]  # (primary, replica, Sentinel)


@contextmanager
def sentinel_group(workdir: Path) -> Iterator[Group]:
    primary = RedisServer(workdir / "primary")
    (workdir / "primary").mkdir()
    primary.start()
    (workdir / "replica").mkdir()
    replica = ReplicaServer(workdir / "replica", primary)
    sentinel = SentinelServer(workdir, primary.binary, primary)
    try:
        replica.start()
        replicating(primary, replica)
        sentinel.start()
        _watched(sentinel, 1)
        yield primary, replica, sentinel
    finally:
        sentinel.stop()
        replica.stop()
        primary.stop()


def wait_for_failover(sentinel: SentinelServer, old_port: int, within: float = 15.0) -> float:
    """Seconds until the Sentinel names a primary other than ``old_port``."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        with suppress(redis.RedisError):
            if sentinel.primary_port() != old_port:
                return time.monotonic() - started
        time.sleep(0.05)
    raise TimeoutError("no failover")
