"""``agentauth dev``: one process, SQLite and the in-process cache, the whole flow, a clean
stop on SIGTERM, and a restart that keeps everything."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.clock import WallClock
from tests.support.processes import free_port, wait_until_listening
from tests.support.registry import RegistryClient
from tests.support.verifier import eventually, is_inactive, shop_with_grant


def start(data_dir: Path, registry_port: int, verifier_port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTAUTH_")}
    env["AGENTAUTH_ISSUER"] = "http://localhost"  # what the test clients sign for
    command = [str(Path(sys.executable).parent / "agentauth"), "dev", "--data-dir", str(data_dir)]
    command += ["--registry-port", str(registry_port), "--verifier-port", str(verifier_port)]
    process = subprocess.Popen(  # noqa: S603 - our own command
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    wait_until_listening(registry_port)
    wait_until_listening(verifier_port)
    return process


def read_banner(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    lines = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if line.startswith("Press Ctrl+C"):
            return "".join(lines)
    raise AssertionError("no banner: " + "".join(lines))


def stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=20)
    if process.stdout is not None:
        process.stdout.close()
    return code


async def test_dev_runs_the_whole_flow_and_keeps_its_data(tmp_path: Path) -> None:
    data_dir, registry_port, verifier_port = tmp_path / "data", free_port(), free_port()
    process = start(data_dir, registry_port, verifier_port)
    try:
        banner = read_banner(process)
        admin = re.search(r"admin token\s+(\S+)", banner)
        assert admin is not None
        assert "first invite http://localhost/ui/invite/" in banner
        assert re.search(r"your id +usr_\S+", banner), banner  # the quickstart asks for it
        assert "enrollment-tokens create --owner usr_" in banner  # the next step
        assert "memory://" in banner
        assert oct((data_dir / "secrets.json").stat().st_mode & 0o777) == "0o600"

        registry_url = f"http://127.0.0.1:{registry_port}"
        async with (
            httpx.AsyncClient(base_url=registry_url, timeout=10) as http,
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{verifier_port}") as verifier,
        ):
            registry = RegistryClient(
                http=http, app=None, clock=WallClock(), admin_token=admin.group(1),
                base_url=registry_url,
            )  # fmt: skip
            shop, _, agent, grant_id = await shop_with_grant(registry, verifier)
            token = agent.access_token or ""
            assert (await shop.introspect(token)).json()["active"] is True
            revoked = await registry.admin("POST", f"/grants/{grant_id}/revoke")
            assert revoked.status_code == 200
            await eventually(lambda: is_inactive(shop, token))
            await registry.close()
    finally:
        assert stop(process) == 0

    again = start(data_dir, registry_port, verifier_port)
    try:
        banner = read_banner(again)
        assert f"admin token  {admin.group(1)}" in banner  # same secrets
        assert "first invite" not in banner  # the humans are still there
        assert re.search(r"humans +Developer \(usr_\S+\)", banner), banner
        assert "/ui/login" in banner  # how to get back in
        headers = {"Authorization": f"Bearer {admin.group(1)}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{registry_port}") as http:
            humans = (await http.get("/admin/humans", headers=headers)).json()["humans"]
        assert len(humans) == 2  # the first invite's and the test's
    finally:
        assert stop(again) == 0


def run_dev(data_dir: Path, registry_port: int) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTAUTH_")}
    command = [str(Path(sys.executable).parent / "agentauth"), "dev", "--data-dir", str(data_dir)]
    command += ["--registry-port", str(registry_port), "--verifier-port", str(free_port())]
    return subprocess.run(  # noqa: S603 - our own command
        command, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_dev_explains_a_busy_port_and_damaged_secrets(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = run_dev(tmp_path / "busy", busy.getsockname()[1])
    assert result.returncode == 1, result.stderr
    assert "error: a server could not start (is the port in use?)" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr

    for content in ('{"admin_token": "x"}', "{not json", "[]"):
        damaged = tmp_path / f"damaged-{len(content)}"
        damaged.mkdir()
        (damaged / "secrets.json").write_text(content)
        result = run_dev(damaged, free_port())
        assert result.returncode == 1, result.stderr
        assert "secrets.json" in result.stderr
        assert "Traceback" not in result.stdout + result.stderr
