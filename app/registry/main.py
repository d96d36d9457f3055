"""ASGI entry point for ``agentauth serve registry`` (settings from the environment)."""

from __future__ import annotations

from app.registry.app import create_app
from app.settings import Settings

app = create_app(Settings())
