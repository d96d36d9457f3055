"""Process settings from ``AGENTAUTH_*`` environment variables (docs/configuration.md).

Each process reads only its own: :class:`VerifierSettings`, :class:`RegistrySettings`,
:class:`WorkerSettings`, all built on :class:`CommonSettings`. :class:`Settings` is the whole
set, for ``agentauth dev`` (every process in one) and the command line.
"""

from __future__ import annotations

from app.settings.audit import AuditSettings
from app.settings.common import CommonSettings, Environment
from app.settings.registry import RegistrySettings, SigningAlg, decode_key_encryption_key
from app.settings.verifier import VerifierSettings
from app.settings.worker import WorkerSettings

__all__ = [
    "AuditSettings",
    "CommonSettings",
    "Environment",
    "RegistrySettings",
    "Settings",
    "SigningAlg",
    "VerifierSettings",
    "WorkerSettings",
    "decode_key_encryption_key",
]


class Settings(RegistrySettings, WorkerSettings, VerifierSettings):
    """Every setting: ``agentauth dev`` and the command line."""
