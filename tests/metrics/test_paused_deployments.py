"""The paused-Deployment gauge: where a Deployment holds its Promotions, and removing its current ReplicaSet (break-
glass only) would revive an older image."""

from __future__ import annotations

from typing import Any

import yaml

from lockgate import metrics as lockgate_metrics
from lockgate.lifecycle import view
from tests.conftest import REPO


def test_paused_deployments_in_gated_namespaces_are_counted_until_resumed() -> None:
    """Paused, a Deployment's controller revives an older ReplicaSet once the current one goes (only break-glass
    may delete or relabel it): the gauge (and its alert) shows where that is possible."""
    cluster = view.ClusterView()
    cluster.put_policy(yaml.safe_load((REPO / "examples" / "gatepolicy-production.yaml").read_text()))
    for name, labels in (("production", {"lockgate.dev/environment": "production"}), ("staging", {})):
        cluster.put_namespace({"metadata": {"name": name, "labels": labels}})

    def deployment(namespace: str, paused: bool, version: str) -> dict[str, Any]:
        meta = {"name": "web", "namespace": namespace, "resourceVersion": version}
        return {"metadata": meta, "spec": {"paused": paused, "template": {"spec": {"containers": []}}}}

    def gauge() -> list[str]:
        text = lockgate_metrics.Metrics(cluster).exposition().decode()
        return [line for line in text.splitlines() if line.startswith("lockgate_paused_deployments{")]

    cluster.put_workload("Deployment", deployment("production", True, "1"))
    cluster.put_workload("Deployment", deployment("staging", True, "1"))  # not gated: not counted
    assert gauge() == ['lockgate_paused_deployments{namespace="production"} 1.0']
    cluster.put_workload("Deployment", deployment("production", False, "2"))
    assert gauge() == []
