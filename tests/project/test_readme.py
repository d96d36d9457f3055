"""The README's commands work on a fresh machine: its PostgreSQL path creates the database
before `agentauth migrate` (which creates tables, not databases)."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_postgresql_path_creates_the_database_before_migrating() -> None:
    created = README.find("createdb -h 127.0.0.1 -U postgres agentauth")
    migrated = README.find("agentauth migrate --readonly-role")
    assert created != -1, "the README never creates the PostgreSQL database"
    assert created < migrated
    assert "postgresql+asyncpg://postgres@127.0.0.1/agentauth" in README


def test_the_example_docstrings_use_the_variables_the_quickstart_exports() -> None:
    """A reader follows the quickstart, then copies from an example's docstring."""
    root = Path(__file__).resolve().parents[2]
    quickstart = (root / "docs" / "quickstart.md").read_text()
    exported = set(re.findall(r"\b([A-Z][A-Z0-9_]+)=", quickstart))
    for example in ("merchant.py", "agent.py", "delegation.py"):
        text = (root / "examples" / example).read_text()
        docstring = text.split('"""')[1]
        used = set(re.findall(r"\$([A-Z][A-Z0-9_]+)", docstring))
        assert used <= exported, (example, used - exported)
