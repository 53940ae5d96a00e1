"""Policy denials are counted per policy and rule, without inventing a policy when none matches."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from lockgate import metrics as lockgate_metrics
from lockgate.lifecycle import gating, view


class NoSubjectAccessReviews:
    watching_rbac = False
    generation = 0

    async def can_approve(
        self, username: str, groups: Sequence[str], namespace: str, *, fresh: bool = False
    ) -> tuple[bool, str]:
        raise AssertionError("no approvals here, nothing to ask")


PROMOTION = {
    "apiVersion": "lockgate.dev/v1alpha1",
    "kind": "Promotion",
    "metadata": {"name": "web-2", "namespace": "production", "uid": "u1", "resourceVersion": "1", "generation": 1},
    "spec": {"target": {"kind": "Deployment", "name": "web", "container": "web"}, "image": "registry.example/web:2"},
}


async def test_a_namespace_without_policy_counts_under_no_policy() -> None:
    cluster = view.ClusterView()
    cluster.put_namespace({"metadata": {"name": "production", "labels": {}}})
    cluster.put_promotion(dict(PROMOTION))
    metrics = lockgate_metrics.Metrics(cluster)
    gate = gating.Gate(cluster, NoSubjectAccessReviews(), b"k" * 32, metrics=metrics)  # type: ignore[arg-type]
    result = await gate.evaluate(PROMOTION, datetime.datetime(2026, 11, 25, tzinfo=datetime.UTC))
    assert result.phase == "Pending"
    text = metrics.exposition().decode()
    denials = [line for line in text.splitlines() if line.startswith("lockgate_policy_denials_total{")]
    assert denials and all('policy="(none)"' in line for line in denials), denials
