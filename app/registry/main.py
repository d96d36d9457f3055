"""ASGI factory for ``agentauth serve registry``: settings are read when the server starts,
never at import time."""

from __future__ import annotations

from starlette.types import ASGIApp

from app.api.logs import configure_logging
from app.api.tracing import with_tracing
from app.registry.app import create_app
from app.settings.registry import RegistrySettings


def create() -> ASGIApp:
    settings = RegistrySettings()
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    return with_tracing(app, endpoint=settings.otel_endpoint, service="agentauth-registry")
