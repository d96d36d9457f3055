"""The SDK installs and imports without the server's dependencies (docs/sdk.md)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# What only the server's processes use; an agent must never pull these in.
SERVER_ONLY = {
    "fastapi",
    "uvicorn",
    "sqlalchemy",
    "asyncpg",
    "aiosqlite",
    "alembic",
    "redis",
    "pydantic",
    "pydantic_settings",
    "webauthn",
    "jinja2",
    "typer",
    "defusedxml",
    "prometheus_client",
}
SDK_MODULES = [
    "app.sdk",
    "app.sdk.client",
    "app.sdk.dpop",
    "app.sdk.local",
    "app.sdk.merchant",
    "app.sdk.sync",
]


def _names(requirements: list[str]) -> set[str]:
    return {
        re.split(r"[<>=\[ ;]", r, maxsplit=1)[0].lower().replace("-", "_") for r in requirements
    }


def test_importing_the_sdk_loads_no_server_dependency() -> None:
    script = (
        "import json, sys\n"
        + "".join(f"import {module}\n" for module in SDK_MODULES)
        + "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    output = subprocess.check_output([sys.executable, "-c", script], cwd=ROOT)  # noqa: S603
    loaded = set(json.loads(output))
    assert loaded & SERVER_ONLY == set()


def test_the_base_install_holds_no_server_dependency_and_the_server_extra_holds_them() -> None:
    base = _names(PROJECT["dependencies"])
    server = _names(PROJECT["optional-dependencies"]["server"])
    assert base & SERVER_ONLY == set()
    assert server >= SERVER_ONLY
    assert "agentauth-server[server]" in PROJECT["optional-dependencies"]["dev"]


def test_the_command_without_the_server_extra_says_what_to_install() -> None:
    """Simulated by hiding typer: the launcher names the extra instead of a traceback."""
    script = "import sys\nsys.modules['typer'] = None\nfrom app.launcher import main\nmain()\n"
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)  # noqa: S603
    assert done.returncode == 2
    assert "pip install 'agentauth-server[server]'" in done.stderr
    assert "Traceback" not in done.stderr
