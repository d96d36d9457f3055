"""``uvicorn --factory app.verifier.main:create`` entry point (settings from the environment)."""

from __future__ import annotations

from starlette.types import ASGIApp

from app.api.logs import configure_logging
from app.api.tracing import with_tracing
from app.settings.verifier import VerifierSettings
from app.verifier.app import create_app


def create() -> ASGIApp:
    settings = VerifierSettings()
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    return with_tracing(app, endpoint=settings.otel_endpoint, service="agentauth-verifier")
