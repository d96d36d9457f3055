"""``uvicorn --factory app.verifier.main:create`` entry point (settings from the environment)."""

from __future__ import annotations

from app.api.logs import configure_logging
from app.settings import Settings
from app.verifier.app import VerifierApp, create_app


def create() -> VerifierApp:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
