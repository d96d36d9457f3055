"""docs/configuration.md carries the table generated from the settings (`agentauth config
docs`); this test fails when the document is stale."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from app.cli import app
from app.settings import Settings
from app.settings_docs import settings_table

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
OUTSIDE_SETTINGS = {"AGENTAUTH_HEALTH_URL", "AGENTAUTH_READONLY_PASSWORD"}


def test_the_document_has_the_generated_table() -> None:
    text = DOC.read_text()
    assert settings_table() in text, "run `agentauth config docs` and paste it into the doc"
    result = CliRunner().invoke(app, ["config", "docs"])
    assert result.exit_code == 0
    assert result.output == settings_table()


def test_every_variable_mentioned_is_read_somewhere() -> None:
    settings = {f"AGENTAUTH_{name.upper()}" for name in Settings.model_fields}
    mentioned = set(re.findall(r"\bAGENTAUTH_[A-Z_]+\b", DOC.read_text()))
    assert mentioned <= settings | OUTSIDE_SETTINGS, mentioned - settings - OUTSIDE_SETTINGS
