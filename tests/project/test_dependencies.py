"""What the server needs at run time is declared there, and nothing only the tests use."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    return {
        re.split(r"[<>=\[ ;]", requirement, maxsplit=1)[0].lower() for requirement in requirements
    }


def test_joserfc_is_for_the_tests_only() -> None:
    """The server signs and verifies with `cryptography` directly (app/core/jws.py); joserfc
    is the independent implementation the tests compare against."""
    assert "joserfc" not in _names(PROJECT["dependencies"])
    assert "joserfc" in _names(PROJECT["optional-dependencies"]["dev"])
    for path in (ROOT / "app").rglob("*.py"):
        assert "joserfc" not in path.read_text(), path
