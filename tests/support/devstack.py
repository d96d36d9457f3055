"""`agentauth dev` and one of the examples as real processes, for the end-to-end tests of
the examples: the embedded stack, a resource server registered through the admin API, and
the example server run with that resource server's credentials."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.processes import free_port, wait_until_listening

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def popen(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own commands
        args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


def line(process: subprocess.Popen[str], pattern: str) -> re.Match[str]:
    """The first line the process prints that matches ``pattern``."""
    assert process.stdout is not None
    seen = []
    for printed in process.stdout:
        seen.append(printed)
        match = re.search(pattern, printed)
        if match:
            return match
    raise AssertionError(f"{pattern!r} not printed:\n{''.join(seen)}")


@dataclass
class DevStack:
    registry: str  # the issuer, as users and the examples see it
    local: str  # the same registry, for the test's own HTTP client
    verifier: str
    admin: str
    invite: str
    resource: str  # the example server's registered resource
    env: dict[str, str]  # the environment without AGENTAUTH_* variables


@contextmanager
def dev_with_example(
    data: Path,
    example: str,
    resource_server: dict[str, Any],
    *,
    path: str,
    dev_env: dict[str, str] | None = None,
) -> Iterator[DevStack]:
    """`agentauth dev` on free ports, ``resource_server`` registered for
    ``http://localhost:<port><path>``, and ``examples/<example>`` serving it on that port."""
    rp, vp, sp = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTAUTH_")}
    agentauth = str(Path(PYTHON).parent / "agentauth")
    dev = popen(
        [agentauth, "dev", "--data-dir", str(data), "--registry-port", str(rp),
         "--verifier-port", str(vp)], {**env, **(dev_env or {})},
    )  # fmt: skip
    try:
        admin = line(dev, r"admin token\s+(\S+)").group(1)
        invite = line(dev, r"first invite (\S+)").group(1)
        wait_until_listening(rp)
        wait_until_listening(vp)
        resource = f"http://localhost:{sp}{path}"
        created = httpx.post(
            f"http://127.0.0.1:{rp}/admin/resource-servers",
            json={**resource_server, "resource": resource},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert created.status_code == 201, created.text
        server_env = {
            **env,
            "SHOP_CLIENT_ID": created.json()["client_id"],
            "SHOP_CLIENT_SECRET": created.json()["client_secret"],
        }
        server = popen(
            [PYTHON, f"examples/{example}", "--port", str(sp),
             "--issuer", f"http://localhost:{rp}", "--verifier", f"http://localhost:{vp}"],
            server_env,
        )  # fmt: skip
        try:
            wait_until_listening(sp)
            yield DevStack(
                f"http://localhost:{rp}", f"http://127.0.0.1:{rp}", f"http://localhost:{vp}",
                admin, invite, resource, env,
            )  # fmt: skip
        finally:
            stop(server)
    finally:
        stop(dev)
