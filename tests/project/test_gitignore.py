"""Files that hold secrets are never committed by accident: the example agent's state (its
private key) and the development data directory are ignored."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "path",
    [".agent-state/key.json", ".agentauth/secrets.json", ".agentauth/audit-signing-key"],
)
def test_secret_holding_paths_are_ignored(path: str) -> None:
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(  # noqa: S603 - fixed arguments
        [git, "check-ignore", "-q", path], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0, f"{path} is not in .gitignore"
