"""The worker's settings: the shared ones and the audit checkpoint settings (it signs the
checkpoints); no registry secret."""

from __future__ import annotations

from app.settings.audit import AuditSettings
from app.settings.common import CommonSettings


class WorkerSettings(CommonSettings, AuditSettings):
    """What ``agentauth serve worker`` reads."""
