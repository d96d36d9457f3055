"""The Helm chart, rendered by a real `helm` and validated against the Kubernetes schemas
(offline, `kubernetes-validate`), for the default values and a production-like file."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "agentauth"
CI_VALUES = ROOT / "deploy" / "helm" / "ci-values.yaml"
KUBERNETES = "1.33.0"
CRDS = {"ServiceMonitor"}  # not in the Kubernetes schemas


def helm() -> str | None:
    for candidate in (os.environ.get("AGENTAUTH_HELM"), shutil.which("helm"),
                      str(ROOT / ".ci-tools" / "helm" / "helm")):  # fmt: skip
        if candidate and Path(candidate).exists():
            return candidate
    return None


pytestmark = pytest.mark.skipif(
    helm() is None, reason="helm is not installed (.ci/run installs it)"
)


def run_helm(*args: str) -> str:
    binary = helm()
    assert binary is not None
    result = subprocess.run(  # noqa: S603 - our own arguments
        [binary, *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def render(*values: Path) -> list[dict[str, Any]]:
    args = ["template", "release", str(CHART)]
    for path in values:
        args += ["-f", str(path)]
    return [doc for doc in yaml.safe_load_all(run_helm(*args)) if doc]


@pytest.mark.parametrize("values", [(), (CI_VALUES,)], ids=["defaults", "production-like"])
def test_the_chart_lints_renders_and_validates(values: tuple[Path, ...]) -> None:
    lint_args = ["lint", str(CHART)] + [arg for path in values for arg in ("-f", str(path))]
    assert "0 chart(s) failed" in run_helm(*lint_args)
    documents = render(*values)
    for document in documents:
        if document["kind"] not in CRDS:
            kubernetes_validate.validate(document, KUBERNETES, strict=True)
    kinds = {d["kind"] for d in documents}
    assert {"Deployment", "Service", "Job", "HorizontalPodAutoscaler", "PodDisruptionBudget",
            "NetworkPolicy", "ConfigMap", "Pod"} <= kinds  # fmt: skip


def test_every_container_is_locked_down_and_probed() -> None:
    documents = render(CI_VALUES)
    pods = [
        (
            d["metadata"]["name"],
            d["spec"]["template"]["spec"] if "template" in d["spec"] else d["spec"],
        )
        for d in documents
        if d["kind"] in ("Deployment", "Job", "Pod")
    ]
    assert len(pods) == 5  # registry, verifier, worker, migration job, helm test
    for name, pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            assert container["resources"]["limits"], name
    deployments = {d["metadata"]["labels"]["app.kubernetes.io/component"]: d
                   for d in documents if d["kind"] == "Deployment"}  # fmt: skip
    for component in ("registry", "verifier"):
        container = deployments[component]["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    verifier_env = deployments["verifier"]["spec"]["template"]["spec"]["containers"][0]["env"]
    database = next(e for e in verifier_env if e["name"] == "AGENTAUTH_DATABASE_URL")
    assert database["valueFrom"]["secretKeyRef"]["key"] == "verifier-database-url"
    registry_secrets = {"AGENTAUTH_ADMIN_TOKEN", "AGENTAUTH_KEY_ENCRYPTION_KEY",
                        "AGENTAUTH_DPOP_NONCE_SECRET"}  # fmt: skip
    for component in ("registry", "verifier", "worker"):
        env = deployments[component]["spec"]["template"]["spec"]["containers"][0]["env"]
        handed = registry_secrets & {e["name"] for e in env}
        assert handed == (registry_secrets if component == "registry" else set()), component
    job = next(d for d in documents if d["kind"] == "Job")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "--readonly-role" in job["spec"]["template"]["spec"]["containers"][0]["args"]
    test_pod = next(d for d in documents if d["kind"] == "Pod")
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"


def test_values_are_checked_by_the_schema() -> None:
    binary = helm()
    assert binary is not None
    result = subprocess.run(  # noqa: S603 - our own arguments
        [binary, "template", "release", str(CHART), "--set", "issuer=not a url"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "issuer" in result.stderr
