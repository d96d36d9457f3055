"""The README's commands work on a fresh machine: its PostgreSQL path creates the database
before `agentauth migrate` (which creates tables, not databases)."""

from __future__ import annotations

from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_the_postgresql_path_creates_the_database_before_migrating() -> None:
    created = README.find("createdb -h 127.0.0.1 -U postgres agentauth")
    migrated = README.find("agentauth migrate --readonly-role")
    assert created != -1, "the README never creates the PostgreSQL database"
    assert created < migrated
    assert "postgresql+asyncpg://postgres@127.0.0.1/agentauth" in README
