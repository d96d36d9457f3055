"""The generated table of settings in docs/configuration.md: each setting's meaning (its
``Field(description=...)``), which processes read it, and its default.

``agentauth config docs`` prints the table; a test fails when the document differs.
"""

from __future__ import annotations

from app.settings import (
    AuditSettings,
    CommonSettings,
    RegistrySettings,
    Settings,
    VerifierSettings,
    WorkerSettings,
)

READERS = (
    ("registry", RegistrySettings),
    ("verifier", VerifierSettings),
    ("worker", WorkerSettings),
)
# The table's order: what every process reads, then the registry's own, the audit set, and
# the verifier's own.
ORDER = [
    *CommonSettings.model_fields,
    *(n for n in RegistrySettings.model_fields if n not in CommonSettings.model_fields
      and n not in AuditSettings.model_fields),
    *AuditSettings.model_fields,
    *(n for n in VerifierSettings.model_fields if n not in CommonSettings.model_fields),
]  # fmt: skip


def _default(name: str) -> str:
    value = Settings.model_fields[name].get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def settings_table() -> str:
    """The Markdown table of every ``AGENTAUTH_*`` setting, in declaration order."""
    missing = [n for n, f in Settings.model_fields.items() if not f.description]
    if missing:
        raise ValueError(f"settings without a description: {sorted(missing)}")
    rows = ["| variable | read by | default | meaning |", "|---|---|---|---|"]
    for name in ORDER:
        readers = ", ".join(process for process, kind in READERS if name in kind.model_fields)
        meaning = Settings.model_fields[name].description
        rows.append(f"| `AGENTAUTH_{name.upper()}` | {readers} | {_default(name)} | {meaning} |")
    return "\n".join(rows) + "\n"
