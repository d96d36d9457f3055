"""docs/configuration.md lists exactly the settings the code reads (it fails when stale)."""

from __future__ import annotations

import re
from pathlib import Path

from app.settings import Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
OUTSIDE_SETTINGS = {"AGENTAUTH_HEALTH_URL", "AGENTAUTH_READONLY_PASSWORD"}


def test_every_setting_is_documented_and_nothing_else() -> None:
    table = set(re.findall(r"^\| `(AGENTAUTH_[A-Z_]+)` \|", DOC.read_text(), re.MULTILINE))
    settings = {f"AGENTAUTH_{name.upper()}" for name in Settings.model_fields}
    assert settings - table == set(), "settings missing from docs/configuration.md"
    assert table - settings == set(), "documented variables that no setting reads"
    mentioned = set(re.findall(r"\bAGENTAUTH_[A-Z_]+\b", DOC.read_text()))
    assert mentioned <= settings | OUTSIDE_SETTINGS, mentioned - settings - OUTSIDE_SETTINGS
