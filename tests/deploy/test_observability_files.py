"""The dashboard and the alert rules use metrics the code emits, and each alert links to a
runbook entry that exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = ("_bucket", "_sum", "_count")


def emitted() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "app").rglob("*.py"):
        names |= set(re.findall(r'"(agentauth_[a-z_]+)"', path.read_text()))
    return names


def referenced(expression: str) -> set[str]:
    names = set(re.findall(r"\bagentauth_[a-z_]+", expression))
    return {next((n[: -len(s)] for s in SUFFIXES if n.endswith(s)), n) for n in names}


def anchors() -> set[str]:
    headings = re.findall(r"^#+ (.+)$", (ROOT / "docs" / "operations.md").read_text(), re.M)
    return {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}


def test_alerts_use_real_metrics_and_link_runbooks() -> None:
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yaml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert {a["alert"] for a in alerts} >= {
        "AgentAuthVerifierSlow", "AgentAuthErrorRate", "AgentAuthRevocationLag",
        "AgentAuthAuditChainBroken", "AgentAuthSigningKeyOld",
    }  # fmt: skip
    for alert in alerts:
        assert referenced(alert["expr"]) <= emitted(), alert["alert"]
        anchor = alert["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor in anchors(), anchor


def test_dashboard_panels_use_real_metrics() -> None:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "agentauth.json").read_text())
    assert dashboard["panels"]
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            assert referenced(target["expr"]) <= emitted(), panel["title"]
