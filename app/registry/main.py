"""ASGI factory for ``agentauth serve registry``: settings are read when the server starts,
never at import time."""

from __future__ import annotations

from fastapi import FastAPI

from app.api.logs import configure_logging
from app.registry.app import create_app
from app.settings import Settings


def create() -> FastAPI:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
