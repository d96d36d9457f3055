"""``uvicorn --factory app.verifier.main:create`` entry point (settings from the environment)."""

from __future__ import annotations

from app.settings import Settings
from app.verifier.app import VerifierApp, create_app


def create() -> VerifierApp:
    return create_app(Settings())
