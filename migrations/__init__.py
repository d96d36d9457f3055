"""Alembic migrations for the AgentAuth database (shipped as app.migrations)."""
