"""Third-party clients, installed by ``npm ci --prefix tests/interop`` (pinned in
``tests/interop/package-lock.json``). Without them these tests skip, unless
``AGENTAUTH_INTEROP_REQUIRED=1`` (set by ``.ci/run``) makes a missing client a failure."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def node_package(name: str) -> Path:
    """The installed package's directory, or a skip (a failure where they are required)."""
    where = HERE / "node_modules" / name
    if shutil.which("node") is None or not (where / "package.json").exists():
        problem = f"{name} is not installed (npm ci --prefix tests/interop)"
        if os.environ.get("AGENTAUTH_INTEROP_REQUIRED") == "1":
            pytest.fail(problem)
        pytest.skip(problem)
    return where
