"""``agentauth dev`` settings: the environment wins however its names are spelled, and the
generated secrets fill in the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.dev import plan


def test_the_environment_wins_in_any_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AGENTAUTH_DATABASE_URL", raising=False)
    monkeypatch.delenv("AGENTAUTH_ISSUER", raising=False)
    monkeypatch.setenv("agentauth_database_url", "sqlite+aiosqlite:///elsewhere.db")
    stack = plan(tmp_path, "127.0.0.1", 18080, 18081)
    assert stack.settings.database_url == "sqlite+aiosqlite:///elsewhere.db"
    assert stack.settings.issuer == "http://localhost:18080"  # a default fills in
    assert stack.settings.admin_token is not None  # from the generated secrets.json
    again = plan(tmp_path, "127.0.0.1", 18080, 18081)
    assert again.settings.admin_token == stack.settings.admin_token
