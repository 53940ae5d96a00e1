"""The image patch applies only to the workload version whose image the audit records name as previous."""

from __future__ import annotations

from typing import Any

from lockgate.devcluster import server, world
from lockgate.handlers import testing
from tests.lifecycle import manifests

DEPLOYMENTS = ("apps", "deployments")


def approve(lockgate: testing.Stack) -> None:
    lockgate.apply(manifests.promotion(), context="alice")
    lockgate.wait_phase("web-2", "AwaitingApproval")
    lockgate.apply(manifests.approval("web-2-bob", "web-2"), context="bob")
    lockgate.apply(manifests.approval("web-2-carol", "web-2"), context="carol")


def operator_deploy_patches(lockgate: testing.Stack) -> list[server.RequestRecord]:
    return [
        r
        for r in list(lockgate.cluster.cluster.requests)
        if r.user == world.OPERATOR_USERNAME and r.verb == "patch" and r.resource == "deployments"
    ]


def test_a_conflict_from_an_unrelated_write_repeats_the_patch_on_the_current_version(
    lockgate: testing.Stack,
) -> None:
    injected: list[str] = []

    def hook(record: server.RequestRecord) -> server.Fault | None:
        operator_patch = record.user == world.OPERATOR_USERNAME and record.verb == "patch"
        if operator_patch and record.resource == "deployments" and not injected:
            injected.append(record.name)
            return server.Fault(code=409, reason="Conflict", message="the object has been modified")
        return None

    lockgate.cluster.cluster.fault_hook = hook
    try:
        approve(lockgate)
        promo = lockgate.wait_phase("web-2", "Succeeded", timeout=30)
    finally:
        lockgate.cluster.cluster.fault_hook = None
    assert injected == ["web"]
    assert [r.code for r in operator_deploy_patches(lockgate)] == [409, 200]
    assert promo["status"]["previousImage"] == "registry.example/web:1.0"
    assert lockgate.image() == promo["spec"]["image"]


def test_an_image_changed_under_the_decision_is_not_overwritten_and_the_promotion_says_why(
    lockgate: testing.Stack,
) -> None:
    store = lockgate.cluster.cluster.store

    def hook(record: server.RequestRecord) -> server.Fault | None:
        if record.user == world.OPERATOR_USERNAME and record.verb == "patch" and record.resource == "deployments":
            current: dict[str, Any] | None = store.get(DEPLOYMENTS, "production", "web")
            assert current is not None
            containers = current["spec"]["template"]["spec"]["containers"]
            if containers[0]["image"] == "registry.example/web:1.0":  # a break-glass change lands first
                containers[0]["image"] = "registry.example/web:hotfix"
                store.update(DEPLOYMENTS, "production", "web", current)
        return None

    lockgate.cluster.cluster.fault_hook = hook
    try:
        approve(lockgate)
        promo = lockgate.wait_phase("web-2", "Failed", timeout=30)
    finally:
        lockgate.cluster.cluster.fault_hook = None
    assert lockgate.image() == "registry.example/web:hotfix"  # nothing deployed over it
    assert [r.code for r in operator_deploy_patches(lockgate)] == [409]
    ready = {c["type"]: c for c in promo["status"]["conditions"]}["Ready"]
    assert ready["reason"] == "TargetChangedWhileDeploying"
    assert "changed from registry.example/web:1.0 to registry.example/web:hotfix" in ready["message"]
    events = [r.event for r in lockgate.trail().records() if r.promotion.name == "web-2"]
    assert events[-1] == "failed" and "deployed" not in events
