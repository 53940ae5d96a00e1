"""The image guard's webhook as the API server calls it: one AdmissionReview in, one answer out."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest
import yaml

from lockgate.admission import imageguard
from lockgate.handlers import admission, background
from lockgate.lifecycle import view
from tests.conftest import REPO

PODS = next(g for g in imageguard.GUARDED if g.plural == "pods" and not g.subresource)
DEPLOYMENTS = next(g for g in imageguard.GUARDED if g.plural == "deployments")


def gated_view() -> view.ClusterView:
    cluster = view.ClusterView()
    cluster.put_policy(yaml.safe_load((REPO / "examples" / "gatepolicy-production.yaml").read_text()))
    labels = {"lockgate.dev/environment": "production", "kubernetes.io/metadata.name": "production"}
    cluster.put_namespace({"metadata": {"name": "production", "labels": labels}})
    return cluster


def guard(guarded: imageguard.GuardedKind, primed: asyncio.Event | None = None, **settings: Any) -> Any:
    return admission._register_guard(
        kopf.OperatorRegistry(),
        background.local_settings(**settings),
        gated_view(),
        None,  # type: ignore[arg-type]  # the API is asked only about the operator's own rollouts
        guarded,
        None,
        primed,
    )


def review(guarded: imageguard.GuardedKind, obj: dict[str, Any], *, user: str = "alice") -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "resource": {"group": guarded.group, "version": "v1", "resource": guarded.plural},
            "namespace": "production",
            "name": obj["metadata"]["name"],
            "operation": "CREATE",
            "userInfo": {"username": user, "groups": ["engineers", "system:authenticated"]},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
        },
    }


POD = {"metadata": {"name": "shell", "namespace": "production"}, "spec": {"containers": [{"name": "sh", "image": "x"}]}}
DEPLOYMENT = {
    "metadata": {"name": "api", "namespace": "production"},
    "spec": {"template": {"spec": {"containers": [{"name": "api", "image": "x"}]}}},
}


async def test_the_guard_waits_for_the_operators_view_and_then_refuses_rather_than_allow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Right after a start the view has no GatePolicy yet: every namespace would look ungated."""
    monkeypatch.setattr(admission, "PRIMED_WAIT_SECONDS", 0.05)
    primed = asyncio.Event()
    judge = guard(PODS, primed, manage_webhooks=False)  # the chart's configuration: fail closed
    starting = await judge(review(PODS, POD))
    assert starting["allowed"] is False and starting["status"]["code"] == 503
    assert "Lockgate is starting" in starting["status"]["message"]
    # kube-controller-manager's Pods need no view: they pass at once, even while it loads.
    controller = await judge(review(PODS, POD, user="system:serviceaccount:kube-system:replicaset-controller"))
    assert controller == {"allowed": True}
    # A configuration Kopf manages fails open on Pods (failurePolicy Ignore): the wait does too.
    assert (await guard(PODS, primed, manage_webhooks=True)(review(PODS, POD))) == {"allowed": True}
    primed.set()
    loaded = await judge(review(PODS, POD))
    assert loaded["allowed"] is False and "would run images nobody approved" in loaded["status"]["message"]


async def test_a_new_pod_is_judged_even_where_new_deployments_are_let_through() -> None:
    """``guard_new_workloads`` off lets a new Deployment in (onboarding); a Pod starts its image only by being made."""
    assert (await guard(DEPLOYMENTS, guard_new_workloads=False)(review(DEPLOYMENTS, DEPLOYMENT)))["allowed"]
    refused = await guard(PODS, guard_new_workloads=False)(review(PODS, POD))
    assert refused["allowed"] is False and refused["status"]["code"] == 403


async def test_a_review_of_another_resource_sent_to_a_guard_is_refused_not_judged() -> None:
    wrong = review(PODS, POD)
    wrong["request"]["resource"] = {"group": "", "version": "v1", "resource": "configmaps"}
    answer = await guard(PODS)(wrong)
    assert answer == {"allowed": False, "status": {"code": 400, "message": answer["status"]["message"]}}
    assert "guard-pods does not judge" in answer["status"]["message"]


RS_SCALE = next(g for g in imageguard.GUARDED if g.plural == "replicasets" and g.subresource == "scale")


def scale_review(old: int, new: int, *, user: str) -> dict[str, Any]:
    def scale(replicas: int) -> dict[str, Any]:
        meta = {"name": "web-5d4f", "namespace": "production"}
        return {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": meta, "spec": {"replicas": replicas}}

    request = review(RS_SCALE, scale(new), user=user)
    request["request"].update(operation="UPDATE", subResource="scale", oldObject=scale(old))
    return request


async def test_a_scale_is_judged_whoever_asks_and_waits_for_the_view_only_where_the_chart_configures_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An autoscaler may act as kube-controller-manager, and no controller scales a ReplicaSet through its Scale:
    no identity skips the guard. A configuration Kopf manages calls it for every Scale in the cluster (no
    selector, no conditions), so there it fails open while the view loads, as ``failurePolicy: Ignore``."""
    monkeypatch.setattr(admission, "PRIMED_WAIT_SECONDS", 0.05)
    primed = asyncio.Event()
    manager = "system:kube-controller-manager"
    starting = await guard(RS_SCALE, primed, manage_webhooks=False)(scale_review(1, 3, user=manager))
    assert starting["allowed"] is False and starting["status"]["code"] == 503
    assert await guard(RS_SCALE, primed, manage_webhooks=True)(scale_review(1, 3, user=manager)) == {"allowed": True}
    primed.set()
    refused = await guard(RS_SCALE, primed, manage_webhooks=False)(scale_review(1, 3, user=manager))
    assert refused["allowed"] is False and "raising the replicas of ReplicaSet web-5d4f" in refused["status"]["message"]
    assert await guard(RS_SCALE, primed)(scale_review(3, 1, user="alice")) == {"allowed": True}
