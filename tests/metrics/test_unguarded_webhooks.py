"""The unguarded-webhooks gauge: gated namespaces where the API server would not call the image guard."""

from __future__ import annotations

import yaml

from lockgate import metrics as lockgate_metrics
from lockgate.admission import imageguard
from lockgate.lifecycle import view
from tests.chart import rendering
from tests.conftest import REPO


def test_a_gated_namespace_the_guards_configuration_leaves_out_is_counted_until_it_is_selected() -> None:
    cluster = view.ClusterView()
    cluster.put_policy(yaml.safe_load((REPO / "examples" / "gatepolicy-production.yaml").read_text()))
    cluster.put_namespace({"metadata": {"name": "production", "labels": {"lockgate.dev/environment": "production"}}})

    def gauge() -> list[str]:
        text = lockgate_metrics.Metrics(cluster).exposition().decode()
        return [line for line in text.splitlines() if line.startswith("lockgate_unguarded_webhooks{")]

    assert gauge() == []  # the configuration's watch has not answered: nothing is claimed either way
    cluster.put_guard_configuration(None)  # it does not exist: no webhook is called anywhere
    assert gauge() == [f'lockgate_unguarded_webhooks{{namespace="production"}} {len(imageguard.GUARDED)}.0']
    chart = rendering.one(rendering.render(), "ValidatingWebhookConfiguration")
    cluster.put_guard_configuration(chart)
    assert gauge() == []
    policy = yaml.safe_load((REPO / "examples" / "gatepolicy-production.yaml").read_text())
    policy["spec"]["namespaceSelector"] = {"matchLabels": {"tier": "prod"}}  # gates by another label
    cluster.put_policy(policy)
    cluster.put_namespace({"metadata": {"name": "payments", "labels": {"tier": "prod"}}})
    assert gauge() == [f'lockgate_unguarded_webhooks{{namespace="payments"}} {len(imageguard.GUARDED)}.0']
    cluster.put_namespace(
        {"metadata": {"name": "payments", "labels": {"tier": "prod", "lockgate.dev/environment": "x"}}}
    )
    assert gauge() == []


def test_guard_conditions_lockgate_cannot_evaluate_are_counted_apart() -> None:
    cluster = view.ClusterView()
    cluster.put_policy(yaml.safe_load((REPO / "examples" / "gatepolicy-production.yaml").read_text()))
    cluster.put_namespace({"metadata": {"name": "production", "labels": {"lockgate.dev/environment": "production"}}})
    chart = rendering.one(rendering.render(), "ValidatingWebhookConfiguration")

    def gauges() -> list[str]:
        text = lockgate_metrics.Metrics(cluster).exposition().decode()
        return [line for line in text.splitlines() if line.startswith(("lockgate_unverified", "lockgate_unguarded"))]

    cluster.put_guard_configuration(chart)
    assert gauges() == ["lockgate_unverified_guard_conditions 0.0"]
    for hook in chart["webhooks"]:
        if hook["name"] in ("guard-pods.lockgate.dev", "guard-jobs.lockgate.dev"):
            hook["matchConditions"].append(
                {"name": "k8s-only", "expression": "request.userInfo.username.lowerAscii() != 'x'"}
            )
    cluster.put_guard_configuration(chart)
    assert gauges() == ["lockgate_unverified_guard_conditions 2.0"]
